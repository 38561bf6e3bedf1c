"""LLaMA in one readable file, after Meta's `llama/model.py`, llama2.c and nanoGPT.

Architecture (LLaMA paper, section 2.2, and Meta's released code; the names are Meta's so a state dict
maps one to one onto theirs):

  - pre-normalisation with RMSNorm (weight only, no bias, no mean subtraction), computed in float32;
  - SwiGLU feed-forward `w2(silu(w1 x) * w3 x)` with hidden size 2/3 * 4d rounded up to `multiple_of`;
  - rotary position embeddings (RoPE) on *adjacent* pairs of each head's dimensions, as Meta's complex
    multiply does (Hugging Face's `rotate_half` pairs dimension i with i + d/2 instead, which is why
    exporting to that layout permutes wq/wk);
  - no biases anywhere, untied input embedding and output projection;
  - grouped-query attention when `n_kv_heads < n_heads` (Llama 2 70B), plain multi-head otherwise.

Training concerns (parallelism, optimiser, data) live in `train.py`; this file only defines the network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

# The hyper-parameters and released shapes live in presets.py, which needs no torch: a pipeline run
# validates its config (the model preset's name included) without importing torch.
from llamapipe.model.presets import PRESETS, ModelArgs, ffn_hidden_dim, model_args  # noqa: F401


class RMSNorm(nn.Module):
    """x / rms(x) * weight. Cheaper than LayerNorm (no mean, no bias) and as good for LLaMA. Computed in
    float32 because the mean of squares loses too much precision in bfloat16, then cast back and scaled
    by the gain, in Meta's order."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        # x * rsqrt(mean(x^2) + eps) as one fused kernel (and one in backward) instead of four.
        return F.rms_norm(x, (x.size(-1),), eps=self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._norm(x.float()).type_as(x) * self.weight

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)


