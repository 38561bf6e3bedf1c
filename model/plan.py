"""What a training run needs before any weight exists: parameters, memory per precision, and the speed and
duration the LLaMA paper's own figures imply (`llamapipe train CONFIG --plan`).

Nothing here allocates a weight. Parameters are counted on the meta device. Activation memory is
measured, not guessed from a formula: the model runs forward under `FakeTensorMode` (tensors that carry
shape, dtype and device but no storage) with a `saved_tensors_hooks` that adds up the distinct storages
autograd keeps for backward, under the same autocast and activation checkpointing as the run. Since
saved memory is affine in batch size and depth, four fake runs (1-2 layers x 1-2 sequences) give the
per-layer and per-sequence terms exactly, whatever the model code does (RoPE in float32, logits in
float32, the cross-entropy's log-softmax...).

Per GPU: DDP replicates float32 weights, gradients and AdamW moments (16 bytes per parameter); FSDP2
holds 1/N of them (`sharded_numel`: the padded dim-0 chunks `fully_shard` allocates; a test compares
them with what a 2-rank run holds after a step), plus the weights it gathers for compute and the
unsharded gradients before their reduce-scatter (`fsdp_memory`). The largest micro-batch is solved from
fixed + batch * (activations + logits gradients per sequence) <= (1 - HEADROOM) * GPU memory. Inference:
weights at 4/2/1/0.5 bytes per parameter and the bf16 KV cache of one sequence.

Speed: the paper trained 65B at ~380 tokens/s per A100-80GB on 2048 GPUs (section 2.4; 1.4T tokens in
~21 days). That is a model-FLOPs utilisation (MFU) of ~50% of the A100's 312 bf16 TFLOP/s; the plan assumes
the same utilisation for the configured model, counting FLOPs per token as PaLM does (appendix B):
6 * (parameters outside the input embedding) + 12 * layers * dim * seq_len.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from llamapipe.model.llama import ModelArgs, Transformer
from llamapipe.model.train_config import build_model_args

# LLaMA paper, section 2.4 and table 15: 65B at ~380 tokens/s/GPU on 2048 A100-80GB; 1.4T tokens.
PAPER_TOKENS_PER_S_PER_GPU = 380.0
PAPER_GPUS = 2048
PAPER_SEQ_LEN = 2048
A100_BF16_FLOPS = 312e12
# Training tokens of the released models (LLaMA table 2, Llama 2 table 1), for "the paper's run" line.
PAPER_TOKENS = {"7B": 1.0e12, "13B": 1.0e12, "33B": 1.4e12, "65B": 1.4e12,
                "llama2-7B": 2.0e12, "llama2-13B": 2.0e12, "llama2-70B": 2.0e12}
# Dense peak FLOP/s (bfloat16, float32 without TF32) of common training GPUs, matched on the device name.
GPU_PEAK_FLOPS = {
    "H200": (989e12, 67e12),
    "H100": (989e12, 67e12),  # SXM; the PCIe card is ~756 TFLOP/s bf16
    "A100": (312e12, 19.5e12),
    "L40S": (362e12, 91.6e12),
    "A10G": (70e12, 31.2e12),
    "L4": (121e12, 30.3e12),
    "RTX 4090": (165e12, 82.6e12),
    "RTX 3090": (71e12, 35.6e12),
}
GB = 1e9
# Of a GPU's memory, the part a plan leaves free for what it does not count: the CUDA context (~0.5-1 GB),
# the caching allocator's fragmentation, NCCL buffers, kernels' workspaces. torchtitan's and Megatron's
# rule of thumb is to stay ~10% under the card's capacity.
HEADROOM = 0.10
# Bytes per weight for inference: float32, bfloat16, int8 and 4-bit quantisation (GPTQ/AWQ/bitsandbytes
# nf4 store ~4 bits per weight plus per-group scales, which the plan leaves out: ~3% at group size 128).
INFERENCE_BYTES = {"float32": 4.0, "bfloat16": 2.0, "int8": 1.0, "int4": 0.5}
INFERENCE_PRESETS = ("7B", "13B", "33B", "65B", "llama2-7B", "llama2-13B", "llama2-70B")


def parameter_shapes(args: ModelArgs) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, as `Transformer(args).named_parameters()` gives them (a test
    holds the two together), from arithmetic: building even a meta-device 70B model takes seconds
    (its initialisation runs on meta tensors), and the inference table builds seven."""
    q, kv = args.n_heads * args.head_dim, args.kv_heads * args.head_dim
    shapes: dict[str, tuple[int, ...]] = {"tok_embeddings.weight": (args.vocab_size, args.dim)}
    for i in range(args.n_layers):
        prefix = f"layers.{i}."
        shapes.update({
            prefix + "attention.wq.weight": (q, args.dim),
            prefix + "attention.wk.weight": (kv, args.dim),
            prefix + "attention.wv.weight": (kv, args.dim),
            prefix + "attention.wo.weight": (args.dim, q),
            prefix + "feed_forward.w1.weight": (args.ffn_hidden_dim, args.dim),
            prefix + "feed_forward.w2.weight": (args.dim, args.ffn_hidden_dim),
            prefix + "feed_forward.w3.weight": (args.ffn_hidden_dim, args.dim),
            prefix + "attention_norm.weight": (args.dim,),
            prefix + "ffn_norm.weight": (args.dim,),
        })
    shapes["norm.weight"] = (args.dim,)
    shapes["output.weight"] = (args.vocab_size, args.dim)
    return shapes


