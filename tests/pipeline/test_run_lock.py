"""One run per output folder: a second `llamapipe run` (or `train`) on a busy OUT exits 2 at once and the
first run finishes intact; a lock whose holder is gone (its pid, on this host; its lease, anywhere) is
taken over, saying so; on an object store too (moto's S3 server)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.output.layout import LOCK_NAME
from llamapipe.pipeline.plumbing.typed_yaml import ConfigError
from llamapipe.pipeline.run_lock import RunLock, stale_reason
from llamapipe.sources.demo import write_demo_corpus
from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.manifest import validate_manifest
from tests.conftest import demo_config
from tests.object_stores import applied_env, no_aws_environment, s3_server  # noqa: F401 (the fixture)

pytestmark = pytest.mark.time_bound(300)


def gone_pid() -> int:
    """The pid of a process of this host that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def lock_record(**fields) -> bytes:
    record = {"command": "run", "host": socket.gethostname(), "pid": os.getpid(), "token": "theirs",
              "started": "2026-01-01T00:00:00+00:00", "lease_until": time.time() + 600}
    return json.dumps({**record, **fields}).encode()


def test_a_second_run_on_a_busy_output_exits_2_at_once_and_the_first_finishes(tmp_path, capsys):
    corpus = tmp_path / "demo-data"
    write_demo_corpus(corpus, seed=0, scale=0.05)
    data = demo_config(corpus, tmp_path / "out")
    data["runner"]["options"] = {"direct_running_mode": "in_memory", "direct_num_workers": 1}
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(data))
    first = subprocess.Popen([sys.executable, "-m", "llamapipe.pipeline.cli", "run", str(config)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lock = tmp_path / "out" / LOCK_NAME
        deadline = time.monotonic() + 60
        while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.exists(), "the first run never took the lock"
        for command in (["run", str(config)], ["train", str(config), "--steps", "1"]):
            started = time.monotonic()
            assert main(command) == 2
            assert time.monotonic() - started < 10
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and "is in use by `llamapipe run`" in err
            assert f"pid {first.pid}" in err and socket.gethostname() in err
        output, _ = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, output[-2000:]
    validate_manifest(str(tmp_path / "out" / "shards" / "manifest.json"))  # shards whole, sha256s agree
    assert not lock.exists()  # released


def test_a_lock_whose_process_is_gone_is_taken_over_and_released(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_bytes(lock_record(pid=gone_pid()))
    said = []
    with RunLock(str(out), "run", log=said.append):
        holder = json.loads((out / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["token"] != "theirs"
    assert len(said) == 1 and said[0].startswith("taking over the lock of `llamapipe run`")
    assert "is gone" in said[0]
    assert not (out / LOCK_NAME).exists()


def test_a_live_holder_is_refused_and_its_lock_left_alone(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_bytes(lock_record())  # this very process: alive
    with pytest.raises(ConfigError, match="is in use by `llamapipe run` on host"):
        RunLock(str(out), "train").acquire()
    assert json.loads((out / LOCK_NAME).read_text())["token"] == "theirs"


def test_staleness_is_the_pid_on_this_host_or_the_lease_elsewhere():
    now = time.time()
    assert stale_reason(json.loads(lock_record()), now) is None
    assert "is gone" in stale_reason(json.loads(lock_record(pid=gone_pid())), now)
    elsewhere = json.loads(lock_record(host="another-host", pid=1))
    assert stale_reason(elsewhere, now) is None  # its pid cannot be checked from here: the lease holds
    assert "lease expired" in stale_reason({**elsewhere, "lease_until": now - 1}, now)


def test_on_an_object_store_an_expired_lease_is_taken_over_and_a_live_one_refused(s3_server, tmp_path):  # noqa: F811 (the imported fixture)
    s3_server.create_bucket("locks")
    with applied_env({**no_aws_environment(tmp_path), **s3_server.env}):
        storage.use_options(None)
        try:
            out = "s3://locks/out"
            storage.write_bytes(f"{out}/{LOCK_NAME}", lock_record(host="another-host", pid=1))
            with pytest.raises(ConfigError, match="on host another-host, pid 1"):
                RunLock(out, "run").acquire()
            storage.write_bytes(f"{out}/{LOCK_NAME}",
                                lock_record(host="another-host", pid=1, lease_until=time.time() - 1))
            said = []
            with RunLock(out, "run", log=said.append):
                assert storage.read_json(f"{out}/{LOCK_NAME}")["pid"] == os.getpid()
            assert "lease expired" in said[0]
            assert not storage.exists(f"{out}/{LOCK_NAME}")
        finally:
            storage.use_options(None)
