"""Hugging Face interop: an exported folder is a LlamaForCausalLM computing our function, and reads back."""

from __future__ import annotations

import json

import pytest
import sentencepiece as spm
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llamapipe.model.checkpoints import load_model, save_weights
from llamapipe.model.generate import generate
from llamapipe.model.hf import (
    args_from_hf_config,
    export_hf,
    hf_config,
    hf_to_meta_rows,
    meta_to_hf_rows,
)
from llamapipe.model.llama import PRESETS, ModelArgs, Transformer
from llamapipe.pipeline.cli import main

VOCAB = 380  # the spm_model fixture's
SHAPES = {
    "multi-head": ModelArgs(dim=64, n_layers=2, n_heads=4, vocab_size=VOCAB, multiple_of=16, max_seq_len=64),
    "grouped-query": ModelArgs(dim=64, n_layers=2, n_heads=8, n_kv_heads=2, vocab_size=VOCAB, multiple_of=16,
                               max_seq_len=64, norm_eps=1e-5, rope_theta=500000.0),
}


def random_checkpoint(path, args: ModelArgs, tokenizer_path, seed: int = 0) -> Transformer:
    """A randomly initialised model saved as a weights-only checkpoint. The RMSNorm gains are moved away
    from 1, so that swapping two norms, or dropping one, changes the function; queries and keys are
    scaled up so that attention is sharp (at init it is nearly uniform, and positions barely matter)."""
    torch.manual_seed(seed)
    model = Transformer(args)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.add_(0.3 * torch.randn_like(param))
            elif name.endswith(("wq.weight", "wk.weight")):
                param.mul_(15.0)
    save_weights(path, model.state_dict(), args,
                 tokenizer={"path": str(tokenizer_path), "bos_id": 1, "eos_id": 2})
    return model.eval()


@pytest.fixture
def tokenizer_path(tmp_path, spm_model):
    path = tmp_path / "tokenizer" / "tokenizer.model"
    path.parent.mkdir()
    path.write_bytes(spm_model)
    return path


