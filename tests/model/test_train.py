from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from llamapipe.model.llama import ModelArgs, Transformer, model_args
from llamapipe.model.train import TrainConfig, lr_at, param_groups, train

VOCAB = 64
METRIC_KEYS = {"step", "loss", "lr", "tokens_per_s", "elapsed_s", "source_tokens"}
# A small, quick configuration: 2 layers of the tiny preset, short sequences.
FAST = TrainConfig(
    model="tiny", n_layers=2, seq_len=32, batch_size=8, steps=6, lr=3e-3, warmup_steps=2, log_every=1,
    checkpoint_every=0, threads=1,
)


def repetitive_docs(offset: int, n_docs: int) -> list[list[int]]:
    """Documents that cycle through a fixed run of ids: easy to learn, so the loss must drop."""
    cycle = list(range(3 + offset, 3 + offset + 12))
    return [[1] + [cycle[(i + j) % len(cycle)] for j in range(60)] for i in range(n_docs)]


@pytest.fixture
def manifest(shards_factory) -> Path:
    return shards_factory(
        {"c4": [repetitive_docs(0, 20), repetitive_docs(0, 20)], "github": [repetitive_docs(20, 20)]},
        {"c4": 0.7, "github": 0.3},
        vocab_size=VOCAB,
        row_group_size=5,
    )


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_loss_falls_on_a_learnable_mixture_and_metrics_are_logged(manifest, tmp_path):
    out = tmp_path / "run"
    cfg = replace(FAST, steps=40, log_every=5, checkpoint_every=20)
    summary = train(str(manifest), str(out), cfg, progress=False)
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == list(range(5, 41, 5))
    assert all(METRIC_KEYS <= set(m) for m in metrics)
    assert metrics[0]["loss"] > 2.5  # averaged over steps 1-5, from ln(64) = 4.16 down
    assert metrics[-1]["loss"] < 0.5 * metrics[0]["loss"]
    assert summary["first_loss"] == metrics[0]["loss"] and summary["last_loss"] == metrics[-1]["loss"]
    args = ModelArgs(**torch.load(out / "checkpoint.pt", weights_only=True)["model_args"])
    assert (args.vocab_size, args.n_layers, args.max_seq_len) == (VOCAB, 2, 32)  # vocab from the manifest
    assert summary["params"] == Transformer(args).num_params()
    assert summary["step"] == 40 and summary["tokens_per_s"] > 0
    seen = metrics[-1]["source_tokens"]
    assert sum(seen.values()) == 40 * 8 * 32 == summary["tokens"]
    assert 0.55 < seen["c4"] / sum(seen.values()) < 0.85  # shares 0.7 / 0.3
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]  # no temp files left


