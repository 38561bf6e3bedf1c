"""A real Dask cluster for tests, and an S3 server: separate OS processes on 127.0.0.1, bounded in time.

`dask_cluster()` starts `dask scheduler` and N `dask worker` processes as one would on a cluster (the
`LocalCluster` of `pipeline/plumbing/runners.py` is started inside the test process: its workers are spawned
children that inherit its `sys.path` and working directory). Here the workers

- run in their own working directory (an empty temporary folder unless `cwd` says), so a relative path
  or a file the test wrote beside itself does not reach them;
- import what is installed in the venv (llamapipe, through its editable install), not the test modules
  (`tests` is not importable there: a DoFn defined in a test module must be pickled by value);
- get the test's environment without any `AWS_*` variable, plus `env`: credentials reach them only
  through `env` or the pipeline options.

Every listening socket is on 127.0.0.1: `--no-dashboard` alone still leaves the scheduler's and the
workers' HTTP servers (health, metrics) on 0.0.0.0, so their `--dashboard-address` is 127.0.0.1 too.

Workers run under a nanny (`dask worker`'s default, and what a cluster deployment uses): it enforces
the memory limit by restarting a worker that exceeds it, and restarts one that dies, so a test sees what
a user of a real cluster sees. Each `dask worker` is started in a session of its own and stopped with
SIGTERM to its process group (the nanny, its worker process and multiprocessing's resource tracker),
then SIGKILL after a grace period; workers first, then the scheduler. Each process's stdout and stderr
go to one log file; when the body of the `with` raises, the tail of every log is printed to stderr (pytest
shows it in the failure report).

A test process killed outright (SIGKILL) runs no cleanup: then the workers close themselves
`--death-timeout` after the scheduler is gone, and the scheduler `--idle-timeout` after its last task.

`pickled_by_value()` makes the DoFns and functions of a test module reach the workers by value.
(moto's S3 server, in a process of its own too: `tests/object_stores.py`.)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv's bin/, where `dask` is

# Two single-threaded workers on the 2-core, 24 GB development machine: 6 GB each (the nanny restarts a
# worker at 95% of it, dask spills to its local directory from 60%) leaves half of the memory to the test
# process (a DirectRunner run in it, for comparison), the scheduler and the S3 server.
WORKER_MEMORY = "6GB"
GRACE = 10.0  # seconds between SIGTERM and SIGKILL
TAIL_LINES = 40


class SchedulerAddress(str):
    """The scheduler's address (`tcp://127.0.0.1:PORT`), with the cluster's process ids and log files."""

    pids: dict[str, int]  # "scheduler", "worker-0", ... -> the process started (for a worker: the nanny)
    logs: dict[str, Path]  # the same names -> stdout and stderr of that process
    cwd: Path  # the workers' working directory

    def tails(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(log_tail(name, path, lines) for name, path in self.logs.items())


def log_tail(name: str, path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError as exc:
        text = [f"(unreadable: {exc})"]
    return f"--- last lines of {name} ({path}) ---\n" + "\n".join(text)


def clean_environment(env: dict[str, str | None] | None) -> dict[str, str]:
    """This process's environment without AWS_* variables, plus `env` (where None removes a variable,
    as in `tests/object_stores.py`'s `no_aws_environment()`)."""
    merged = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    merged.update(env or {})
    return {key: value for key, value in merged.items() if value is not None}


