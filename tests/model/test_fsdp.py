"""`train.parallelism: fsdp` on CPUs (gloo, 2 ranks under torchrun): the losses of DDP on the same ranks
and data, exact resume from a sharded checkpoint, resume on 1 rank, the plan's sharded memory against the
bytes a real sharded run holds, and `export-hf` / `generate` reading a sharded checkpoint.

Float32 throughout: the comparison with DDP is of the sharding, not of two bf16 paths (DDP's autocast and
FSDP's mixed-precision policy round differently, by far more than 1e-3); bf16 on FSDP is run once to show
the policy works on CPU too.

One torchrun launch does every 2-rank run (a launch costs seconds of imports per rank on a shared CPU)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from llamapipe.model.checkpoints import load_model, read_checkpoint
from llamapipe.model.hf import export_hf
from llamapipe.model.llama import model_args
from llamapipe.model.plan import plan
from llamapipe.model.train import TrainConfig, train

VOCAB = 380  # the spm_model fixture's pieces: a real tokenizer, so that export-hf can write its files
CFG = TrainConfig(
    model="tiny", n_layers=2, seq_len=32, batch_size=4, steps=20, lr=3e-3, warmup_steps=2, log_every=1,
    checkpoint_every=0, threads=1, batch_tokens=2 * 2 * 4 * 32,  # 2 micro-steps
    holdout_fraction=0.2, eval_every=10,  # held-out loss per source at steps 10 and 20
)

SCRIPT = textwrap.dedent(
    """
    import json, shutil, sys
    from dataclasses import replace
    from pathlib import Path
    import torch, torch.distributed as dist
    from llamapipe.model.sharded import build_fsdp_model
    from llamapipe.model.train import TrainConfig, build_model_args, param_groups, train

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    manifest, out = sys.argv[1], Path(sys.argv[2])
    cfg = TrainConfig(**json.loads(sys.argv[3]))
    fsdp = replace(cfg, parallelism="fsdp")
    results = {}
    results["ddp"] = train(manifest, str(out / "ddp"), cfg, progress=False)
    results["fsdp"] = train(manifest, str(out / "fsdp"), fsdp, progress=False)
    results["first_half"] = train(manifest, str(out / "split"), fsdp, progress=False, stop_at=cfg.steps // 2)
    if rank == 0:  # the 2-rank checkpoint at half-way, for the test to resume on 1 rank
        shutil.copytree(out / "split", out / "half")
    dist.barrier()
    results["second_half"] = train(manifest, str(out / "split"), fsdp, progress=False)
    # Hybrid: shard over groups of 1 rank, replicate across the 2 groups (HSDP's code path; DDP's arithmetic)
    results["hsdp"] = train(manifest, str(out / "hsdp"), replace(fsdp, fsdp_shard_size=1), progress=False)
    results["bf16"] = train(manifest, str(out / "bf16"), replace(fsdp, steps=2, dtype="bfloat16",
                            activation_checkpointing=True), progress=False)

    # What one rank holds of weights, gradients and AdamW moments after a step (float32, sharded).
    model = build_fsdp_model(build_model_args(cfg, 380), activation_checkpointing=False, dtype="float32",
                             device=torch.device("cpu"), seed=0)
    optimizer = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-3, fused=True)
    tokens = torch.randint(3, 380, (2, cfg.seq_len))
    model(tokens, tokens)[1].backward()
    optimizer.step()
    def held(tensors):  # bytes of the distinct storages (a shard's gradients are views of one buffer)
        storages = [(t.to_local() if hasattr(t, "to_local") else t).untyped_storage() for t in tensors]
        return sum({s.data_ptr(): s.nbytes() for s in storages}.values())

    results["held"] = {
        "weights": held(p for p in model.parameters()),
        "gradients": held(p.grad for p in model.parameters()),
        "moments": held(v for s in optimizer.state.values() for k, v in s.items() if k != "step"),
    }
    (out / f"result-{rank}.json").write_text(json.dumps({"rank": rank, **results}))
    dist.barrier()
    dist.destroy_process_group()
    """
)


def repetitive_docs(offset: int, n_docs: int) -> list[list[int]]:
    cycle = list(range(3 + offset, 3 + offset + 12))
    return [[1] + [cycle[(i + j) % len(cycle)] for j in range(60)] for i in range(n_docs)]


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, spm_model):
    """Every 2-rank run, once for the module: (manifest, out folder, each rank's results)."""
    from tests.model.conftest import write_shards

    root = tmp_path_factory.mktemp("fsdp")
    manifest = write_shards(
        root / "data",
        {"c4": [repetitive_docs(0, 20), repetitive_docs(0, 20)], "github": [repetitive_docs(20, 20)]},
        {"c4": 0.7, "github": 0.3}, vocab_size=VOCAB, row_group_size=5, tokenizer_bytes=spm_model,
    )
    script = root / "fsdp_script.py"
    script.write_text(SCRIPT)
    out = root / "runs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(script), str(manifest), str(out), json.dumps(asdict(CFG))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, f"stdout: {done.stdout[-1500:]}\nstderr: {done.stderr[-3000:]}"
    results = [json.loads((out / f"result-{rank}.json").read_text()) for rank in (0, 1)]
    return manifest, out, results


def test_fsdp_gives_the_losses_and_weights_of_ddp_on_the_same_two_ranks(runs):
    _, out, results = runs
    assert all(r["fsdp"]["world_size"] == 2 and r["fsdp"]["accum_steps"] == 2 for r in results)
    ddp, fsdp = read_metrics(out / "ddp"), read_metrics(out / "fsdp")
    assert [m["step"] for m in ddp] == [m["step"] for m in fsdp] == list(range(1, 21))
    for a, b in zip(ddp, fsdp, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3), a["step"]
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-3), a["step"]
        assert b["source_tokens"] == a["source_tokens"]  # the same data order
        assert ("source_loss" in a) == ("source_loss" in b) == (a["step"] % 10 == 0)
        for name in a.get("source_loss", {}):  # evaluated by every FSDP rank (its forward needs them all)
            assert b["source_loss"][name] == pytest.approx(a["source_loss"][name], rel=1e-3)
    assert ddp[-1]["loss"] < 0.5 * ddp[0]["loss"]  # it learned: not a comparison of two flat lines
    a, b = read_checkpoint(out / "ddp")["model"], read_checkpoint(out / "fsdp")["model"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4, msg=key)
    files = sorted(p.name for p in (out / "fsdp" / "checkpoint.dcp").iterdir())
    assert files == [".metadata", "__0_0.distcp", "__1_0.distcp", "trainer.pt"]  # one shard per rank
    assert sorted(p.name for p in (out / "fsdp").iterdir()) == ["checkpoint.dcp", "metrics.jsonl"]


