from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from llamapipe.model.llama import (
    PRESETS,
    ModelArgs,
    Transformer,
    apply_rotary_emb,
    model_args,
    precompute_rope,
    repeat_kv,
)

TINY = replace(PRESETS["tiny"], vocab_size=97, max_seq_len=64)


def test_7b_preset_has_metas_parameter_count_without_allocating():
    with torch.device("meta"):
        model = Transformer(PRESETS["7B"])
    assert model.output.weight.is_meta
    assert model.num_params() == 6_738_415_616
    assert model.layers[0].feed_forward.w1.weight.shape == (11008, 4096)


@pytest.mark.parametrize(
    "preset, hidden",
    [("7B", 11008), ("13B", 13824), ("33B", 17920), ("65B", 22016), ("llama2-70B", 28672)],
)
def test_ffn_hidden_sizes_match_the_released_checkpoints(preset, hidden):
    assert PRESETS[preset].ffn_hidden_dim == hidden


def test_llama2_70b_uses_grouped_query_attention_and_is_70b():
    with torch.device("meta"):
        model = Transformer(PRESETS["llama2-70B"])
    attention = model.layers[0].attention
    assert attention.wk.weight.shape == (8 * 128, 8192)
    assert attention.wq.weight.shape == (64 * 128, 8192)
    assert model.num_params() == 68_976_648_192  # Llama 2 70B with its 32000-piece vocabulary


def test_forward_shapes_and_initial_loss_near_uniform():
    torch.manual_seed(0)
    model = Transformer(TINY)
    tokens = torch.randint(0, TINY.vocab_size, (2, 16))
    logits, loss = model(tokens, tokens)
    assert logits.shape == (2, 16, TINY.vocab_size) and logits.dtype == torch.float32
    # Small init => near-uniform predictions => loss close to ln(vocab).
    assert abs(loss.item() - torch.log(torch.tensor(97.0)).item()) < 0.3
    assert model(tokens)[1] is None


def test_changing_a_future_token_does_not_change_earlier_logits():
    torch.manual_seed(0)
    model = Transformer(TINY).eval()
    tokens = torch.randint(0, TINY.vocab_size, (1, 20))
    changed = tokens.clone()
    changed[0, 12] = (changed[0, 12] + 1) % TINY.vocab_size
    with torch.no_grad():
        a, _ = model(tokens)
        b, _ = model(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_rope_scores_depend_only_on_relative_position():
    head_dim, length = 16, 40
    cos, sin = precompute_rope(head_dim, length)
    torch.manual_seed(0)
    q = torch.randn(head_dim).expand(1, length, 1, head_dim)  # same vector at every position
    k = torch.randn(head_dim).expand(1, length, 1, head_dim)
    rq, rk = apply_rotary_emb(q, cos, sin)[0, :, 0], apply_rotary_emb(k, cos, sin)[0, :, 0]
    scores = rq @ rk.T  # scores[m, n] = <R_m q, R_n k>
    for m, n, shift in [(5, 2, 17), (3, 9, 20), (0, 0, 33)]:
        torch.testing.assert_close(scores[m, n], scores[m + shift, n + shift])
    assert not torch.allclose(scores[5, 2], scores[5, 3])  # but it does depend on the distance
    torch.testing.assert_close(rq.norm(dim=-1), q[0, :, 0].norm(dim=-1))  # a rotation keeps norms


def test_rope_matches_metas_complex_formulation_on_adjacent_pairs():
    head_dim, length, theta = 8, 12, 10000.0
    x = torch.randn(2, length, 3, head_dim)
    # Meta's reference code, verbatim in spirit: complex freqs_cis and view_as_complex on adjacent pairs.
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    angles = torch.outer(torch.arange(length).float(), freqs)
    freqs_cis = torch.polar(torch.ones_like(angles), angles)
    x_complex = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))
    expected = torch.view_as_real(x_complex * freqs_cis[None, :, None, :]).flatten(3)
    cos, sin = precompute_rope(head_dim, length, theta)
    torch.testing.assert_close(apply_rotary_emb(x, cos, sin), expected)


