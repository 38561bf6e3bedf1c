"""Resume: a run killed (SIGKILL) after its tokenizer is trained, run again with the same command,
finishes without cleaning again or retraining the tokenizer, and its manifest and shards equal those
of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import yaml

from llamapipe.pipeline.config import load_config
from llamapipe.pipeline.resume import CompletedStages, complete_shard_sources, remove_incomplete_shards
from llamapipe.pipeline.run import run
from llamapipe.sources.demo import write_demo_corpus
from tests.conftest import demo_config
from tests.hostile.test_determinism import shard_digests


def small_config(tmp_path) -> str:
    corpus = tmp_path / "demo-data"
    write_demo_corpus(corpus, seed=0, scale=0.05)
    data = demo_config(corpus, tmp_path / "out")
    data["runner"]["options"] = {"direct_running_mode": "in_memory", "direct_num_workers": 1}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def completed_stages(out) -> list[str]:
    try:
        return list(json.loads((out / "_work" / "completed.json").read_text()))
    except (OSError, ValueError):
        return []


def kill_after_tokenizer(config_path: str, out, timeout: float = 300.0) -> None:
    """Start `llamapipe run` in its own process group; SIGKILL the group once the tokenizer stage
    is recorded (the tokenization pipeline is then starting)."""
    process = subprocess.Popen([sys.executable, "-m", "llamapipe.pipeline.cli", "run", config_path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while "tokenizer" not in completed_stages(out):
            assert process.poll() is None, "the run ended before its tokenizer was trained"
            assert time.monotonic() < deadline, "no tokenizer within the time limit"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def file_stamps(folder) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_run_killed_after_the_tokenizer_resumes_to_the_uninterrupted_result(tmp_path):
    config_path = small_config(tmp_path)
    out = tmp_path / "out"
    kill_after_tokenizer(config_path, out)
    assert completed_stages(out) == ["clean", "tokenizer"], "killed too late to test a resume"
    documents, tokenizer = file_stamps(out / "documents"), file_stamps(out / "tokenizer")
    assert documents and tokenizer

    said = []
    result = run(load_config(config_path), log=said.append)
    assert any("cleaning: done in an earlier attempt" in line for line in said)
    assert any("tokenizer: trained in an earlier attempt" in line for line in said)
    assert file_stamps(out / "documents") == documents  # not cleaned again
    assert file_stamps(out / "tokenizer") == tokenizer  # not trained again
    assert json.loads((out / "run.json").read_text())["resumed"] == ["clean", "tokenizer"]
    resumed = shard_digests(out / "shards")
    assert result["manifest"]["total_tokens"] > 0

    run(load_config(config_path), log=lambda *_: None, fresh=True)  # the uninterrupted run
    assert shard_digests(out / "shards") == resumed  # every shard and the manifest, byte for byte
    assert file_stamps(out / "documents") != documents  # --fresh did clean again


def test_only_complete_shard_sets_are_kept(tmp_path):
    shards = tmp_path / "shards"
    (shards / "c4").mkdir(parents=True)
    (shards / "books").mkdir()
    for i in range(3):
        (shards / "c4" / f"c4-{i:05d}-of-00003.parquet").write_bytes(b"x")
    (shards / "c4" / ".c4-00001-of-00003.parquet.abc.tmp").write_bytes(b"partial")
    (shards / "books" / "books-00000-of-00002.parquet").write_bytes(b"x")  # 1 of 2: killed mid-way
    (shards / "manifest.json").write_text("{}")

    assert complete_shard_sources(str(shards)) == {"c4"}
    remove_incomplete_shards(str(shards))
    assert sorted(p.name for p in shards.iterdir()) == ["c4"]
    expected = [f"c4-{i:05d}-of-00003.parquet" for i in range(3)]
    assert sorted(p.name for p in (shards / "c4").iterdir()) == expected


def test_a_stage_counts_only_after_every_earlier_one(tmp_path):
    (tmp_path / "_work").mkdir()
    (tmp_path / "_work" / "completed.json").write_text(json.dumps({"tokenizer": {}, "tokenize": {}}))
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "documents").mkdir()
    completed = CompletedStages(str(tmp_path))
    assert completed.names() == []
    completed.clear_unfinished()
    assert not (tmp_path / "tokenizer").exists() and not (tmp_path / "documents").exists()

    (tmp_path / "_work" / "completed.json").write_text("{not json")
    assert CompletedStages(str(tmp_path)).names() == []