def count_params(args: ModelArgs) -> tuple[int, int]:
    """(all parameters, parameters outside the input embedding), without building the model."""
    total = sum(_numel(shape) for shape in parameter_shapes(args).values())
    return total, total - args.vocab_size * args.dim


def flops_per_token(args: ModelArgs, seq_len: int, non_embedding_params: int | None = None) -> float:
    """Training FLOPs per token (forward + backward, without activation recomputation): 6 per weight it
    meets, plus attention's 12 * layers * dim * seq_len (scores and weighted sum, forward and backward)."""
    if non_embedding_params is None:
        non_embedding_params = count_params(args)[1]
    return 6.0 * non_embedding_params + 12.0 * args.n_layers * args.dim * seq_len


def paper_mfu() -> float:
    """Model-FLOPs utilisation the paper's 65B figure implies on an A100 (~0.5)."""
    from llamapipe.model.llama import PRESETS

    return PAPER_TOKENS_PER_S_PER_GPU * flops_per_token(PRESETS["65B"], PAPER_SEQ_LEN) / A100_BF16_FLOPS


def device_peak_flops(device: torch.device, dtype: str) -> float | None:
    """Dense peak FLOP/s of a CUDA device for `dtype` ("bfloat16" or "float32"), None when unknown (CPUs,
    unlisted GPUs): MFU is then not reported rather than made up."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (bf16, fp32) in GPU_PEAK_FLOPS.items():
        if key in name:
            return bf16 if dtype == "bfloat16" else fp32
    return None


# ------------------------------------------------------------------------------------ activation memory


def _saved_bytes(args: ModelArgs, batch: int, seq_len: int, dtype: str, checkpointing: bool) -> int:
    """Bytes of distinct storages autograd saves in one fake forward of the whole model (with loss)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.multiprocessing.reductions import StorageWeakRef

    sizes: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        sizes[StorageWeakRef(storage).cdata] = storage.nbytes()
        return tensor

    with FakeTensorMode(), torch.device("cpu"):
        model = Transformer(args, activation_checkpointing=checkpointing)
        tokens = torch.zeros(batch, seq_len, dtype=torch.long)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
                model(tokens, tokens)
    return sum(sizes.values())


@dataclass(frozen=True)
class ActivationCost:
    """Bytes saved for backward: `per_sequence` outside the blocks (embedding output, final norm, logits,
    log-softmax) and `per_layer_sequence` per block, both per sequence of `seq_len` tokens."""

    per_sequence: int
    per_layer_sequence: int

    def total(self, batch: int, n_layers: int) -> int:
        return batch * (self.per_sequence + n_layers * self.per_layer_sequence)


@lru_cache(maxsize=64)
def activation_cost(args: ModelArgs, seq_len: int, dtype: str, checkpointing: bool) -> ActivationCost:
    """Solve saved(layers, batch) = W0 + layers * W1 + batch * (A0 + layers * A1) from four fake runs; the
    W terms (batch-independent: parameters and autocast's bf16 weight copies) are not activations."""
    runs = {
        (layers, batch): _saved_bytes(
            ModelArgs(**{**args.__dict__, "n_layers": layers, "max_seq_len": seq_len}), batch, seq_len,
            dtype, checkpointing,
        )
        for layers in (1, 2) for batch in (1, 2)
    }
    per_layer = runs[2, 2] - runs[1, 2] - runs[2, 1] + runs[1, 1]
    per_sequence = runs[1, 2] - runs[1, 1] - per_layer
    return ActivationCost(per_sequence, per_layer)


