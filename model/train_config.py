"""Training settings, apart from the trainer so that loading a pipeline config (every Beam worker does,
through the stages' option classes) does not import torch: ~300 MB and ~2 s per process."""

from __future__ import annotations

from dataclasses import dataclass

from llamapipe.model.presets import ModelArgs, model_args

DTYPES = ("float32", "bfloat16")
PARALLELISMS = ("ddp", "fsdp")
METRICS_NAME = "metrics.jsonl"  # in the output folder of a training run (OUT/train)


@dataclass
class TrainConfig:
    """Training settings. Flat fields only, so a YAML mapping loads into it as is. Defaults are a short
    CPU run of the `tiny` preset; the paper's values are the optimiser ones (lr 3e-4 is its 7B/13B peak)."""

    model: str = "tiny"  # a key of llamapipe.model.llama.PRESETS
    dim: int | None = None  # optional overrides of the preset
    n_layers: int | None = None
    n_heads: int | None = None
    seq_len: int = 128
    batch_size: int = 16  # sequences per rank per micro-step
    grad_accum_steps: int = 1
    batch_tokens: int = 0  # global tokens per optimizer step (paper: 4M); sets grad_accum_steps; 0: unused
    steps: int = 300  # optimizer steps
    lr: float = 3e-4  # peak
    min_lr_ratio: float = 0.1  # cosine ends at 10% of the peak (paper)
    warmup_steps: int = 30  # paper: 2000 of ~350k steps
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables clipping
    log_every: int = 10
    eval_every: int = 0  # 0: never; else per-source loss on fixed held-out batches every N steps
    eval_batches: int = 2  # batches per source per evaluation
    holdout_fraction: float = 0.01  # documents held out of training for evaluation (by doc_id hash)
    checkpoint_every: int = 100  # 0: only at the end of the run
    seed: int = 0
    dtype: str = "float32"  # or "bfloat16" (DDP: autocast; FSDP: mixed-precision policy; weights and
    # optimizer state stay float32 either way)
    activation_checkpointing: bool = False
    compile: bool = False  # torch.compile the model (needs a C++ compiler on CPU; pays off on GPUs)
    compile_backend: str = "inductor"  # torch.compile backend ("aot_eager": trace only, to debug)
    peak_tflops: float = 0.0  # the accelerator's peak, for MFU; 0: looked up from the GPU's name
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    num_workers: int = 0  # dataloader worker processes per rank
    # "ddp": every rank holds the whole model, gradients and AdamW moments (DistributedDataParallel);
    # "fsdp": each rank holds 1/N of them (FSDP2 `fully_shard` per block, then the whole model), with
    # `dtype: bfloat16` as a mixed-precision policy (bf16 weights in compute, float32 master weights and
    # gradient reduction) instead of autocast, and sharded checkpoints (OUT/train/checkpoint.dcp/).
    parallelism: str = "ddp"
    # fsdp only: shard over groups of this many ranks and replicate across the groups (hybrid sharding,
    # HSDP: set it to the GPUs per node so that only gradient all-reduces cross nodes); 0: all ranks.
    fsdp_shard_size: int = 0

    def __post_init__(self) -> None:
        from llamapipe.model.presets import PRESETS  # torch-free: loading a config needs no torch

        if self.model not in PRESETS:
            raise ValueError(f"unknown model preset {self.model!r}; known: {', '.join(PRESETS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not one of {DTYPES} (float16 would need loss scaling)")
        if self.parallelism not in PARALLELISMS:
            raise ValueError(f"parallelism {self.parallelism!r} is not one of {PARALLELISMS}")
        for name in ("seq_len", "batch_size", "grad_accum_steps", "steps", "log_every", "eval_batches"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "checkpoint_every", "threads", "num_workers",
                     "batch_tokens", "fsdp_shard_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("lr must be positive and min_lr_ratio within [0, 1]")
        if self.batch_tokens and self.grad_accum_steps != 1:
            raise ValueError("set batch_tokens or grad_accum_steps, not both: one follows from the other")
        if not 0 <= self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be within [0, 1), got {self.holdout_fraction}")
        if self.eval_every and not self.holdout_fraction:
            raise ValueError("eval_every needs holdout_fraction > 0: evaluation is on held-out documents")

    def accumulation_steps(self, world_size: int) -> int:
        """Micro-steps per optimizer step on `world_size` ranks."""
        if not self.batch_tokens:
            return self.grad_accum_steps
        micro = self.batch_size * self.seq_len * world_size
        if self.batch_tokens % micro:
            raise ValueError(
                f"batch_tokens {self.batch_tokens:,} is not a multiple of batch_size x seq_len x ranks = "
                f"{self.batch_size} x {self.seq_len} x {world_size} = {micro:,}"
            )
        return self.batch_tokens // micro


def build_model_args(cfg: TrainConfig, vocab_size: int) -> ModelArgs:
    """The network a training config describes (its preset and overrides) for a vocabulary."""
    return model_args(
        cfg.model, dim=cfg.dim, n_layers=cfg.n_layers, n_heads=cfg.n_heads, vocab_size=vocab_size,
        max_seq_len=cfg.seq_len,
    )