@pytest.mark.parametrize("shape", SHAPES)
def test_transformers_computes_the_same_logits_and_greedy_text(shape, tmp_path, tokenizer_path):
    args = SHAPES[shape]
    ours = random_checkpoint(tmp_path / "checkpoint.pt", args, tokenizer_path)
    export_hf(tmp_path / "checkpoint.pt", tmp_path / "hf")
    theirs = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    assert type(theirs).__name__ == "LlamaForCausalLM"
    assert theirs.config.num_key_value_heads == args.kv_heads

    tokens = torch.randint(0, VOCAB, (3, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        difference = (ours(tokens)[0] - theirs(tokens).logits).abs().max().item()
    assert difference <= 1e-4

    prompt = tokens[0, :6].tolist()
    mine = generate(ours, prompt, 12, temperature=0, stop_ids=(2,))
    produced = theirs.generate(tokens[:1, :6], max_new_tokens=12, do_sample=False)[0, 6:].tolist()
    assert mine == (produced[: produced.index(2)] if 2 in produced else produced)


def test_without_the_rotary_permutation_the_logits_would_differ(tmp_path, tokenizer_path):
    """The wq/wk row permutation is what makes the export right: undoing it breaks the equality."""
    args = SHAPES["multi-head"]
    ours = random_checkpoint(tmp_path / "checkpoint.pt", args, tokenizer_path)
    export_hf(tmp_path / "checkpoint.pt", tmp_path / "hf")
    theirs = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    for layer, mine in zip(theirs.model.layers, ours.layers, strict=True):
        with torch.no_grad():
            layer.self_attn.q_proj.weight.copy_(mine.attention.wq.weight)
            layer.self_attn.k_proj.weight.copy_(mine.attention.wk.weight)
    tokens = torch.randint(0, VOCAB, (2, 32), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (ours(tokens)[0] - theirs(tokens).logits).abs().max().item() > 0.1


def test_rotary_row_permutation_pairs_adjacent_dimensions_with_halves():
    n_heads, head_dim = 2, 8
    weight = torch.arange(n_heads * head_dim, dtype=torch.float32)[:, None].expand(-1, 3)
    permuted = meta_to_hf_rows(weight, n_heads)[:, 0].tolist()
    # Meta rows (0, 1) are a rotated pair, HF pairs rows (0, 4): Meta's 0 -> HF 0 and Meta's 1 -> HF 4.
    assert permuted == [0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15]
    assert torch.equal(hf_to_meta_rows(meta_to_hf_rows(weight, n_heads), n_heads), weight)


def test_export_is_sharded_with_an_index_and_import_reads_it_back_exactly(tmp_path, tokenizer_path, capsys):
    args = SHAPES["grouped-query"]
    model = random_checkpoint(tmp_path / "checkpoint.pt", args, tokenizer_path)
    export_hf(tmp_path / "checkpoint.pt", tmp_path / "hf", max_shard_bytes=60_000)
    index = json.loads((tmp_path / "hf" / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and all((tmp_path / "hf" / name).is_file() for name in shards)
    assert index["metadata"]["total_size"] == 4 * model.num_params()
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["intermediate_size"] == args.ffn_hidden_dim
    assert config["rope_parameters"]["rope_theta"] == 5e5

    assert main(["import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "back.pt")]) == 0
    assert "imported" in capsys.readouterr().out
    back, saved = load_model(tmp_path / "back.pt")
    assert back.params == args
    for name, tensor in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name
    assert saved["tokenizer"]["path"].endswith("hf/tokenizer.model")


def test_bfloat16_export_halves_the_file_and_still_loads(tmp_path, tokenizer_path):
    random_checkpoint(tmp_path / "checkpoint.pt", SHAPES["multi-head"], tokenizer_path)
    out = tmp_path / "hf"
    assert main(["export-hf", str(tmp_path / "checkpoint.pt"), str(out), "--dtype", "bfloat16"]) == 0
    single = tmp_path / "hf" / "model.safetensors"
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert model.dtype == torch.bfloat16 and single.is_file()


def test_released_shapes_are_recognised_and_other_ffn_sizes_reproduced():
    for name in ("7B", "65B", "llama2-70B"):
        args = PRESETS[name]
        assert args_from_hf_config(hf_config(args, 1, 2, "bfloat16")) == args
    # TinyLlama-1.1B's shape: FFN 5632 for dim 2048 (256 * ceil(5461 / 256)), 4 KV heads.
    tiny_llama = {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 22,
                  "num_attention_heads": 32, "num_key_value_heads": 4, "intermediate_size": 5632,
                  "vocab_size": 32000,
                  "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0}
    args = args_from_hf_config(tiny_llama)
    assert (args.ffn_hidden_dim, args.kv_heads, args.norm_eps) == (5632, 4, 1e-5)
    odd = args_from_hf_config(dict(tiny_llama, intermediate_size=3000))  # smaller than 2/3 * 4d
    assert odd.ffn_hidden_dim == 3000


def test_import_refuses_what_the_model_does_not_implement():
    config = hf_config(SHAPES["multi-head"], 1, 2, "float32")
    with pytest.raises(ValueError, match="RoPE scaling 'llama3'"):
        args_from_hf_config(dict(config, rope_parameters={"rope_type": "llama3", "rope_theta": 5e5}))
    with pytest.raises(ValueError, match="biases"):
        args_from_hf_config(dict(config, attention_bias=True))
    with pytest.raises(ValueError, match="model_type"):
        args_from_hf_config(dict(config, model_type="mistral"))


def test_exported_tokenizer_loads_in_transformers_and_encodes_like_sentencepiece(tmp_path, tokenizer_path,
                                                                                  spm_model):
    random_checkpoint(tmp_path / "checkpoint.pt", SHAPES["multi-head"], tokenizer_path)
    summary = export_hf(tmp_path / "checkpoint.pt", tmp_path / "hf")
    assert summary["tokenizer"] == "tokenizer.json written from tokenizer.model"  # none beside it here
    assert (tmp_path / "hf" / "tokenizer.model").read_bytes() == spm_model
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    processor = spm.SentencePieceProcessor(model_proto=spm_model)
    for text in ("the river ran past a mill", "42 bakers\nsold bread ünïcode, a  b"):
        assert tokenizer(text)["input_ids"] == [1] + processor.encode(text)

    # The files the pipeline wrote beside tokenizer.model travel as they are.
    (tokenizer_path.parent / "tokenizer.json").write_text('{"version": "1.0"}')
    summary = export_hf(tmp_path / "checkpoint.pt", tmp_path / "hf2")
    assert (tmp_path / "hf2" / "tokenizer.json").read_text() == '{"version": "1.0"}'
    assert summary["tokenizer"].startswith("tokenizer.json copied from")
