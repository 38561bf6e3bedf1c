"""Hugging Face interop: our checkpoints as `LlamaForCausalLM` folders and back.

`export_hf(CHECKPOINT, DIR)` writes what `AutoModelForCausalLM.from_pretrained(DIR)` reads: `config.json`,
`generation_config.json`, the weights as safetensors (one file, or shards with
`model.safetensors.index.json` past `max_shard_bytes`), and the tokenizer files. `import_hf(DIR)` reads
such a folder (ours, or a Llama / Llama 2 one from the Hub) back into a weights-only checkpoint that
`generate`, `export-hf` and the model code load.

Names map one to one (Meta's `layers.0.attention.wq` is HF's `model.layers.0.self_attn.q_proj`), with
one real change: RoPE. Meta rotates adjacent pairs of a head's dimensions (2i, 2i+1); Hugging Face's
`rotate_half` rotates dimension i with i + head_dim/2. Permuting the output rows of wq and wk within each
head (Meta row 2i -> HF row i, row 2i+1 -> row i + head_dim/2) makes the two formulations compute the same
attention scores: q.k is a sum over dimensions, so reordering both q and k the same way changes nothing
but which dimensions get paired. This is the permutation of transformers'
`convert_llama_weights_to_hf.py`; values and wo are not rotated and are copied as they are.

Tokenizer: transformers (5.x) loads a Llama tokenizer from `tokenizer.json`; it can convert a bare
`tokenizer.model` itself only with protobuf >= 7, which Apache Beam does not allow here. So the export
copies `tokenizer.model` with the `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json`
the pipeline writes beside it, or writes them with `llamapipe.tokenizer.hf` when they are missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from llamapipe.model.checkpoints import args_from_dict, find_tokenizer, read_checkpoint, save_weights
from llamapipe.model.llama import PRESETS, ModelArgs, ffn_hidden_dim
from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.hf import write_hf_tokenizer

SAFETENSORS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# ------------------------------------------------------------------------------------- RoPE permutation


def meta_to_hf_rows(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder the output rows of a Meta wq/wk (adjacent-pair RoPE) for HF's rotate_half RoPE."""
    rows, cols = weight.shape
    return weight.view(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def hf_to_meta_rows(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of `meta_to_hf_rows`."""
    rows, cols = weight.shape
    return weight.view(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


def _layer_names(i: int) -> dict[str, str]:
    meta, hf = f"layers.{i}.", f"model.layers.{i}."
    return {
        meta + "attention.wq.weight": hf + "self_attn.q_proj.weight",
        meta + "attention.wk.weight": hf + "self_attn.k_proj.weight",
        meta + "attention.wv.weight": hf + "self_attn.v_proj.weight",
        meta + "attention.wo.weight": hf + "self_attn.o_proj.weight",
        meta + "feed_forward.w1.weight": hf + "mlp.gate_proj.weight",
        meta + "feed_forward.w2.weight": hf + "mlp.down_proj.weight",
        meta + "feed_forward.w3.weight": hf + "mlp.up_proj.weight",
        meta + "attention_norm.weight": hf + "input_layernorm.weight",
        meta + "ffn_norm.weight": hf + "post_attention_layernorm.weight",
    }


def name_map(args: ModelArgs) -> dict[str, str]:
    """Meta name -> Hugging Face name, in the order the model holds them."""
    names = {"tok_embeddings.weight": "model.embed_tokens.weight"}
    for i in range(args.n_layers):
        names.update(_layer_names(i))
    names.update({"norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"})
    return names


def _to_hf(meta_name: str, tensor: torch.Tensor, args: ModelArgs) -> torch.Tensor:
    if meta_name.endswith("attention.wq.weight"):
        return meta_to_hf_rows(tensor, args.n_heads)
    if meta_name.endswith("attention.wk.weight"):
        return meta_to_hf_rows(tensor, args.kv_heads)
    return tensor


def _to_meta(meta_name: str, tensor: torch.Tensor, args: ModelArgs) -> torch.Tensor:
    if meta_name.endswith("attention.wq.weight"):
        return hf_to_meta_rows(tensor, args.n_heads)
    if meta_name.endswith("attention.wk.weight"):
        return hf_to_meta_rows(tensor, args.kv_heads)
    return tensor


# ------------------------------------------------------------------------------------------- config


def hf_config(args: ModelArgs, bos_id: int, eos_id: int, dtype: str) -> dict:
    """`config.json` of a LlamaForCausalLM with these hyper-parameters. RoPE theta is written both the
    transformers 5 way (`rope_parameters`) and the 4.x way (`rope_theta`)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": args.vocab_size,
        "hidden_size": args.dim,
        "intermediate_size": args.ffn_hidden_dim,
        "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads,
        "num_key_value_heads": args.kv_heads,
        "head_dim": args.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": args.max_seq_len,
        "rms_norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": args.rope_theta},
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "torch_dtype": dtype,
        "dtype": dtype,
    }


