"""Shared fixtures. Real-format samples are found at $LLAMAPIPE_REALDATA, else ../shared/realdata
(relative to the repository); tests that need them skip with a clear reason when neither exists, and
fail instead when $LLAMAPIPE_REQUIRE_REALDATA is set (CI sets it: `.ci/run`), so that a missing folder
cannot quietly turn every real-format test into a skip.

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


REALDATA = "LLAMAPIPE_REALDATA"  # where the real dump samples are, if not at DEFAULT_REALDATA
REQUIRE_REALDATA = "LLAMAPIPE_REQUIRE_REALDATA"  # set (not "" or "0"): missing samples fail the tests
DEFAULT_REALDATA = REPO.parent / "shared" / "realdata"


def realdata_candidates(environ=os.environ, default: Path = DEFAULT_REALDATA) -> list[Path]:
    """Where the samples are looked for, in order."""
    named = [Path(environ[REALDATA])] if environ.get(REALDATA) else []
    return [*named, default]


def realdata_dir(environ=os.environ, default: Path = DEFAULT_REALDATA) -> Path | None:
    for candidate in realdata_candidates(environ, default):
        if candidate.is_dir():
            return candidate
    return None


def require_realdata(environ=os.environ, default: Path = DEFAULT_REALDATA) -> Path:
    """The samples' folder. Missing: the calling test skips with the reason, or fails when
    REQUIRE_REALDATA is set, since in CI a skip would hide that no real-format test ran."""
    found = realdata_dir(environ, default)
    if found is not None:
        return found
    looked = ", ".join(str(path) for path in realdata_candidates(environ, default))
    reason = f"real-data samples not found (looked in {looked}): set {REALDATA} or provide ../shared/realdata"
    if environ.get(REQUIRE_REALDATA, "") not in ("", "0"):
        pytest.fail(f"{reason}; {REQUIRE_REALDATA} is set, so the real-data tests may not skip",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Folder of real dump samples (see its SOURCES.md)."""
    return require_realdata()


def demo_config(corpus, out) -> dict:
    """configs/demo.yaml (as a dict) reading the demo corpus at `corpus`, writing to `out`."""
    with open(REPO / "configs" / "demo.yaml", encoding="utf-8") as f:
        data = yaml.safe_load(f)
    for options in data["sources"].values():
        options["inputs"] = [p.replace("demo-data", str(corpus), 1) for p in options["inputs"]]
    data["output"] = str(out)
    data["decontamination"]["sets"] = {name: [p.replace("demo-data", str(corpus), 1) for p in globs]
                                         for name, globs in data["decontamination"]["sets"].items()}
    return data


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> dict:
    """The demo corpus through `run()` with configs/demo.yaml (40 training steps configured)."""
    from llamapipe.pipeline.config import load_config
    from llamapipe.pipeline.run import run
    from llamapipe.sources.demo import write_demo_corpus

    root = tmp_path_factory.mktemp("e2e")
    corpus = root / "demo-data"
    write_demo_corpus(corpus, seed=0)
    data = demo_config(corpus, root / "out")
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
