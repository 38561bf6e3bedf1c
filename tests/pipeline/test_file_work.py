"""Runs that survive and grow (issue 21): the per-file work is recorded per input file under OUT.

- A run SIGKILLed once at least half of its input files are recorded, run again with the same command,
  processes only the files not recorded, and its shards and manifest are byte-identical to an
  uninterrupted run's.
- A run over half of the input files, then over all of them in the same OUT, reuses the first half's
  work and equals a fresh run on all files byte for byte; back to the half, it equals the first run.
- `llamapipe status` mid-run and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from llamapipe.pipeline.config import load_config
from llamapipe.pipeline.file_work import InputFile, Records, list_inputs
from llamapipe.pipeline.plumbing.typed_yaml import ConfigError
from llamapipe.pipeline.run import run
from llamapipe.pipeline.status import run_status
from llamapipe.sources.demo import write_demo_corpus
from llamapipe.tokenizer.format import storage
from tests.conftest import REPO
from tests.object_stores import applied_env, no_aws_environment, s3_server  # noqa: F401 (the fixture)

SCALE = 0.2  # 448 documents in 27 input files


def write_config(folder: Path, corpus: Path, out: Path, inputs: dict[str, list[str]] | None = None) -> str:
    with open(REPO / "configs" / "demo.yaml", encoding="utf-8") as f:
        data = yaml.safe_load(f)
    for name, options in data["sources"].items():
        options["inputs"] = inputs[name] if inputs else [
            p.replace("demo-data", str(corpus), 1) for p in options["inputs"]]
    data["output"] = str(out)
    data["decontamination"]["sets"] = {name: [p.replace("demo-data", str(corpus), 1) for p in globs]
                                         for name, globs in data["decontamination"]["sets"].items()}
    data["runner"]["options"] = {"direct_running_mode": "in_memory", "direct_num_workers": 1}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"config-{out.name}-{len(list(folder.glob('config-*')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def result_digests(out: Path) -> dict[str, str]:
    """sha256 of every shard and of the manifest."""
    files = sorted((out / "shards").rglob("*.parquet")) + [out / "shards" / "manifest.json"]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def cli_status(out: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "llamapipe.pipeline.cli", "status", str(out), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("file-work") / "demo-data"
    write_demo_corpus(folder, seed=0, scale=SCALE)
    return folder


@pytest.fixture(scope="module")
def fresh(corpus, tmp_path_factory) -> dict[str, str]:
    """An uninterrupted run on all the files: the reference."""
    folder = tmp_path_factory.mktemp("fresh")
    run(load_config(write_config(folder, corpus, folder / "out")), log=lambda line: None)
    return result_digests(folder / "out")


def test_a_run_killed_after_half_its_files_resumes_with_the_rest_only(corpus, fresh, tmp_path):
    out = tmp_path / "out"
    config_path = write_config(tmp_path, corpus, out)
    total = len(list_inputs(load_config(config_path)))
    assert total >= 20
    process = subprocess.Popen([sys.executable, "-m", "llamapipe.pipeline.cli", "run", config_path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, mid_run = time.monotonic() + 300, None
    try:
        while True:
            assert process.poll() is None, "the run ended before half of its files were recorded"
            assert time.monotonic() < deadline, "half of the files not recorded within the time limit"
            if (out / "run.json").exists():
                try:
                    status = run_status(str(out))
                except (OSError, ValueError):
                    status = None  # run.json being replaced as we read it
                if status and status["files_done"] >= (total + 1) // 2:
                    mid_run = status
                    break
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    # Mid-run, status said where the run was.
    assert mid_run["running"] is True and mid_run["holder"]["pid"] == process.pid
    assert mid_run["stage_now"] == "per-file work" and mid_run["stages_done"] == []
    assert mid_run["files_total"] == total and mid_run["last_run"]["files_reused"] == 0
    assert mid_run["last_run"]["files_processed"] == mid_run["files_done"]
    assert 0 < mid_run["documents_so_far"]

    after_kill = run_status(str(out))
    recorded = after_kill["files_done"]
    assert (total + 1) // 2 <= recorded < total, "killed too late: every file was recorded"
    assert after_kill["running"] is False and after_kill["stage_now"].startswith("stopped before")

    said = []
    run(load_config(config_path), log=said.append)
    status = cli_status(out)
    assert status["last_run"]["files_reused"] == recorded
    assert status["last_run"]["files_processed"] == total - recorded
    assert status["files_done"] == status["files_total"] == total
    assert status["stage_now"] == "finished" and status["running"] is False
    assert any(f"per-file work on {total - recorded} of {total} input files" in line for line in said)
    assert result_digests(out) == fresh

    # The same command again: nothing to do per file, and every stage was finished.
    said = []
    run(load_config(config_path), log=said.append)
    assert any("cleaning: done in an earlier attempt" in line for line in said)
    again = cli_status(out)["last_run"]
    assert again["files_processed"] == 0 and again["files_reused"] == total
    assert result_digests(out) == fresh


def test_a_run_over_half_the_files_then_all_reuses_the_half_and_equals_a_fresh_run(corpus, fresh, tmp_path):
    everything = list_inputs(load_config(write_config(tmp_path, corpus, tmp_path / "probe")))
    by_source: dict[str, list[InputFile]] = {}
    for f in everything:
        by_source.setdefault(f.source, []).append(f)
    half = {name: [f.path for f in files[: (len(files) + 1) // 2]] for name, files in by_source.items()}
    half_count = sum(len(paths) for paths in half.values())
    assert 0 < half_count < len(everything)

    out = tmp_path / "out"
    run(load_config(write_config(tmp_path, corpus, out, inputs=half)), log=lambda line: None)
    status = cli_status(out)
    assert status["last_run"]["files_processed"] == half_count and status["last_run"]["files_reused"] == 0
    first = result_digests(out)

    # Files added: the half's work is reused; the corpus-wide stages cover every file.
    said = []
    run(load_config(write_config(tmp_path, corpus, out)), log=said.append)
    status = cli_status(out)
    assert status["last_run"]["files_reused"] == half_count
    assert status["last_run"]["files_processed"] == len(everything) - half_count
    assert result_digests(out) == fresh

    # Files removed: back to the half, nothing is processed again and the result is the first run's.
    run(load_config(write_config(tmp_path, corpus, out, inputs=half)), log=lambda line: None)
    status = cli_status(out)
    assert status["last_run"]["files_reused"] == half_count and status["last_run"]["files_processed"] == 0
    assert result_digests(out) == first

    # Any other difference is still refused, naming the key.
    changed = yaml.safe_load(Path(write_config(tmp_path, corpus, out)).read_text())
    changed["dedup"]["threshold"] = 0.7
    other = tmp_path / "changed.yaml"
    other.write_text(yaml.safe_dump(changed))
    with pytest.raises(ConfigError, match="dedup.threshold differs"):
        run(load_config(str(other)), log=lambda line: None)


@pytest.mark.time_bound(900)
def test_on_s3_half_then_all_reuses_the_half_and_equals_the_local_run(corpus, fresh, tmp_path, request):
    s3 = request.getfixturevalue("s3_server")  # moto's S3 server on 127.0.0.1 (tests/object_stores.py)
    root = s3.create_bucket("file-work")
    bucket = root.removeprefix("s3://")
    client = s3.client()
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"demo-data/{path.relative_to(corpus)}")
    with applied_env({**no_aws_environment(tmp_path), **s3.env}):
        storage.use_options(None)
        try:
            everything = list_inputs(load_config(write_config(tmp_path, corpus, tmp_path / "local-probe")))
            remote = {f.path: f.path.replace(str(corpus), f"{root}/demo-data", 1) for f in everything}
            all_inputs: dict[str, list[str]] = {}
            for f in everything:
                all_inputs.setdefault(f.source, []).append(remote[f.path])
            half = {name: paths[: (len(paths) + 1) // 2] for name, paths in all_inputs.items()}
            half_count = sum(len(paths) for paths in half.values())
            out = f"{root}/out"
            for inputs in (half, all_inputs):
                config = load_config(write_config(tmp_path, corpus, tmp_path / "s3", inputs=inputs))
                config.output = out
                run(config, log=lambda line: None)
            status = run_status(out)
            assert status["last_run"]["files_reused"] == half_count
            assert status["last_run"]["files_processed"] == len(everything) - half_count
            assert status["files_done"] == status["files_total"] == len(everything)
            digests = {}
            for key in sorted(fresh):
                with storage.open_read(f"{out}/{key}") as f:
                    digests[key] = hashlib.sha256(f.read()).hexdigest()
            assert digests == fresh
        finally:
            storage.use_options(None)


def test_records_count_a_file_only_when_its_plan_and_every_split_are_recorded(tmp_path):
    files_dir = tmp_path / "files"
    f = InputFile("c4", "/data/c4/en.0001.json.gz", 1234)
    folder = files_dir / "c4" / f.key
    folder.mkdir(parents=True)
    assert not Records(str(files_dir)).is_done(f)
    (folder / "splits-00002").write_bytes(b"")
    (folder / "00000.done-7.json").write_text("{}")
    (folder / "00001.abc.docs.zst").write_bytes(b"")  # a killed attempt's file: not a record
    records = Records(str(files_dir))
    assert not records.is_done(f) and records.done_splits(f) == {0} and records.documents(f) == 7
    (folder / "00001.done-5.json").write_text("{}")
    records = Records(str(files_dir))
    assert records.is_done(f) and records.documents(f) == 12
    assert [Path(p).name for _, p in records.records([f])] == ["00000.done-7.json", "00001.done-5.json"]
    # The same path with another size is another file (rewritten in place): not recorded.
    assert not records.is_done(InputFile("c4", f.path, 999))


def test_status_of_a_folder_without_a_run_is_one_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "llamapipe.pipeline.cli", "status", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no run record" in done.stderr and "Traceback" not in done.stderr
