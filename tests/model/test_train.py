from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from llamapipe.model.data import is_held_out
from llamapipe.model.llama import ModelArgs, Transformer, model_args
from llamapipe.model.plan import flops_per_token
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


def test_twenty_steps_equal_ten_then_checkpoint_resume_and_ten_more(manifest, tmp_path):
    # 2 micro-steps of 8 x 32 tokens (batch given in tokens), held-out evaluation every 5 steps.
    cfg = replace(FAST, steps=20, batch_tokens=2 * 8 * 32, holdout_fraction=0.2, eval_every=5)
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert train(str(manifest), str(straight), cfg, progress=False)["accum_steps"] == 2

    first = train(str(manifest), str(interrupted), cfg, progress=False, stop_at=10)
    assert first["step"] == 10
    with open(interrupted / "metrics.jsonl", "a") as f:  # a line logged after the checkpoint, then a crash
        f.write(json.dumps({"step": 11, "loss": 99.0}) + "\n")
    second = train(str(manifest), str(interrupted), cfg, progress=False)
    assert second["resumed_from"] == 10 and second["step"] == 20

    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(interrupted / "checkpoint.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["ranks"][0]["loader"] == b["ranks"][0]["loader"]
    moments = zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True)
    assert all(torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"]) for sa, sb in moments)
    straight_metrics, resumed_metrics = read_metrics(straight), read_metrics(interrupted)
    losses = [(m["step"], m["loss"]) for m in straight_metrics]
    assert [m["step"] for m in straight_metrics] == list(range(1, 21))
    assert [(m["step"], m["loss"]) for m in resumed_metrics] == losses  # identical; stale line 11 replaced
    evaluations = [m["source_loss"] for m in straight_metrics if "source_loss" in m]
    assert len(evaluations) == 4
    assert evaluations == [m["source_loss"] for m in resumed_metrics if "source_loss" in m]
    assert b["step"] == 20 and b["config"]["batch_tokens"] == 512

    # Nothing left to do: resuming a finished run trains no further.
    assert train(str(manifest), str(interrupted), cfg, progress=False)["step"] == 20
    assert torch.equal(torch.load(interrupted / "checkpoint.pt", weights_only=True)["model"]["norm.weight"],
                       b["model"]["norm.weight"])


def test_a_checkpoint_of_the_unfused_optimizer_resumes_on_the_fused_one(manifest, tmp_path):
    # Checkpoints written before the trainer chose the fused AdamW kernel on CPU record fused=None in their
    # param groups; loading them must not switch this run back to the slow per-parameter loop.
    cfg = replace(FAST, steps=6)
    straight, old = tmp_path / "straight", tmp_path / "old"
    train(str(manifest), str(straight), cfg, progress=False)
    train(str(manifest), str(old), cfg, progress=False, stop_at=3)
    checkpoint = torch.load(old / "checkpoint.pt", weights_only=True)
    assert all(group["fused"] for group in checkpoint["optimizer"]["param_groups"])
    for group in checkpoint["optimizer"]["param_groups"]:
        group.update(fused=None, foreach=None)  # as the old trainer wrote them on CPU
    torch.save(checkpoint, old / "checkpoint.pt")
    assert train(str(manifest), str(old), cfg, progress=False)["resumed_from"] == 3
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(old / "checkpoint.pt", weights_only=True)
    assert all(group["fused"] is True for group in b["optimizer"]["param_groups"])
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


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
    cfg = replace(FAST, steps=4, dtype="bfloat16", activation_checkpointing=True, eval_every=2, log_every=4,
                  holdout_fraction=0.2)
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
    with pytest.raises(ValueError, match="held-out"):
        TrainConfig(eval_every=10, holdout_fraction=0)


def test_held_out_loss_is_measured_on_documents_training_never_saw(shards_factory, tmp_path, capsys):
    """Training on one cycle of ids, evaluating on documents of another: the training loss falls, the
    held-out loss of a source whose held-out documents differ from its training ones does not."""
    docs = repetitive_docs(0, 40)
    # wikipedia: same pattern in every document; books: held-out documents of a pattern training lacks.
    held = {i for i in range(40) if is_held_out(f"books:0:{i}", 0.3)}
    books = [repetitive_docs(30, 1)[0] if i in held else doc for i, doc in enumerate(docs)]
    manifest = shards_factory({"wikipedia": [docs], "books": [books], "tiny": [docs[:1]]},
                              vocab_size=VOCAB, row_group_size=5)
    assert not is_held_out("tiny:0:0", 0.3)  # a source with no held-out document at all
    cfg = replace(FAST, steps=30, log_every=30, eval_every=30, holdout_fraction=0.3)
    train(str(manifest), str(tmp_path / "run"), cfg, progress=True)
    final = read_metrics(tmp_path / "run")[-1]
    assert set(final["source_loss"]) == {"wikipedia", "books"}
    assert final["source_loss"]["wikipedia"] < 1.0 < 3.0 < final["source_loss"]["books"]
    assert "no held-out documents (holdout_fraction 0.3) in: tiny" in capsys.readouterr().out


def test_mfu_is_reported_against_the_given_peak_and_only_then(manifest, tmp_path):
    train(str(manifest), str(tmp_path / "cpu"), replace(FAST, steps=2), progress=False)
    assert "mfu" not in read_metrics(tmp_path / "cpu")[-1]  # a CPU has no known peak
    cfg = replace(FAST, steps=2, peak_tflops=0.5)
    train(str(manifest), str(tmp_path / "peak"), cfg, progress=False)
    record = read_metrics(tmp_path / "peak")[-1]
    args = model_args("tiny", vocab_size=VOCAB, n_layers=2, max_seq_len=32)
    assert record["mfu"] == pytest.approx(record["tokens_per_s"] * flops_per_token(args, 32) / 0.5e12)


def test_compiled_model_trains_like_the_eager_one(manifest, tmp_path):
    # aot_eager traces forward and backward through TorchDynamo/AOTAutograd, as inductor does, without
    # the minutes inductor's C++ compilation takes on a CPU.
    eager = train(str(manifest), str(tmp_path / "eager"), replace(FAST, steps=3), progress=False)
    cfg = replace(FAST, steps=3, compile=True, compile_backend="aot_eager")
    torch._dynamo.utils.counters.clear()
    compiled = train(str(manifest), str(tmp_path / "compiled"), cfg, progress=False)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it did go through the compiler
    assert compiled["last_loss"] == pytest.approx(eager["last_loss"], rel=1e-4)
    weights = torch.load(tmp_path / "compiled" / "checkpoint.pt", weights_only=True)["model"]
    assert "norm.weight" in weights  # the plain module's names, not the compiled wrapper's


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


def test_two_ranks_under_torchrun_match_one_process_with_doubled_accumulation(shards_factory, tmp_path):
    """The same global batch of 2 x 4 sequences per step, split over 2 gloo ranks (1 micro-step each) or
    taken by 1 process in 2 micro-steps: the same losses and weights, up to float summation order.

    Each shard is one row group of 4 documents of exactly seq_len + 1 tokens, so a micro-batch is one
    row group: rank r reads shard r every step, and the single process reads both shards every step (in
    an order that changes, which the sum over micro-steps does not see)."""
    seq_len = 16
    rng = np.random.default_rng(0)
    shard = lambda: [[1] + rng.integers(3, VOCAB, seq_len).tolist() for _ in range(4)]  # noqa: E731
    manifest = shards_factory({"c4": [shard(), shard()]}, vocab_size=VOCAB, row_group_size=4)
    cfg = {"model": "tiny", "n_layers": 2, "seq_len": seq_len, "batch_size": 4,
           "batch_tokens": 2 * 4 * seq_len, "steps": 4, "warmup_steps": 1, "lr": 3e-3, "log_every": 1,
           "checkpoint_every": 0, "threads": 1, "holdout_fraction": 0.0}
    single = train(str(manifest), str(tmp_path / "one"), TrainConfig(**cfg), progress=False)
    assert single["accum_steps"] == 2

    script = tmp_path / "train_script.py"
    script.write_text(DDP_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(script), str(manifest), str(tmp_path / "two"), json.dumps(cfg)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    # stdout too: whether the ranks printed their summaries tells a crash in training from one at exit
    assert done.returncode == 0, f"stdout: {done.stdout[-1500:]}\nstderr: {done.stderr[-3000:]}"
    # Each rank prints its summary; under load their lines can interleave, so decode every object.
    decoder, text, summaries = json.JSONDecoder(), done.stdout, []
    position = text.find("{")
    while position != -1:
        summary, end = decoder.raw_decode(text, position)
        summaries.append(summary)
        position = text.find("{", end)
    assert summaries and all(summary["accum_steps"] == 1 for summary in summaries)

    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [m["step"] for m in one] == [m["step"] for m in two] == [1, 2, 3, 4]
    for a, b in zip(one, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    assert one[-1]["loss"] < one[0]["loss"] - 0.5  # it did learn: the comparison is not of a flat line
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