def start(command: list[str], log: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """`command` in a new session (its own process group), stdout and stderr to `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen, grace: float = GRACE) -> None:
    """SIGTERM to the process group of `process` (started in a session of its own: the group's id is its
    id); SIGKILL to what is left of the group after `grace` seconds."""
    deadline = time.monotonic() + grace
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    while (process.poll() is None or group_members(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def group_members(pgid: int) -> list[int]:
    """The processes of group `pgid` that still run (not zombies)."""
    import psutil  # a dependency of distributed

    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (OSError, psutil.Error):  # gone meanwhile
            pass
    return members


def _wait_for_file(path: Path, process: subprocess.Popen, log: Path, deadline: float) -> dict:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:2]} exited with code {process.returncode}\n"
                               + log_tail("it", log))
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):  # not written yet, or half written
            time.sleep(0.1)
    raise TimeoutError(f"{path} was not written in time\n" + log_tail("the scheduler", log))


@contextlib.contextmanager
def dask_cluster(workers: int = 2, env: dict[str, str | None] | None = None,
                 cwd: str | os.PathLike | None = None, timeout: float = 60.0,
                 memory_limit: str = WORKER_MEMORY, idle_timeout: str = "600s"):
    """`dask scheduler` and `workers` `dask worker` processes (one thread each) on 127.0.0.1, ready
    within `timeout` seconds; yields the scheduler's address (a `SchedulerAddress`).

    `env`: variables added to the processes' environment (which has no AWS_* variable); `cwd`: the
    workers' working directory (default: a new empty one, removed after); `memory_limit`: per worker;
    `idle_timeout`: the scheduler exits after so long without work (in case this process is killed
    before it can stop it)."""
    import distributed

    root = Path(tempfile.mkdtemp(prefix="dask-cluster-"))  # logs, scheduler file, workers' scratch space
    work = Path(cwd) if cwd is not None else Path(tempfile.mkdtemp(prefix="dask-worker-cwd-"))
    environment = clean_environment(env)
    processes: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    deadline = time.monotonic() + timeout
    failed = False
    try:
        scheduler_file = root / "scheduler.json"
        logs["scheduler"] = root / "scheduler.log"
        processes["scheduler"] = start(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file),
             "--idle-timeout", idle_timeout],
            logs["scheduler"], root, environment)
        info = _wait_for_file(scheduler_file, processes["scheduler"], logs["scheduler"], deadline)
        address = info["address"]
        for i in range(workers):
            name = f"worker-{i}"
            logs[name] = root / f"{name}.log"
            scratch = root / name
            scratch.mkdir()
            processes[name] = start(
                [str(BIN / "dask"), "worker", address, "--name", name, "--host", "127.0.0.1",
                 "--nworkers", "1", "--nthreads", "1", "--nanny", "--no-dashboard",
                 "--dashboard-address", "127.0.0.1:0", "--memory-limit", memory_limit,
                 "--local-directory", str(scratch), "--death-timeout", "60s"],
                logs[name], work, environment)
        with distributed.Client(address, timeout=max(1.0, deadline - time.monotonic())) as client:
            try:
                client.wait_for_workers(workers, timeout=max(1.0, deadline - time.monotonic()))
            except TimeoutError as exc:  # dask's timeout, or a time limit's around the whole cluster
                exited = {n: p.returncode for n, p in processes.items() if p.poll() is not None}
                raise TimeoutError(f"waiting for {workers} workers to join the scheduler: {exc} "
                                   f"(exited, with their code: {exited or 'none'})") from exc
        result = SchedulerAddress(address)
        result.pids = {name: process.pid for name, process in processes.items()}
        result.logs = dict(logs)
        result.cwd = work
        yield result
    except BaseException:
        failed = True
        raise
    finally:
        # A time limit's SIGALRM (or a Ctrl-C) during the stop would leave processes running: both wait
        # until it is done (it takes at most GRACE seconds per process).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGINT})
        try:
            for name in [n for n in processes if n != "scheduler"] + ["scheduler"]:
                if name in processes:
                    stop(processes[name])
            if failed:
                print("\n".join(log_tail(name, path) for name, path in logs.items()), file=sys.stderr)
            shutil.rmtree(root, ignore_errors=True)
            if cwd is None:
                shutil.rmtree(work, ignore_errors=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


@contextlib.contextmanager
def pickled_by_value(module_name: str):
    """Functions and classes of `module_name` (a test module: not importable on the workers) pickled by
    value while inside, by Beam's pickler (DoFns) and by distributed's (`Client.run`)."""
    import cloudpickle
    from apache_beam.internal.cloudpickle import cloudpickle as beam_cloudpickle

    module = sys.modules[module_name]
    picklers = [p for p in (cloudpickle, beam_cloudpickle)
                if module_name not in p.list_registry_pickle_by_value()]
    for pickler in picklers:
        pickler.register_pickle_by_value(module)
    try:
        yield
    finally:
        for pickler in picklers:
            pickler.unregister_pickle_by_value(module)
