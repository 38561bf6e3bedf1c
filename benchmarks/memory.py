"""Peak memory of a process tree, sampled from /proc (Linux): each process's VmHWM and the tree's
total RSS. Shared by the benchmarks that run a stage or a whole run in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import defaultdict


def _children() -> dict[int, list[int]]:
    tree = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree[ppid].append(int(entry))
    return tree


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _role(pid: int, root: int) -> str:
    """What a process of the tree is: the run itself, a Beam worker, or another helper process."""
    if pid == root:
        return "driver"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return "?"
    if "sdk_worker" in command or "worker_pool_main" in command:
        return "beam-worker"
    if "extract_worker" in command:
        return "extraction"
    return command.split(" ", 2)[-1][:40] if command else "?"


def _status_kb(pid: int) -> dict[str, int]:
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    values[key] = int(value.split()[0])
    except OSError:
        pass
    return values


class TreeMemory(threading.Thread):
    """Samples the RSS and CPU time of a process and all its descendants until stopped (CPU time per
    process tells whether work was spread over the workers, whatever else loads the machine)."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self._pid, self._interval = pid, interval
        self.peak_by_pid: dict[int, int] = {}
        self.peak_total_kb = 0
        self.cpu_by_pid: dict[int, float] = {}
        self.name_by_pid: dict[int, str] = {}
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            tree, stack, pids = _children(), [self._pid], []
            while stack:
                pid = stack.pop()
                pids.append(pid)
                stack += tree.get(pid, [])
            total = 0
            for pid in pids:
                status = _status_kb(pid)
                total += status.get("VmRSS", 0)
                self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), status.get("VmHWM", 0))
                self.cpu_by_pid[pid] = max(self.cpu_by_pid.get(pid, 0.0), _cpu_seconds(pid))
                if pid not in self.name_by_pid:
                    self.name_by_pid[pid] = _role(pid, self._pid)
            self.peak_total_kb = max(self.peak_total_kb, total)
            time.sleep(self._interval)

    def stop(self):
        self._stop_event.set()
        self.join()


def run_watched(command: list[str], what: str) -> tuple[float, TreeMemory, int]:
    """Run `command`, its process tree watched; exits with its output's tail if it fails. Returns
    (seconds, the watch, the process id)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watch = TreeMemory(process.pid)
    watch.start()
    output, _ = process.communicate()
    watch.stop()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"{what} failed:\n{output[-3000:]}")
    return seconds, watch, process.pid