def test_grouped_query_attention_shapes_and_head_sharing():
    args = ModelArgs(
        dim=64, n_layers=2, n_heads=8, n_kv_heads=2, vocab_size=50, multiple_of=16, max_seq_len=32
    )
    model = Transformer(args)
    attention = model.layers[0].attention
    assert attention.wq.weight.shape == (64, 64)
    assert attention.wk.weight.shape == attention.wv.weight.shape == (2 * 8, 64)
    logits, _ = model(torch.randint(0, 50, (3, 10)))
    assert logits.shape == (3, 10, 50)
    kv = torch.randn(3, 10, 2, 8)
    repeated = repeat_kv(kv, 4)
    assert repeated.shape == (3, 10, 8, 8)
    for head in range(8):  # query heads 0-3 share kv head 0, heads 4-7 kv head 1 (Meta's layout)
        torch.testing.assert_close(repeated[:, :, head], kv[:, :, head // 4])
    with pytest.raises(ValueError, match="n_kv_heads"):
        ModelArgs(dim=64, n_heads=8, n_kv_heads=3)


def test_init_scales_residual_projections_and_leaves_norms_at_one():
    torch.manual_seed(0)
    args = replace(PRESETS["small"], vocab_size=1000)
    model = Transformer(args)
    layer = model.layers[0]
    assert layer.attention.wq.weight.std().item() == pytest.approx(0.02, rel=0.05)
    residual_std = 0.02 / (2 * args.n_layers) ** 0.5
    assert layer.attention.wo.weight.std().item() == pytest.approx(residual_std, rel=0.05)
    assert layer.feed_forward.w2.weight.std().item() == pytest.approx(residual_std, rel=0.05)
    assert torch.equal(layer.ffn_norm.weight, torch.ones(args.dim))
    assert model.output.weight.data_ptr() != model.tok_embeddings.weight.data_ptr()  # untied
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = Transformer(TINY)
    checkpointed = Transformer(TINY, activation_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    tokens = torch.randint(0, TINY.vocab_size, (2, 24))
    for model in (plain, checkpointed):
        model(tokens[:, :-1], tokens[:, 1:])[1].backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_rope_tables_stay_out_of_the_state_dict_and_rebuild_from_meta():
    with torch.device("meta"):
        model = Transformer(TINY)
    assert not any("rope" in key for key in model.state_dict())
    model.to_empty(device="cpu")
    model.init_weights()
    reference = Transformer(TINY)
    torch.testing.assert_close(model.rope_cos, reference.rope_cos)
    assert torch.isfinite(model(torch.zeros(1, 8, dtype=torch.long))[0]).all()


def test_bfloat16_autocast_runs_and_sequences_longer_than_the_table_are_refused():
    model = Transformer(TINY)
    tokens = torch.randint(0, TINY.vocab_size, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, loss = model(tokens, tokens)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, 65, dtype=torch.long))


def test_a_model_cast_to_bfloat16_still_runs():
    # module.to(dtype) casts the RoPE tables too; the complex multiply is built from them in float32.
    model = Transformer(TINY).to(torch.bfloat16)
    assert model.rope_cos.dtype == torch.bfloat16
    logits, loss = model(*(torch.randint(0, TINY.vocab_size, (2, 16)),) * 2)
    assert torch.isfinite(loss) and logits.dtype == torch.float32


def test_model_args_overrides_and_unknown_preset():
    args = model_args("tiny", vocab_size=8000, n_layers=None, max_seq_len=256)
    assert (args.dim, args.n_layers, args.vocab_size, args.max_seq_len) == (128, 4, 8000, 256)
    assert PRESETS["llama2-7B"].norm_eps == 1e-5 and PRESETS["7B"].norm_eps == 1e-6
    with pytest.raises(ValueError, match="unknown model preset"):
        model_args("8B")
