"""`llamapipe train` with its output on S3 (moto's server in a process of its own, from
tests/object_stores.py): the trainer streams the shards from s3://.../out/shards, writes
out/train/checkpoint.pt and metrics.jsonl there, resumes from that checkpoint, and computes what a local
run on the same shards computes; `generate` and `export-hf` read the checkpoint and the tokenizer from
there.

Credentials and the endpoint reach boto3 only through the environment (AWS_ENDPOINT_URL...): Beam's
FileSystems gets empty options from `storage`, so this also checks that boto3 honours AWS_ENDPOINT_URL
that way."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import asdict, replace

import pytest
import torch
import yaml

from llamapipe.model.checkpoints import read_checkpoint
from llamapipe.model.train import TrainConfig, train
from llamapipe.pipeline.cli import main
from tests.object_stores import no_aws_environment, s3_server  # noqa: F401 (the fixture)

pytest.importorskip("moto")

VOCAB = 380  # the spm_model fixture's pieces: a real tokenizer, so that `generate` can run
# Two layers of the tiny preset, short sequences; two DataLoader worker processes (they open the s3://
# shards themselves); held-out evaluation; the learning rate constant after warmup, so that a run
# stopped at step 3 by `--steps 3` and resumed with the config's 6 steps follows the schedule of a
# straight 6-step run.
TRAIN = TrainConfig(
    model="tiny", n_layers=2, seq_len=32, batch_size=8, steps=6, lr=3e-3, min_lr_ratio=1.0, warmup_steps=2,
    log_every=1, eval_every=3, holdout_fraction=0.2, checkpoint_every=0, threads=1, num_workers=2,
)

pytestmark = pytest.mark.time_bound(300)  # a hung server fails the test, not the suite


def repetitive_docs(offset: int, n_docs: int) -> list[list[int]]:
    cycle = list(range(3 + offset, 3 + offset + 12))
    return [[1] + [cycle[(i + j) % len(cycle)] for j in range(60)] for i in range(n_docs)]


@pytest.fixture
def bucket(s3_server, monkeypatch, tmp_path):  # noqa: F811 (the imported fixture)
    """A fresh bucket on the module's moto server; the environment pointing boto3 at it (and nowhere
    else: no other AWS variable, no ~/.aws, no metadata service); Beam's FileSystems without options
    before (so that `storage` sets empty ones, leaving everything to boto3) and after."""
    from apache_beam.io.filesystems import FileSystems

    for key, value in {**no_aws_environment(tmp_path), **s3_server.env}.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    name = f"llamapipe-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    FileSystems._pipeline_options = None
    try:
        yield s3_server.client(), name
    finally:
        FileSystems._pipeline_options = None


def keys_under(client, bucket: str, prefix: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"][len(prefix):] for item in listed)


@pytest.fixture
def run_on_s3(bucket, shards_factory, spm_model, tmp_path):
    """A finished pipeline run's OUT (shards, manifest, tokenizer) written locally and copied to
    s3://BUCKET/out, and a config whose output is that prefix. Returns (client, bucket, local manifest,
    config path)."""
    client, name = bucket
    manifest = shards_factory(
        {"c4": [repetitive_docs(0, 20), repetitive_docs(0, 20)], "github": [repetitive_docs(20, 20)]},
        {"c4": 0.7, "github": 0.3}, vocab_size=VOCAB, row_group_size=5, tokenizer_bytes=spm_model,
    )
    out = manifest.parent.parent
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        client.upload_file(str(path), name, f"out/{path.relative_to(out).as_posix()}")
    config = {"output": f"s3://{name}/out", "sources": {"c4": {"inputs": ["unused/*.json.gz"]}},
              "train": asdict(TRAIN)}
    config_path = tmp_path / "remote.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return client, name, manifest, config_path


def read_metrics_object(client, bucket: str) -> list[dict]:
    body = client.get_object(Bucket=bucket, Key="out/train/metrics.jsonl")["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def read_checkpoint_object(client, bucket: str) -> dict:
    body = client.get_object(Bucket=bucket, Key="out/train/checkpoint.pt")["Body"].read()
    return torch.load(io.BytesIO(body), weights_only=True)


def test_train_on_s3_resumes_like_a_local_run_then_generate_and_export_read_from_s3(run_on_s3, tmp_path,
                                                                                      capsys):
    """The run trained on S3 here is also the one `generate` and `export-hf` then read from there."""
    client, name, manifest, config_path = run_on_s3
    # Stopped after 3 of the 6 steps, as a job hitting its time limit would be.
    assert main(["train", str(config_path), "--steps", "3"]) == 0
    assert keys_under(client, name, "out/train/") == ["checkpoint.pt", "metrics.jsonl"]  # nothing else
    assert [m["step"] for m in read_metrics_object(client, name)] == [1, 2, 3]
    assert read_checkpoint_object(client, name)["step"] == 3
    capsys.readouterr()

    assert main(["train", str(config_path)]) == 0  # the config's 6 steps: resumed from the S3 checkpoint
    printed = capsys.readouterr().out
    assert "resuming at step 3" in printed
    assert f"report: not written for s3://{name}/out (remote)" in printed
    assert keys_under(client, name, "out/train/") == ["checkpoint.pt", "metrics.jsonl"]
    remote_metrics = read_metrics_object(client, name)
    remote = read_checkpoint_object(client, name)
    assert remote["step"] == 6
    assert remote["manifest"] == f"s3://{name}/out/shards/manifest.json"
    assert remote["tokenizer"]["path"] == f"s3://{name}/out/tokenizer/tokenizer.model"

    # The same shards read locally, in one straight run: the same losses, evaluations and weights.
    local_out = tmp_path / "local"
    train(str(manifest), str(local_out), TRAIN, progress=False)
    local_metrics = [json.loads(line) for line in (local_out / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["loss"]) for m in remote_metrics] == [(m["step"], m["loss"]) for m in local_metrics]
    assert [m["step"] for m in remote_metrics] == list(range(1, 7))
    evaluations = [(m["step"], m["source_loss"]) for m in local_metrics if "source_loss" in m]
    assert [s for s, _ in evaluations] == [3, 6]
    assert [(m["step"], m["source_loss"]) for m in remote_metrics if "source_loss" in m] == evaluations
    assert [m["source_tokens"] for m in remote_metrics] == [m["source_tokens"] for m in local_metrics]
    local = torch.load(local_out / "checkpoint.pt", weights_only=True)
    for key in local["model"]:
        assert torch.equal(local["model"][key], remote["model"][key]), key
    assert local["ranks"][0]["loader"] == remote["ranks"][0]["loader"]  # positions name shards by file name

    # `generate` and `export-hf` on the checkpoint and the tokenizer on S3.
    capsys.readouterr()
    prompt = ["--prompt", "the river", "--temperature", "0", "--max-new-tokens", "8"]
    assert main(["generate", f"s3://{name}/out/train", *prompt]) == 0
    from_s3 = capsys.readouterr().out
    assert from_s3.startswith("the river")

    # The same checkpoint and tokenizer copied to a local disk: the same text.
    copy = tmp_path / "copy"
    copy.mkdir()
    client.download_file(name, "out/train/checkpoint.pt", str(copy / "checkpoint.pt"))
    client.download_file(name, "out/tokenizer/tokenizer.model", str(copy / "tokenizer.model"))
    assert main(["generate", str(copy), *prompt, "--tokenizer", str(copy / "tokenizer.model")]) == 0
    assert capsys.readouterr().out == from_s3

    # The tokenizer changed on S3 since training: refused, by its sha256 read from there.
    client.put_object(Bucket=name, Key="out/tokenizer/tokenizer.model", Body=b"retrained")
    assert main(["generate", f"s3://{name}/out/train/checkpoint.pt", *prompt]) == 2
    assert "changed since training" in capsys.readouterr().err
    client.upload_file(str(copy / "tokenizer.model"), name, "out/tokenizer/tokenizer.model")

    hf = tmp_path / "hf"
    assert main(["export-hf", f"s3://{name}/out/train", str(hf)]) == 0
    assert {"config.json", "model.safetensors", "tokenizer.model"} <= {p.name for p in hf.iterdir()}
    assert (hf / "tokenizer.model").read_bytes() == (copy / "tokenizer.model").read_bytes()
    assert json.loads((hf / "config.json").read_text())["vocab_size"] == VOCAB



def test_fsdp_sharded_checkpoint_on_s3_commits_resumes_and_exports(run_on_s3, tmp_path, capsys):
    """`parallelism: fsdp` (one rank) with OUT on S3: dcp's shards staged locally and uploaded as
    checkpoint.dcp/step-N/, committed by checkpoint.dcp/LATEST, older versions deleted; the resumed run
    computes what a straight local FSDP run computes; export-hf reads the sharded checkpoint from S3."""
    client, name, manifest, config_path = run_on_s3
    assert main(["train", str(config_path), "--parallelism", "fsdp", "--steps", "3"]) == 0
    version = ["checkpoint.dcp/step-000000003/" + f for f in (".metadata", "__0_0.distcp", "trainer.pt")]
    assert keys_under(client, name, "out/train/") == ["checkpoint.dcp/LATEST", *version, "metrics.jsonl"]
    capsys.readouterr()
    assert main(["train", str(config_path), "--parallelism", "fsdp"]) == 0
    assert "resuming at step 3" in capsys.readouterr().out
    assert keys_under(client, name, "out/train/") == [
        "checkpoint.dcp/LATEST", *(key.replace("3/", "6/") for key in version), "metrics.jsonl"]

    local_out = tmp_path / "local"
    train(str(manifest), str(local_out), replace(TRAIN, parallelism="fsdp"), progress=False)
    local_metrics = [json.loads(line) for line in (local_out / "metrics.jsonl").read_text().splitlines()]
    remote_metrics = read_metrics_object(client, name)
    assert [(m["step"], m["loss"]) for m in remote_metrics] == [(m["step"], m["loss"]) for m in local_metrics]
    remote, local = read_checkpoint(f"s3://{name}/out/train"), read_checkpoint(local_out)
    assert remote["step"] == 6 and remote["manifest"] == f"s3://{name}/out/shards/manifest.json"
    for key in local["model"]:
        assert torch.equal(local["model"][key], remote["model"][key]), key

    hf = tmp_path / "hf"
    assert main(["export-hf", f"s3://{name}/out/train", str(hf)]) == 0
    assert {"config.json", "model.safetensors", "tokenizer.model"} <= {p.name for p in hf.iterdir()}