def precompute_rope(head_dim: int, end: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angle `position * theta^(-2i/head_dim)`, shape (end, head_dim // 2).

    Meta stores these as complex numbers (`freqs_cis`); real cos/sin tables are the same numbers, but they
    survive `module.to(dtype)`, DDP buffer broadcast and autocast, which complex buffers do not all do."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(end, dtype=torch.float32), freqs)
    return angles.cos(), angles.sin()


def apply_rotary_emb(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each adjacent pair (x[2i], x[2i+1]) of every head by its position's angle.

    x: (batch, seq, heads, head_dim); cos, sin: (seq, head_dim // 2). Meta's `view_as_complex(x) *
    freqs_cis`: each pair is the complex number a + ib, multiplied by cos + i sin, i.e.
    (a cos - b sin) + i (a sin + b cos). One complex multiply forward and one backward: 7x faster on CPU
    than the same arithmetic on real tensors (unbind, four products, a sum, a difference, a stack; and
    their backward). The tables stay real buffers, see `precompute_rope`.
    Because rotations compose, q_m . k_n then depends on the positions only through m - n."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    freqs_cis = torch.complex(cos.float(), sin.float())[None, :, None, :]  # tables cast by module.to()
    return torch.view_as_real(pairs * freqs_cis).flatten(-2).type_as(x)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(batch, seq, n_kv_heads, head_dim) -> (batch, seq, n_kv_heads * n_rep, head_dim): query head h
    reads key/value head h // n_rep, as in Meta's code (grouped-query attention)."""
    if n_rep == 1:
        return x
    bsz, seqlen, n_kv_heads, head_dim = x.shape
    return x[:, :, :, None, :].expand(bsz, seqlen, n_kv_heads, n_rep, head_dim).reshape(
        bsz, seqlen, n_kv_heads * n_rep, head_dim
    )


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_heads = args.n_heads
        self.n_kv_heads = args.kv_heads
        self.n_rep = self.n_heads // self.n_kv_heads
        self.head_dim = args.head_dim
        self.wq = nn.Linear(args.dim, self.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(self.n_heads * self.head_dim, args.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        bsz, seqlen, _ = x.shape
        xq = self.wq(x).view(bsz, seqlen, self.n_heads, self.head_dim)
        xk = self.wk(x).view(bsz, seqlen, self.n_kv_heads, self.head_dim)
        xv = self.wv(x).view(bsz, seqlen, self.n_kv_heads, self.head_dim)
        xq, xk = apply_rotary_emb(xq, cos, sin), apply_rotary_emb(xk, cos, sin)
        xk, xv = repeat_kv(xk, self.n_rep), repeat_kv(xv, self.n_rep)
        q, k, v = (t.transpose(1, 2) for t in (xq, xk, xv))  # (batch, heads, seq, head_dim)
        # Fused causal attention (flash / memory-efficient kernels where available): the (seq x seq)
        # attention weights are never stored for backward, which is what the paper's xformers kernel did.
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(out.transpose(1, 2).reshape(bsz, seqlen, -1))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)  # gate
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)  # down projection
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)  # up projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, layer_id: int, args: ModelArgs):
        super().__init__()
        self.layer_id = layer_id
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.attention = Attention(args)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.feed_forward = FeedForward(args.dim, args.ffn_hidden_dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        # Pre-norm: the residual stream itself is never normalised, which keeps deep stacks trainable.
        h = x + self.attention(self.attention_norm(x), cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, params: ModelArgs, activation_checkpointing: bool = False):
        super().__init__()
        self.params = params
        # Recompute each block's activations in backward instead of storing them (paper section 2.4):
        # trades ~1/3 more compute for memory that no longer grows with depth.
        self.activation_checkpointing = activation_checkpointing
        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = nn.ModuleList(TransformerBlock(i, params) for i in range(params.n_layers))
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)
        # Non-persistent: derived from params, so they stay out of checkpoints (as Meta's freqs_cis).
        cos, sin = precompute_rope(params.head_dim, params.max_seq_len, params.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Normal(0, 0.02) everywhere, as llama2.c and torchtitan; the two projections that write into the
        residual stream (attention `wo`, FFN `w2`) get 0.02 / sqrt(2 * n_layers), so the stream's variance
        does not grow with depth (GPT-2's scheme). Also usable after `to_empty()` from the meta device."""
        std = 0.02
        residual_std = std / math.sqrt(2 * self.params.n_layers)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                last = name.rsplit(".", 1)[-1]
                nn.init.normal_(module.weight, mean=0.0, std=residual_std if last in ("wo", "w2") else std)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            elif isinstance(module, RMSNorm):
                module.reset_parameters()
        self.reset_rope()

    @torch.no_grad()
    def reset_rope(self) -> None:
        """Fill the RoPE tables (not in state dicts): after `to_empty()` from the meta device, where a
        sharded model is built and then loaded rather than initialised."""
        cos, sin = precompute_rope(self.params.head_dim, self.params.max_seq_len, self.params.rope_theta)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)

    def forward(
        self, tokens: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """tokens, targets: (batch, seq) int64. Returns float32 logits (batch, seq, vocab) and the mean
        next-token cross-entropy when targets are given (positions with target -100 are ignored)."""
        _, seqlen = tokens.shape
        if seqlen > self.params.max_seq_len:
            raise ValueError(f"{seqlen} tokens exceed max_seq_len {self.params.max_seq_len}")
        h = self.tok_embeddings(tokens)
        cos, sin = self.rope_cos[:seqlen], self.rope_sin[:seqlen]
        for layer in self.layers:
            if self.activation_checkpointing and self.training and torch.is_grad_enabled():
                h = checkpoint(layer, h, cos, sin, use_reentrant=False)
            else:
                h = layer(h, cos, sin)
        logits = self.output(self.norm(h)).float()
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def num_params(self, exclude_embeddings: bool = False) -> int:
        """Number of parameters; `exclude_embeddings` leaves out the input embedding table (a lookup, no
        FLOPs), the count scaling laws use."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.tok_embeddings.weight.numel() if exclude_embeddings else total
