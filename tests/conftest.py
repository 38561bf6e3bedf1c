"""Shared fixtures. Real-format samples are found at $LLAMAPIPE_REALDATA, else ../shared/realdata
(relative to the repository); tests that need them skip with a clear reason when neither exists.

`demo_run` runs the pipeline once per test session on the demo corpus (tests/test_end_to_end.py and
tests/pipeline/report/test_report.py read it); `demo_trained` then trains on it once (`llamapipe train`).

`time_limit(seconds, what)` fails a block that takes too long; a test (or module, with `pytestmark`)
marked `time_bound(seconds)` runs under one: a test against a server that stopped answering fails
instead of waiting out a client's retries (Beam's S3 reads retry for about eight minutes)."""

from __future__ import annotations

import json
import os
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def time_limit(seconds: float, what: str):
    """Raise TimeoutError in the test if `what` takes longer than `seconds` (a hung cluster fails)."""

    def expire(signum, frame):
        raise TimeoutError(f"{what} took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def time_bound(request):
    marker = request.node.get_closest_marker("time_bound")
    if marker is None:
        yield
        return
    with time_limit(marker.args[0], request.node.nodeid):
        yield


def realdata_dir() -> Path | None:
    env = os.environ.get("LLAMAPIPE_REALDATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "realdata")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Folder of real dump samples (see its SOURCES.md)."""
    found = realdata_dir()
    if found is None:
        pytest.skip("real-data samples not found: set LLAMAPIPE_REALDATA or provide ../shared/realdata")
    return found


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> dict:
    """The demo corpus through `run()` with configs/demo.yaml (40 training steps configured)."""
    from llamapipe.pipeline.config import load_config
    from llamapipe.pipeline.run import run
    from llamapipe.sources.demo import write_demo_corpus

    root = tmp_path_factory.mktemp("e2e")
    corpus = root / "demo-data"
    write_demo_corpus(corpus, seed=0)
    with open(REPO / "configs" / "demo.yaml", encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data["output"] = str(root / "out")
    for options in data["sources"].values():
        options["inputs"] = [p.replace("demo-data", str(corpus), 1) for p in options["inputs"]]
    data["train"].update(steps=40, log_every=5, warmup_steps=5, checkpoint_every=0, eval_every=20)
    config_path = root / "demo.yaml"
    config_path.write_text(yaml.safe_dump(data))
    config = load_config(str(config_path))
    result = run(config, log=lambda *_: None)
    plants = json.loads((corpus / "plants.json").read_text())
    return {"root": root, "config_path": str(config_path), "config": config, "result": result,
            "plants": plants, "out": root / "out"}


@pytest.fixture(scope="session")
def demo_trained(demo_run) -> int:
    """`llamapipe train CONFIG --fresh` on the demo run, once; its exit code."""
    from llamapipe.pipeline.cli import main

    return main(["train", demo_run["config_path"], "--fresh"])