def test_hybrid_sharding_gives_the_losses_of_ddp(runs):
    _, out, _ = runs
    ddp, hsdp = read_metrics(out / "ddp"), read_metrics(out / "hsdp")
    assert [m["step"] for m in hsdp] == list(range(1, 21))
    for a, b in zip(ddp, hsdp, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3), a["step"]
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-3), a["step"]  # over the 2-D mesh
    a, b = read_checkpoint(out / "ddp")["model"], read_checkpoint(out / "hsdp")["model"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4, msg=key)


def test_sharded_checkpoint_resumes_exactly(runs):
    _, out, results = runs
    assert [r["second_half"]["resumed_from"] for r in results] == [10, 10]
    assert read_metrics(out / "split") == [
        {**m, "tokens_per_s": m2["tokens_per_s"], "elapsed_s": m2["elapsed_s"]}
        for m, m2 in zip(read_metrics(out / "fsdp"), read_metrics(out / "split"), strict=True)
    ]
    a, b = read_checkpoint(out / "fsdp"), read_checkpoint(out / "split")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["ranks"] == b["ranks"] and a["step"] == b["step"] == 20


def test_bf16_mixed_precision_policy_trains_on_cpu(runs):
    _, out, results = runs
    losses = [m["loss"] for m in read_metrics(out / "bf16")]
    assert len(losses) == 2 and all(0 < loss < 10 for loss in losses)
    weights = read_checkpoint(out / "bf16")["model"]
    assert weights["norm.weight"].dtype == torch.float32  # master weights stay float32