def _ffn_fields(dim: int, hidden: int) -> tuple[int, float | None]:
    """`multiple_of` and `ffn_dim_multiplier` that reproduce an FFN hidden size: a plain rounding of the
    paper's 2/3 * 4d when one gives it, else a multiplier (Llama 2 70B style)."""
    multiples = [2**k for k in range(12, -1, -1)]
    for multiple_of in multiples:
        if ffn_hidden_dim(dim, multiple_of) == hidden:
            return multiple_of, None
    multiplier = (hidden + 0.5) / int(2 * 4 * dim / 3)  # int(multiplier * base) == hidden exactly
    for multiple_of in multiples:
        if hidden % multiple_of == 0 and ffn_hidden_dim(dim, multiple_of, multiplier) == hidden:
            return multiple_of, multiplier
    raise AssertionError("unreachable: multiple_of 1 always fits")


def args_from_hf_config(config: dict) -> ModelArgs:
    """ModelArgs of a LlamaForCausalLM config; refuses what this model does not implement."""
    if config.get("model_type") != "llama":
        raise ValueError(f"model_type {config.get('model_type')!r} is not llama")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    problems = []
    if rope_type != "default":
        problems.append(f"RoPE scaling {rope_type!r} (only plain RoPE is implemented)")
    if config.get("attention_bias") or config.get("mlp_bias"):
        problems.append("biases")
    if config.get("hidden_act", "silu") != "silu":
        problems.append(f"activation {config['hidden_act']!r}")
    dim, n_heads = config["hidden_size"], config["num_attention_heads"]
    if config.get("head_dim") not in (None, dim // n_heads):
        problems.append(f"head_dim {config['head_dim']} != hidden_size / heads")
    if problems:
        raise ValueError("cannot import this model: " + "; ".join(problems))
    kv_heads = config.get("num_key_value_heads") or n_heads
    hidden = config["intermediate_size"]
    common = dict(
        dim=dim, n_layers=config["num_hidden_layers"], n_heads=n_heads,
        n_kv_heads=None if kv_heads == n_heads else kv_heads, vocab_size=config["vocab_size"],
        norm_eps=config.get("rms_norm_eps", 1e-6),
        rope_theta=float(rope.get("rope_theta", config.get("rope_theta", 10000.0))),
        max_seq_len=config.get("max_position_embeddings", 2048),
    )
    for preset in PRESETS.values():  # a released shape: keep its own FFN fields
        shape = (preset.dim, preset.n_heads, preset.kv_heads, preset.ffn_hidden_dim)
        if shape == (dim, n_heads, kv_heads, hidden):
            return ModelArgs(
                **common, multiple_of=preset.multiple_of, ffn_dim_multiplier=preset.ffn_dim_multiplier
            )
    multiple_of, multiplier = _ffn_fields(dim, hidden)
    return ModelArgs(**common, multiple_of=multiple_of, ffn_dim_multiplier=multiplier)


# ------------------------------------------------------------------------------------------- export


def _shards(
    tensors: list[tuple[str, int, Callable[[], torch.Tensor]]], max_bytes: int
) -> Iterator[list[tuple[str, Callable[[], torch.Tensor]]]]:
    shard, size = [], 0
    for name, nbytes, make in tensors:
        if shard and size + nbytes > max_bytes:
            yield shard
            shard, size = [], 0
        shard.append((name, make))
        size += nbytes
    if shard:
        yield shard


def write_tokenizer_files(model_path: str | Path, out_dir: Path) -> str:
    """Copy `tokenizer.model` and provide the Hugging Face tokenizer files; returns how (for the user).
    `model_path` may be under an s3:// or gs:// OUT (read through `storage`); `out_dir` is local."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = str(model_path)
    storage.download(model_path, str(out_dir / "tokenizer.model"))
    beside = storage.dirname(model_path)
    if storage.is_file(storage.join(beside, "tokenizer.json")):  # the pipeline writes them beside it
        for name in TOKENIZER_FILES:
            if storage.is_file(storage.join(beside, name)):
                storage.download(storage.join(beside, name), str(out_dir / name))
        return f"tokenizer.json copied from {beside}"
    try:  # e.g. an imported folder, or a run from before the pipeline wrote tokenizer.json
        write_hf_tokenizer(str(out_dir / "tokenizer.model"), str(out_dir))
    except ValueError as error:  # a SentencePiece model unlike Meta's: the weights are still usable
        return f"tokenizer.model only ({error})"
    return "tokenizer.json written from tokenizer.model"


def export_hf(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    dtype: str = "float32",
    tokenizer: str | None = None,
    max_shard_bytes: int = 5 * 10**9,
) -> dict:
    """Write a LlamaForCausalLM folder from a checkpoint; returns a summary (files, params, tokenizer)."""
    from safetensors.torch import save_file

    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    saved = read_checkpoint(checkpoint)
    args = args_from_dict(saved["model_args"])
    info = find_tokenizer(saved, checkpoint, tokenizer)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = saved["model"]
    names = name_map(args)
    if set(state) != set(names):
        raise ValueError(f"checkpoint weights do not match the model: {sorted(set(state) ^ set(names))[:5]}")
    element = torch.empty((), dtype=DTYPES[dtype]).element_size()
    tensors = [
        (hf_name, state[meta_name].numel() * element,
         lambda m=meta_name: _to_hf(m, state[m], args).to(DTYPES[dtype]).contiguous())
        for meta_name, hf_name in names.items()
    ]
    shards = list(_shards(tensors, max_shard_bytes))
    files, weight_map = [], {}
    for index, shard in enumerate(shards, start=1):
        name = SAFETENSORS_NAME if len(shards) == 1 else f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        # Converted one shard at a time: a large model is never held twice in memory.
        save_file({hf_name: make() for hf_name, make in shard}, str(out / name), metadata={"format": "pt"})
        files.append(name)
        weight_map.update({hf_name: name for hf_name, _ in shard})
    if len(shards) > 1:
        total = sum(nbytes for _, nbytes, _ in tensors)
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (out / INDEX_NAME).write_text(json.dumps(index, indent=2), encoding="utf-8")
        files.append(INDEX_NAME)
    (out / "config.json").write_text(
        json.dumps(hf_config(args, info.bos_id, info.eos_id, dtype), indent=2), encoding="utf-8"
    )
    generation = {"bos_token_id": info.bos_id, "eos_token_id": info.eos_id}
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2), encoding="utf-8")
    how = write_tokenizer_files(info.path, out)
    return {"dir": str(out), "files": files, "params": sum(state[n].numel() for n in names),
            "tokenizer": how}


# ------------------------------------------------------------------------------------------- import


def _read_safetensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if (folder / INDEX_NAME).is_file():
        index = json.loads((folder / INDEX_NAME).read_text(encoding="utf-8"))
        tensors = {}
        for name in sorted(set(index["weight_map"].values())):
            tensors.update(load_file(str(folder / name)))
        return tensors
    if (folder / SAFETENSORS_NAME).is_file():
        return load_file(str(folder / SAFETENSORS_NAME))
    raise FileNotFoundError(f"{folder}: no {SAFETENSORS_NAME} or {INDEX_NAME}")


def import_hf(folder: str | Path, out: str | Path | None = None) -> dict:
    """Read a LlamaForCausalLM folder into a weights-only checkpoint (float32, Meta's names and RoPE
    layout), by default `FOLDER/checkpoint.pt`; `tokenizer.model` of the folder is used by `generate`."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    args = args_from_hf_config(config)
    tensors = _read_safetensors(folder)
    names = name_map(args)
    if config.get("tie_word_embeddings") and "lm_head.weight" not in tensors:
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]  # untied from here on
    missing = [hf for hf in names.values() if hf not in tensors]
    if missing:
        raise ValueError(f"{folder} lacks weights: {', '.join(missing[:5])}")
    state = {meta: _to_meta(meta, tensors[hf], args).float().contiguous() for meta, hf in names.items()}
    path = Path(out) if out else folder / "checkpoint.pt"
    extra = {"imported_from": str(folder.resolve())}
    if (folder / "tokenizer.model").is_file():
        eos = config.get("eos_token_id", 2)
        extra["tokenizer"] = {
            "path": str((folder / "tokenizer.model").resolve()),
            "bos_id": config.get("bos_token_id", 1),
            "eos_id": eos[0] if isinstance(eos, list) else eos,
        }
    save_weights(path, state, args, **extra)
    return {"checkpoint": str(path), "params": sum(t.numel() for t in state.values()), "model_args": args}

