"""`llamapipe train CONFIG --plan`: counts and memory without weights, speed from the paper's figures."""

from __future__ import annotations

import resource
from dataclasses import replace

import pytest
import torch
from torch.multiprocessing.reductions import StorageWeakRef

from llamapipe.model.llama import PRESETS, ModelArgs, Transformer
from llamapipe.model.plan import activation_bytes, activation_cost, flops_per_token, parameter_shapes, plan
from llamapipe.model.train import TrainConfig
from llamapipe.pipeline.cli import main
from tests.conftest import REPO

GB = 1e9
PAPER_65B = TrainConfig(model="65B", seq_len=2048, batch_size=1, batch_tokens=4 * 2**20, steps=333_786,
                        dtype="bfloat16", activation_checkpointing=True)


def test_65b_plan_allocates_no_weight_and_implies_the_papers_three_weeks():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = plan(PRESETS["65B"], PAPER_65B, preset="65B", gpus=2048)
    grown_gb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 / GB
    assert grown_gb < 2  # the float32 weights alone would be 261 GB
    assert result["params"] == 65_285_660_672  # Meta's 65B, 32,000-piece vocabulary
    assert result["weights_bytes"] == {"float32": 4 * result["params"], "bfloat16": 2 * result["params"],
                                       "int8": result["params"]}
    assert result["adamw_bytes"] == 2 * result["gradients_bytes"] == 8 * result["params"]
    assert result["tokens_per_s_per_gpu"] == pytest.approx(380)  # the paper's figure, by construction
    assert 0.45 < result["paper_mfu"] < 0.55
    assert 20 < result["paper_run"]["days_on_paper_gpus"] < 22  # paper: 1.4T tokens in ~21 days
    assert result["per_rank_bytes"]["checkpointing"] > 80 * GB  # a DDP replica of 65B fits no GPU


@pytest.mark.parametrize(("preset", "paper_gpu_hours"), [("7B", 82_432), ("13B", 135_168), ("33B", 530_432)])
def test_the_65b_throughput_predicts_the_smaller_models_gpu_hours(preset, paper_gpu_hours):
    """LLaMA table 15 lists the GPU-hours of every model; scaling the 65B throughput by FLOPs per token
    lands within 10% of the others'."""
    cfg = replace(PAPER_65B, model=preset)
    predicted = plan(PRESETS[preset], cfg, preset=preset)["paper_run"]["gpu_hours"]
    assert predicted == pytest.approx(paper_gpu_hours, rel=0.10)


def saved_for_backward(model: Transformer, batch: int, seq_len: int, dtype: str) -> int:
    """Bytes autograd really keeps for one forward of real tensors, minus the parameters themselves."""
    sizes = {}
    params = {StorageWeakRef(p.untyped_storage()).cdata for p in model.parameters()}

    def pack(tensor):
        ref = StorageWeakRef(tensor.untyped_storage()).cdata
        if ref not in params:
            sizes[ref] = tensor.untyped_storage().nbytes()
        return tensor

    tokens = torch.randint(0, model.params.vocab_size, (batch, seq_len))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            model(tokens, tokens)
    return sum(sizes.values())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_activation_estimate_matches_what_a_real_forward_saves(dtype):
    """The plan extrapolates from fake 1-2 layer, 1-2 sequence runs; a real 3-layer model must save what it
    predicts for every extra sequence. (What does not grow with the batch, the RoPE tables and autocast's
    bf16 weight copies, is not activation memory; the plan counts the copies apart.)"""
    args = ModelArgs(dim=64, n_layers=3, n_heads=4, vocab_size=300, multiple_of=16, max_seq_len=40)
    cost = activation_cost(args, 40, dtype, checkpointing=False)
    model = Transformer(args)
    real = {batch: saved_for_backward(model, batch, 40, dtype) for batch in (1, 4)}
    assert real[4] - real[1] == cost.total(4, 3) - cost.total(1, 3)
    assert 0 < real[1] - cost.total(1, 3) < 0.5 * real[1]