def test_interrupted_and_resumed_run_ends_with_the_same_weights(manifest, tmp_path):
    cfg = replace(FAST, grad_accum_steps=2)
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    train(str(manifest), str(straight), cfg, progress=False)

    first = train(str(manifest), str(interrupted), cfg, progress=False, stop_at=3)
    assert first["step"] == 3
    with open(interrupted / "metrics.jsonl", "a") as f:  # a line logged after the checkpoint, then a crash
        f.write(json.dumps({"step": 4, "loss": 99.0}) + "\n")
    second = train(str(manifest), str(interrupted), cfg, progress=False)
    assert second["resumed_from"] == 3 and second["step"] == 6

    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(interrupted / "checkpoint.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["ranks"][0]["loader"] == b["ranks"][0]["loader"]
    moments = zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True)
    assert all(torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"]) for sa, sb in moments)
    losses = [(m["step"], m["loss"]) for m in read_metrics(straight)]
    assert [(m["step"], m["loss"]) for m in read_metrics(interrupted)] == losses  # stale line 4 replaced
    assert b["step"] == 6 and b["config"]["grad_accum_steps"] == 2

    # Nothing left to do: resuming a finished run trains no further.
    assert train(str(manifest), str(interrupted), cfg, progress=False)["step"] == 6
    assert torch.equal(torch.load(interrupted / "checkpoint.pt", weights_only=True)["model"]["norm.weight"],
                       b["model"]["norm.weight"])


def test_resume_false_starts_over_and_a_different_model_is_refused(manifest, tmp_path):
    out = tmp_path / "run"
    train(str(manifest), str(out), replace(FAST, steps=2), progress=False)
    summary = train(str(manifest), str(out), replace(FAST, steps=3), resume=False, progress=False)
    assert summary["resumed_from"] is None
    assert [m["step"] for m in read_metrics(out)] == [1, 2, 3]
    with pytest.raises(ValueError, match="different model"):
        train(str(manifest), str(out), replace(FAST, n_layers=3), progress=False)


def test_a_tokenizer_changed_since_sharding_is_refused(manifest, tmp_path):
    (manifest.parent.parent / "tokenizer" / "tokenizer.model").write_bytes(b"retrained")
    with pytest.raises(ValueError, match="shards were tokenized with sha256"):
        train(str(manifest), str(tmp_path / "run"), FAST, progress=False)


def test_bfloat16_checkpointed_run_with_per_source_loss(manifest, tmp_path, capsys):
    cfg = replace(FAST, steps=4, dtype="bfloat16", activation_checkpointing=True, eval_every=2, log_every=4)
    train(str(manifest), str(tmp_path / "run"), cfg, progress=True)
    metrics = read_metrics(tmp_path / "run")
    assert [m["step"] for m in metrics] == [2, 4]  # evaluation steps are logged too
    assert set(metrics[-1]["source_loss"]) == {"c4", "github"}
    assert all(0 < loss < 10 for loss in metrics[-1]["source_loss"].values())
    assert "step      4/4 | loss" in capsys.readouterr().out


def test_learning_rate_warms_up_then_follows_a_cosine_to_ten_percent():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1)
    lrs = [lr_at(step, cfg) for step in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10], strict=False))
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(1e-4)
    assert lr_at(54, cfg) == pytest.approx(0.55e-3, rel=0.02)  # halfway down the cosine


def test_weight_decay_applies_to_matrices_not_norms():
    model = Transformer(model_args("tiny", vocab_size=VOCAB, n_layers=2))
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in no_decay["params"]} == {
        id(p) for name, p in model.named_parameters() if name.endswith("norm.weight")
    }
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_config_rejects_what_it_cannot_do():
    with pytest.raises(ValueError, match="float16"):
        TrainConfig(dtype="float16")
    with pytest.raises(ValueError, match="unknown model preset"):
        TrainConfig(model="7b")
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)


DDP_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from llamapipe.model.train import TrainConfig, train
    cfg = TrainConfig(**json.loads(sys.argv[3]))
    summary = train(sys.argv[1], sys.argv[2], cfg, progress=False)
    print(json.dumps(summary))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_rank_ddp_run_splits_the_data_and_writes_once(manifest, tmp_path):
    out = tmp_path / "ddp"
    cfg = {"model": "tiny", "n_layers": 2, "seq_len": 16, "batch_size": 4, "steps": 3, "warmup_steps": 1,
           "log_every": 1, "checkpoint_every": 0, "threads": 1}
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", DDP_SCRIPT, str(manifest), str(out), json.dumps(cfg)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_, stderr) in zip(procs, results, strict=True):
        assert proc.returncode == 0, stderr
    summaries = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in results]
    assert [s["world_size"] for s in summaries] == [2, 2]
    assert summaries[0]["last_loss"] == summaries[1]["last_loss"]  # the logged loss is the global mean
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == [1, 2, 3]  # one writer
    assert sum(metrics[-1]["source_tokens"].values()) == 3 * 2 * 4 * 16  # both ranks' rows counted
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    loaders = [rank["loader"] for rank in checkpoint["ranks"]]
    assert [state["rank"] for state in loaders] == [0, 1] and loaders[0]["workers"] != loaders[1]["workers"]