def test_a_two_rank_sharded_checkpoint_resumes_on_one_rank(runs):
    manifest, out, _ = runs
    two_ranks = read_metrics(out / "fsdp")
    summary = train(str(manifest), str(out / "half"), replace(CFG, parallelism="fsdp"), progress=False)
    assert summary["resumed_from"] == 10 and summary["step"] == 20 and summary["world_size"] == 1
    assert summary["accum_steps"] == 4  # the same global batch on half the ranks
    one_rank = read_metrics(out / "half")
    assert [m["step"] for m in one_rank] == list(range(1, 21))
    # the 2-rank lines up to the checkpoint, kept
    assert [(m["step"], m["loss"]) for m in one_rank[:10]] == [(m["step"], m["loss"]) for m in two_ranks[:10]]
    # Step 11 starts from the trained weights and moments (a fresh model would be at ~ln(380) = 5.9):
    # other data (the stream restarts), the same distribution, so about the same loss.
    assert one_rank[10]["loss"] == pytest.approx(two_ranks[10]["loss"], rel=0.2)
    assert one_rank[-1]["loss"] < 0.5 * two_ranks[0]["loss"]


def test_the_plans_sharded_memory_is_what_a_rank_holds(runs):
    _, _, results = runs
    args = model_args("tiny", n_layers=2, vocab_size=VOCAB, max_seq_len=CFG.seq_len)
    predicted = plan(args, replace(CFG, parallelism="fsdp"), preset="tiny", gpus=2)["fsdp"]
    for result in results:
        held = result["held"]
        assert held["weights"] == pytest.approx(predicted["weights_bytes"], rel=0.10)
        assert held["gradients"] == pytest.approx(predicted["gradients_bytes"], rel=0.10)
        assert held["moments"] == pytest.approx(predicted["adamw_bytes"], rel=0.10)


def test_export_hf_and_generate_read_a_sharded_checkpoint(runs, tmp_path):
    _, out, _ = runs
    model, checkpoint = load_model(out / "fsdp")
    assert checkpoint["step"] == 20 and model.params.vocab_size == VOCAB
    summary = export_hf(out / "fsdp", tmp_path / "hf")
    assert summary["params"] == model.num_params()
    assert "model.safetensors" in summary["files"] and (tmp_path / "hf" / "config.json").is_file()


def test_a_checkpoint_of_the_other_parallelism_is_refused(runs, tmp_path):
    manifest, out, _ = runs
    with pytest.raises(ValueError, match="sharded .fsdp. checkpoint and train.parallelism is ddp"):
        train(str(manifest), str(out / "fsdp"), CFG, progress=False)
    with pytest.raises(ValueError, match="is a DDP checkpoint and train.parallelism is fsdp"):
        train(str(manifest), str(out / "ddp"), replace(CFG, parallelism="fsdp"), progress=False)
    with pytest.raises(ValueError, match="parallelism 'zero3' is not one of"):
        TrainConfig(parallelism="zero3")


def test_a_fresh_run_of_the_other_parallelism_replaces_the_old_checkpoint(runs, tmp_path):
    manifest, out, _ = runs
    shutil.copytree(out / "ddp", tmp_path / "run")
    train(str(manifest), str(tmp_path / "run"), replace(CFG, parallelism="fsdp", steps=1), resume=False,
          progress=False)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.dcp", "metrics.jsonl"]
    train(str(manifest), str(tmp_path / "run"), replace(CFG, steps=1), resume=False, progress=False)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt", "metrics.jsonl"]