def activation_bytes(args: ModelArgs, batch: int, seq_len: int, dtype: str, checkpointing: bool) -> int:
    """Peak activation memory of one micro-batch. With checkpointing a block keeps only its input, but
    backward recomputes one block at a time, so one block's full activations come on top."""
    stored = activation_cost(args, seq_len, dtype, checkpointing).total(batch, args.n_layers)
    if checkpointing:
        stored += batch * activation_cost(args, seq_len, dtype, False).per_layer_sequence
    return stored


# --------------------------------------------------------------------------------------------- sharding


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for size in shape:
        n *= size
    return n


def sharded_numel(args: ModelArgs, gpus: int) -> int:
    """Elements of every parameter one rank holds under FSDP2: dim 0 of each parameter split in `gpus`
    chunks, the last ones padded to the first's size (what `fully_shard` allocates)."""
    return sum(-(-shape[0] // gpus) * _numel(shape[1:]) for shape in parameter_shapes(args).values())


def fsdp_memory(args: ModelArgs, cfg, gpus: int) -> dict:
    """Bytes one of `gpus` FSDP ranks (sharding over `cfg.fsdp_shard_size` of them, if set) holds besides
    activations: its shards of the float32 weights, gradients and AdamW moments; the weights gathered for
    compute (in the policy's dtype: the root group, i.e. embedding, output and final norm, for the whole
    step as the trainer configures it, and two blocks, the running one and the one prefetched); the
    unsharded float32 gradients of one block and of the root before their reduce-scatter."""
    shapes = parameter_shapes(args)
    shard_size = getattr(cfg, "fsdp_shard_size", 0)
    shards = min(gpus, shard_size) if shard_size else gpus  # hybrid sharding: over a group only
    shard = sharded_numel(args, shards)
    block = sum(_numel(shape) for name, shape in shapes.items() if name.startswith("layers.0."))
    root = sum(_numel(shape) for name, shape in shapes.items() if not name.startswith("layers."))
    compute_bytes = 2 if cfg.dtype == "bfloat16" else 4
    return {
        "gpus": gpus,
        "sharded_over": shards,
        "weights_bytes": 4 * shard,
        "gradients_bytes": 4 * shard,
        "adamw_bytes": 8 * shard,
        "gathered_bytes": compute_bytes * (root + 2 * block) if shards > 1 else 0,
        "unsharded_gradients_bytes": 4 * (root + block) if shards > 1 else 0,
    }


def logits_gradient_bytes(args: ModelArgs, batch: int, seq_len: int) -> int:
    """Backward's transient peak at the output layer, beside the saved activations: the float32 gradients
    of the log-softmax and of the logits (batch x seq x vocab each)."""
    return 2 * 4 * batch * seq_len * args.vocab_size


def largest_micro_batch(fixed: float, per_sequence: float, gpu_bytes: float) -> int:
    """The largest batch b with fixed + b * per_sequence <= (1 - HEADROOM) * gpu_bytes (0: none fits)."""
    room = (1 - HEADROOM) * gpu_bytes - fixed
    return max(0, int(room // per_sequence)) if per_sequence > 0 else 0


def inference_memory(args: ModelArgs, context: int) -> dict:
    """Weights at each inference precision, and the bf16 key/value cache of one sequence of `context`
    tokens (keys and values, every layer, the key/value heads only: grouped-query attention shrinks it)."""
    params = count_params(args)[0]
    kv = 2 * args.n_layers * args.kv_heads * args.head_dim * context * 2
    return {"params": params, "weights_bytes": {k: b * params for k, b in INFERENCE_BYTES.items()},
            "kv_cache_bytes": kv, "context": context}


# ---------------------------------------------------------------------------------------------- the plan


def _inference_args(name: str, args: ModelArgs, preset: str | None) -> ModelArgs:
    """The configured model as configured (its vocabulary), the released ones as released."""
    from llamapipe.model.llama import PRESETS

    return args if name in (preset, "configured") else PRESETS[name]


def plan(args: ModelArgs, cfg, *, preset: str | None = None, gpus: int = 1, gpu_memory_gb: float = 80.0,
         context: int | None = None) -> dict:
    """Everything `--plan` prints, as a dict. `cfg` is a TrainConfig (batch_size is per rank and
    micro-step); `gpus` is the number of data-parallel ranks the run is imagined on (it sets the tokens
    per step when `cfg.batch_tokens` does not, and the FSDP shards); `gpu_memory_gb` the memory of one GPU,
    for the largest micro-batch that fits; `context` the inference context length (default: seq_len)."""
    total, non_embedding = count_params(args)
    matrices = total - args.n_layers * 2 * args.dim - args.dim  # all but the RMSNorm gains
    activations = {
        checkpointing: activation_bytes(args, cfg.batch_size, cfg.seq_len, cfg.dtype, checkpointing)
        for checkpointing in (False, True)
    }
    # What every DDP rank holds: float32 weights, float32 gradients, AdamW's two float32 moments, under
    # bf16 autocast a bf16 copy of every matrix (autocast's cast cache), and the activations.
    autocast_copies = 2 * matrices if cfg.dtype == "bfloat16" else 0
    states = 4 * total + 4 * total + 8 * total + autocast_copies
    per_rank = {checkpointing: states + activations[checkpointing] for checkpointing in (False, True)}

    if cfg.batch_tokens:
        tokens_per_step = cfg.batch_tokens
    else:
        tokens_per_step = cfg.batch_size * cfg.seq_len * cfg.grad_accum_steps * gpus
    run_tokens = tokens_per_step * cfg.steps
    try:
        accum, accum_problem = cfg.accumulation_steps(gpus), None
    except ValueError as error:
        accum, accum_problem = None, str(error)
    fpt = flops_per_token(args, cfg.seq_len, non_embedding)
    mfu = paper_mfu()
    tokens_per_s_per_gpu = mfu * A100_BF16_FLOPS / fpt
    result = {
        "preset": preset,
        "params": total,
        "non_embedding_params": non_embedding,
        "weights_bytes": {"float32": 4 * total, "bfloat16": 2 * total, "int8": total},
        "gradients_bytes": 4 * total,
        "adamw_bytes": 8 * total,
        "autocast_copies_bytes": autocast_copies,
        "activation_bytes": {"checkpointing": activations[True], "no_checkpointing": activations[False]},
        "per_rank_bytes": {"checkpointing": per_rank[True], "no_checkpointing": per_rank[False]},
        "sharded_over": gpus if gpus > 1 else PAPER_GPUS,
        "fully_sharded_states_bytes": states / (gpus if gpus > 1 else PAPER_GPUS),
        "batch_size": cfg.batch_size,
        "seq_len": cfg.seq_len,
        "dtype": cfg.dtype,
        "activation_checkpointing": cfg.activation_checkpointing,
        "gpus": gpus,
        "tokens_per_step": tokens_per_step,
        "accum_steps": accum,
        "accum_problem": accum_problem,
        "steps": cfg.steps,
        "run_tokens": run_tokens,
        "flops_per_token": fpt,
        "paper_mfu": mfu,
        "tokens_per_s_per_gpu": tokens_per_s_per_gpu,
        "run_days": run_tokens / (tokens_per_s_per_gpu * gpus * 86400),
        "run_days_on_paper_gpus": run_tokens / (tokens_per_s_per_gpu * PAPER_GPUS * 86400),
    }
    # Per GPU, DDP and FSDP side by side; activations and the logits' gradients grow with the micro-batch.
    logits = logits_gradient_bytes(args, cfg.batch_size, cfg.seq_len)
    sharded = fsdp_memory(args, cfg, gpus)
    fixed = {
        "ddp": states,
        "fsdp": sum(v for k, v in sharded.items() if k.endswith("_bytes")),
    }
    per_sequence = {
        checkpointing: activation_bytes(args, 1, cfg.seq_len, cfg.dtype, checkpointing)
        + logits_gradient_bytes(args, 1, cfg.seq_len)
        for checkpointing in (False, True)
    }
    result["logits_gradient_bytes"] = logits
    result["fsdp"] = sharded
    result["gpu_memory_bytes"] = gpu_memory_gb * GB
    result["parallelism"] = getattr(cfg, "parallelism", "ddp")
    result["per_gpu_bytes"] = {
        kind: {
            ("checkpointing" if checkpointing else "no_checkpointing"):
                fixed[kind] + activations[checkpointing] + logits
            for checkpointing in (False, True)
        }
        for kind in ("ddp", "fsdp")
    }
    result["largest_micro_batch"] = {
        kind: {
            ("checkpointing" if checkpointing else "no_checkpointing"):
                largest_micro_batch(fixed[kind], per_sequence[checkpointing], gpu_memory_gb * GB)
            for checkpointing in (False, True)
        }
        for kind in ("ddp", "fsdp")
    }
    context = context or cfg.seq_len
    result["inference"] = {
        name: inference_memory(_inference_args(name, args, preset), context)
        for name in dict.fromkeys([preset or "configured", *INFERENCE_PRESETS])
    }
    if preset in PAPER_TOKENS:
        tokens = PAPER_TOKENS[preset]
        result["paper_run"] = {
            "tokens": tokens,
            "days_on_paper_gpus": tokens / (tokens_per_s_per_gpu * PAPER_GPUS * 86400),
            "gpu_hours": tokens / tokens_per_s_per_gpu / 3600,
        }
    return result


def _size(n_bytes: float) -> str:
    return f"{n_bytes / GB:,.2f} GB" if n_bytes >= 0.01 * GB else f"{n_bytes / 1e6:,.2f} MB"


def _count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:,.2f}{unit}"
    return f"{n:,.0f}"


def _days(days: float) -> str:
    seconds = days * 86400
    if seconds < 60:
        return f"{seconds:.1f} seconds"
    if seconds < 3600:
        return f"{seconds / 60:.1f} minutes"
    return f"{days:,.1f} days" if days >= 1 else f"{seconds / 3600:.1f} hours"


def format_plan(p: dict) -> str:
    lines = [
        f"model {p['preset'] or ''}: {p['params']:,} parameters ({_count(p['params'])}), "
        f"{p['non_embedding_params']:,} outside the input embedding",
        "",
        "memory (GB = 1e9 bytes)",
        f"  weights           float32 {_size(p['weights_bytes']['float32'])} | "
        f"bfloat16 {_size(p['weights_bytes']['bfloat16'])} | int8 {_size(p['weights_bytes']['int8'])}",
        f"  gradients         {_size(p['gradients_bytes'])} (float32)",
        f"  AdamW moments     {_size(p['adamw_bytes'])} (two float32 tensors per weight)",
    ]
    if p["autocast_copies_bytes"]:
        lines.append(
            f"  bf16 weight cache {_size(p['autocast_copies_bytes'])} (autocast's copies of the matrices)"
        )
    lines += [
        f"  activations       {_size(p['activation_bytes']['checkpointing'])} with checkpointing | "
        f"{_size(p['activation_bytes']['no_checkpointing'])} without",
        f"                    (saved for backward; micro-batch {p['batch_size']} x {p['seq_len']} tokens, "
        f"{p['dtype']}; + {_size(p['logits_gradient_bytes'])} of logits gradients at backward's start)",
        "",
    ]
    lines += _per_gpu_lines(p)
    lines.append("")
    lines += _inference_lines(p)
    lines += [
        "",
        f"speed at the paper's utilisation (65B: {PAPER_TOKENS_PER_S_PER_GPU:.0f} tokens/s/GPU on "
        f"{PAPER_GPUS} A100-80GB = {p['paper_mfu']:.0%} MFU)",
        f"  {p['flops_per_token'] / 1e9:,.2f} GFLOP per token -> "
        f"{p['tokens_per_s_per_gpu']:,.0f} tokens/s per A100",
        f"  configured run: {p['steps']:,} steps x {p['tokens_per_step']:,} tokens = "
        f"{_count(p['run_tokens'])} tokens",
        f"                  (a step: {p['accum_steps']} micro-steps x {p['batch_size']} x {p['seq_len']} "
        f"tokens x {p['gpus']} GPU(s))" if p["accum_steps"] else f"                  ({p['accum_problem']})",
        f"                  -> {_days(p['run_days'])} on {p['gpus']:,} GPU(s), "
        f"{_days(p['run_days_on_paper_gpus'])} on {PAPER_GPUS}",
    ]
    if "paper_run" in p:
        run = p["paper_run"]
        lines.append(
            f"  the paper's run: {_count(run['tokens'])} tokens -> {_days(run['days_on_paper_gpus'])} on "
            f"{PAPER_GPUS} GPUs ({run['gpu_hours']:,.0f} GPU-hours)"
        )
    return "\n".join(lines)


def _per_gpu_lines(p: dict) -> list[str]:
    """DDP and FSDP side by side, per GPU, and the verdict for the configured parallelism."""
    gpus, sharded = p["gpus"], p["fsdp"]
    memory = p["gpu_memory_bytes"]
    rows = [
        ("weights (float32)", p["weights_bytes"]["float32"], sharded["weights_bytes"]),
        ("gradients", p["gradients_bytes"], sharded["gradients_bytes"]),
        ("AdamW moments", p["adamw_bytes"], sharded["adamw_bytes"]),
        # DDP: autocast's bf16 copies of the matrices; FSDP: the weights gathered for compute.
        ("weights for compute", p["autocast_copies_bytes"], sharded["gathered_bytes"]),
        ("unsharded grads", 0, sharded["unsharded_gradients_bytes"]),
    ]
    width, label = 12, 40
    title = f"per GPU, {gpus} GPU(s) of {memory / GB:,.0f} GB"
    lines = [f"{title:<{label + 2}}{'DDP':>{width}} {'FSDP':>{width}}"]
    for name, ddp, fsdp in rows:
        lines.append(f"  {name:<{label}}{_size(ddp) if ddp else '-':>{width}} "
                     f"{_size(fsdp) if fsdp else '-':>{width}}")
    for key, text in (("checkpointing", "with checkpointing"), ("no_checkpointing", "without")):
        ddp, fsdp = p["per_gpu_bytes"]["ddp"][key], p["per_gpu_bytes"]["fsdp"][key]
        lines.append(f"  {'total ' + text:<{label}}{_size(ddp):>{width}} {_size(fsdp):>{width}}")
    for key, text in (("checkpointing", "with checkpointing"), ("no_checkpointing", "without")):
        ddp, fsdp = p["largest_micro_batch"]["ddp"][key], p["largest_micro_batch"]["fsdp"][key]
        lines.append(f"  {'largest micro-batch ' + text:<{label}}{ddp or 'none':>{width}} "
                     f"{fsdp or 'none':>{width}}")
    lines.append(f"  (totals with micro-batch {p['batch_size']}; a micro-batch fits when the total stays "
                 f"{HEADROOM:.0%} under {memory / GB:,.0f} GB)")
    kind = p["parallelism"]
    chosen = "checkpointing" if p["activation_checkpointing"] else "no_checkpointing"
    total = p["per_gpu_bytes"][kind][chosen]
    largest = p["largest_micro_batch"][kind][chosen]
    fits = total <= (1 - HEADROOM) * memory
    verdict = (f"  configured: {kind.upper()}, checkpointing "
               f"{'on' if p['activation_checkpointing'] else 'off'}, micro-batch {p['batch_size']}: "
               f"{_size(total)} per GPU, "
               f"{'fits' if fits else 'does not fit'} one {memory / GB:,.0f} GB GPU")
    if largest:
        verdict += f" (largest micro-batch that fits: {largest})"
    else:
        verdict += " (no micro-batch fits)"
    lines.append(verdict)
    if kind == "ddp" and not fits and p["largest_micro_batch"]["fsdp"][chosen]:
        lines.append(f"  -> train.parallelism: fsdp fits it (micro-batch up to "
                     f"{p['largest_micro_batch']['fsdp'][chosen]} over {gpus} GPU(s))")
    return lines


def _inference_lines(p: dict) -> list[str]:
    rows = p["inference"]
    context = next(iter(rows.values()))["context"]
    width = 11
    lines = [f"inference: weights by precision (GB = 1e9 bytes), bf16 KV cache of one {context:,}-token "
             "sequence",
             f"  {'model':<12}{'params':>9}" + "".join(f"{k:>{width}}" for k in INFERENCE_BYTES)
             + f"{'KV cache':>{width}}"]
    for name, row in rows.items():
        lines.append(f"  {name:<12}{_count(row['params']):>9}"
                     + "".join(f"{row['weights_bytes'][k] / GB:>{width - 3},.1f} GB" for k in INFERENCE_BYTES)
                     + f"{_size(row['kv_cache_bytes']):>{width}}")
    return lines


def plan_text(cfg, vocab_size: int, gpus: int = 1, gpu_memory_gb: float = 80.0,
              context: int | None = None) -> str:
    """The plan of a TrainConfig's run, as `llamapipe train CONFIG --plan` prints it."""
    return format_plan(plan(build_model_args(cfg, vocab_size), cfg, preset=cfg.model, gpus=gpus,
                            gpu_memory_gb=gpu_memory_gb, context=context))