def test_checkpointing_and_bf16_shrink_activations_and_they_grow_with_the_batch():
    args = replace(PRESETS["7B"], n_layers=8)
    plain = activation_bytes(args, 2, 2048, "bfloat16", checkpointing=False)
    assert activation_bytes(args, 2, 2048, "bfloat16", checkpointing=True) < plain / 3
    assert activation_bytes(args, 2, 2048, "float32", checkpointing=False) > plain
    assert activation_bytes(args, 4, 2048, "bfloat16", checkpointing=False) == 2 * plain


def test_flops_per_token_follow_palm_and_batch_tokens_set_the_accumulation():
    args = PRESETS["7B"]
    non_embedding = 6_738_415_616 - 32000 * 4096
    assert flops_per_token(args, 2048) == 6 * non_embedding + 12 * 32 * 4096 * 2048
    cfg = TrainConfig(model="7B", seq_len=2048, batch_size=4, batch_tokens=4 * 2**20)
    assert cfg.accumulation_steps(64) == 8 and cfg.accumulation_steps(512) == 1
    with pytest.raises(ValueError, match="not a multiple"):
        cfg.accumulation_steps(1000)
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(batch_tokens=4096, grad_accum_steps=2)


def test_cli_plan_prints_before_any_shard_exists(capsys):
    assert main(["train", str(REPO / "configs" / "llama.yaml"), "--plan", "--gpus", "64"]) == 0
    out = capsys.readouterr().out
    assert "6,738,415,616 parameters" in out  # 7B with the config's 32,000-piece vocabulary
    assert "int8 6.74 GB" in out and "AdamW moments     53.91 GB" in out
    assert "8 micro-steps x 4 x 2048 tokens x 64 GPU(s)" in out
    assert "days on 64 GPU(s)" in out and "GPU-hours" in out


@pytest.mark.parametrize("preset", ["tiny", "llama2-70B"])
def test_parameter_shapes_are_the_models(preset):
    args = PRESETS[preset]
    if preset != "tiny":  # 80 layers on the meta device: 1 of them says the same
        args = replace(args, n_layers=1)
    with torch.device("meta"):
        model = Transformer(args)
    assert parameter_shapes(args) == {name: tuple(p.shape) for name, p in model.named_parameters()}


def test_fsdp_plan_fits_7b_on_eight_80gb_gpus_and_ddp_does_not(capsys):
    assert main(["train", str(REPO / "configs" / "llama.yaml"), "--plan", "--gpus", "8",
                 "--parallelism", "fsdp", "--gpu-memory", "80"]) == 0
    out = capsys.readouterr().out
    verdict = next(line for line in out.splitlines() if line.strip().startswith("configured: FSDP"))
    assert "checkpointing on, micro-batch 4" in verdict and "fits one 80 GB GPU" in verdict
    largest = int(verdict.rsplit(":", 1)[1].strip(" )"))
    assert 4 <= largest < 64
    cfg = replace(PAPER_65B, model="7B", batch_size=4, parallelism="fsdp")
    result = plan(PRESETS["7B"], cfg, preset="7B", gpus=8, gpu_memory_gb=80)
    assert result["fsdp"]["weights_bytes"] == pytest.approx(4 * result["params"] / 8, rel=1e-3)
    assert result["largest_micro_batch"]["ddp"]["checkpointing"] == 0  # a DDP replica does not fit
    assert result["largest_micro_batch"]["fsdp"]["checkpointing"] == largest
    # One more sequence than the largest would pass the 90% line; the largest itself does not.
    per_sequence = (result["per_gpu_bytes"]["fsdp"]["checkpointing"]
                    - plan(PRESETS["7B"], replace(cfg, batch_size=3), preset="7B", gpus=8)
                    ["per_gpu_bytes"]["fsdp"]["checkpointing"])
    fixed = result["per_gpu_bytes"]["fsdp"]["checkpointing"] - 4 * per_sequence
    assert fixed + largest * per_sequence <= 0.9 * 80 * GB < fixed + (largest + 1) * per_sequence
    # Llama 2 users' first question: 70B at ~4 GB per billion parameters in fp32, halving per precision.
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("llama2-70B"))
    assert row[1] == "68.98B" and row[2:10] == ["275.9", "GB", "138.0", "GB", "69.0", "GB", "34.5", "GB"]
    assert result["inference"]["llama2-70B"]["kv_cache_bytes"] == 2 * 80 * 8 * 128 * 2048 * 2  # GQA: 8 heads
