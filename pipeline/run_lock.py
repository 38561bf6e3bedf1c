"""One run per output folder at a time: `llamapipe run` and `train` hold `OUT/.llamapipe.lock`.

Two runs on one OUT interfere: each deletes what it takes for the other's unfinished outputs, and one
read the other's spill files as they were removed (a `FileNotFoundError` mid-run). So a run takes the
lock before it touches OUT, and a second one refuses at once (a ConfigError, exit 2) naming the holder:
command, host, pid, start time.

The lock is a small JSON record: who holds it, a random token, and a lease (`LEASE_SECONDS`) that a
thread of the holder renews every `LEASE_SECONDS / 4`. A lock is stale, and is taken over with a line
saying so, when its holder is on this host and its pid is gone (a killed run), or when its lease has
expired (a killed run on another host; the only test on an object store, where no pid can be checked).

Taking it: on a local disk the record is created with O_EXCL, atomic; a stale one is renamed aside
first, so of two runs taking over the same stale lock only one succeeds. An object store has no atomic
create through Beam's filesystems (S3's conditional writes are not in its client), so there the record
is written and read back after `SETTLE_SECONDS`: of two runs that wrote at the same moment the one whose
token is not read back yields. That narrows the race to writes closer than the store's own ordering;
it does not close it.

The name starts with a dot: `prepare_output` ignores it when it checks that OUT holds nothing but a run.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

from llamapipe.pipeline.output.layout import OutputLayout
from llamapipe.pipeline.plumbing.typed_yaml import ConfigError
from llamapipe.tokenizer.format import storage

LEASE_SECONDS = 120.0  # a holder that stops renewing for this long is gone
SETTLE_SECONDS = 1.0  # object stores: wait before reading the record back


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def stale_reason(holder: dict, now: float | None = None) -> str | None:
    """Why a lock record no longer holds (its pid is gone on this host, its lease expired), or None."""
    now = time.time() if now is None else now
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) \
            and not _alive(holder["pid"]):
        return f"its process {holder['pid']} on this host is gone"
    if float(holder.get("lease_until", 0)) < now:
        return "its lease expired (the holder stopped renewing it)"
    return None


def describe(holder: dict) -> str:
    return (f"`llamapipe {holder.get('command', '?')}` on host {holder.get('host', '?')}, pid "
            f"{holder.get('pid', '?')}, started {holder.get('started', '?')}")


class RunLock:
    """`with RunLock(out, "run", log):` the block runs holding OUT's lock (see the module docstring)."""

    def __init__(self, out: str, command: str, log=print, create: bool = True):
        """`create`: make a local OUT that does not exist yet (`run`); without it (`train`, which only
        reads and adds to a finished run) an absent OUT is not locked: there is nothing to protect."""
        self.path = OutputLayout(out).lock
        self._create = create
        self.command = command
        self._log = log
        self._token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._record = {
            "command": command, "host": socket.gethostname(), "pid": os.getpid(), "token": self._token,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _payload(self) -> bytes:
        return json.dumps({**self._record, "lease_until": time.time() + LEASE_SECONDS}).encode()

    def _read(self) -> dict | None:
        try:
            holder = storage.read_json(self.path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # torn or unreadable: nobody can be named, and no lease holds it
        return holder if isinstance(holder, dict) else {}

    def acquire(self) -> None:
        out = storage.dirname(self.path)
        if not self._create and not storage.is_remote(out) and not os.path.isdir(out):
            return
        for _ in range(3):  # a stale lock taken over, or a race lost, then tried again
            if self._try_create():
                break
            holder = self._read()
            if holder is None:
                continue  # released in between
            reason = stale_reason(holder)
            if reason is None:
                raise ConfigError(f"output: {out!r} is in use by {describe(holder)}; "
                                  f"wait for it to finish or stop it (its lock: {self.path})")
            self._log(f"taking over the lock of {describe(holder)}: {reason}")
            self._set_aside(holder)
        else:
            raise ConfigError(f"output: could not take the lock {self.path}: other runs keep taking it")
        self._thread = threading.Thread(target=self._renew, name="llamapipe-lock", daemon=True)
        self._thread.start()

    def _try_create(self) -> bool:
        if not storage.is_remote(self.path):
            out = os.path.dirname(os.path.abspath(self.path))
            if os.path.exists(out) and not os.path.isdir(out):
                raise ConfigError(f"output: {storage.dirname(self.path)!r} exists and is not a folder")
            os.makedirs(out, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(self._payload())
            return True
        if storage.is_file(self.path):
            return False
        storage.write_bytes(self.path, self._payload())
        time.sleep(SETTLE_SECONDS)
        return (self._read() or {}).get("token") == self._token

    def _set_aside(self, holder: dict) -> None:
        """Remove a stale record; locally by a rename, which only one of two runs taking over wins."""
        if storage.is_remote(self.path):
            storage.remove(self.path)
            return
        aside = f"{self.path}.stale-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # another run set it aside first
        os.remove(aside)

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 4):
            if (self._read() or {}).get("token") != self._token:
                return  # taken over (we were presumed dead): nothing of ours to renew
            storage.write_bytes(self.path, self._payload())

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if (self._read() or {}).get("token") == self._token:
            storage.remove(self.path)
