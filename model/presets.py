"""LLaMA hyper-parameters (`ModelArgs`) and the released shapes (`PRESETS`), without torch: what a config
needs to be validated. The network that uses them is `llama.py`."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ModelArgs:
    """Hyper-parameters of a LLaMA model. Defaults are the released LLaMA-1 7B `params.json` with the
    32,000-piece LLaMA tokenizer; the trainer replaces `vocab_size` with the shards' tokenizer's."""

    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int | None = None  # None: as many key/value heads as query heads (no GQA)
    vocab_size: int = 32000
    multiple_of: int = 256  # FFN hidden size is rounded up to a multiple of this (matmul-friendly)
    ffn_dim_multiplier: float | None = None  # Llama 2 70B widens the FFN by 1.3 to make up for GQA
    norm_eps: float = 1e-6  # released LLaMA-1 params; Llama 2 uses 1e-5
    rope_theta: float = 10000.0
    max_seq_len: int = 2048  # length of the precomputed RoPE table, i.e. the longest input accepted

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if (self.dim // self.n_heads) % 2:
            raise ValueError(f"head dim {self.dim // self.n_heads} must be even: RoPE rotates pairs")
        if self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.kv_heads}")
        if self.vocab_size <= 0 or self.n_layers <= 0 or self.max_seq_len <= 0:
            raise ValueError("vocab_size, n_layers and max_seq_len must be positive")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def ffn_hidden_dim(self) -> int:
        return ffn_hidden_dim(self.dim, self.multiple_of, self.ffn_dim_multiplier)


def ffn_hidden_dim(dim: int, multiple_of: int, ffn_dim_multiplier: float | None = None) -> int:
    """SwiGLU has three matrices instead of two, so the paper shrinks the hidden size from 4d to 2/3 * 4d
    to keep the parameter count of a classic FFN; then it is rounded up to `multiple_of` (7B: 11008)."""
    hidden = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


# Released configurations (LLaMA paper table 2, Meta's params.json files) and two small ones that train on
# a laptop CPU. The small ones round the FFN to 32, not 256: at dim 128, rounding 341 up to 512 would make
# the FFN 4x instead of the paper's ~2.7x.
PRESETS: dict[str, ModelArgs] = {
    "tiny": ModelArgs(dim=128, n_layers=4, n_heads=4, multiple_of=32, max_seq_len=512),
    "small": ModelArgs(dim=256, n_layers=6, n_heads=8, multiple_of=32, max_seq_len=512),
    "7B": ModelArgs(dim=4096, n_layers=32, n_heads=32),
    "13B": ModelArgs(dim=5120, n_layers=40, n_heads=40),
    "33B": ModelArgs(dim=6656, n_layers=60, n_heads=52),
    "65B": ModelArgs(dim=8192, n_layers=80, n_heads=64),
    "llama2-7B": ModelArgs(dim=4096, n_layers=32, n_heads=32, norm_eps=1e-5, max_seq_len=4096),
    "llama2-13B": ModelArgs(dim=5120, n_layers=40, n_heads=40, norm_eps=1e-5, max_seq_len=4096),
    "llama2-70B": ModelArgs(
        dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, ffn_dim_multiplier=1.3, multiple_of=4096,
        norm_eps=1e-5, max_seq_len=4096,
    ),
}


def model_args(preset: str, **overrides) -> ModelArgs:
    """A preset with some fields replaced, e.g. `model_args("tiny", vocab_size=8000, max_seq_len=256)`."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
