"""Peak memory of a process tree, sampled from /proc (Linux): each process's VmHWM and the tree's
total RSS. Shared by the benchmarks that run a stage or a whole run in a subprocess."""

from __future__ import annotations

import os
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
    """Samples the RSS of a process and all its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self._pid, self._interval = pid, interval
        self.peak_by_pid: dict[int, int] = {}
        self.peak_total_kb = 0
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
            self.peak_total_kb = max(self.peak_total_kb, total)
            time.sleep(self._interval)

    def stop(self):
        self._stop_event.set()
        self.join()
