"""Checkpoints as models: the weights of a training checkpoint (`OUT/train/checkpoint.pt`) or of an
imported Hugging Face folder, rebuilt into a `Transformer`, and the tokenizer that goes with them.

A checkpoint is a `torch.save`d dict with at least `model` (state dict, Meta's names) and `model_args`
(`ModelArgs` as a dict); training checkpoints also hold the optimizer, loader and RNG states, and the
tokenizer the shards were made with (`tokenizer`: path, sha256, bos_id, eos_id).

Checkpoints and tokenizers are read through `llamapipe.tokenizer.format.storage`: they may sit on a local
disk or under an s3:// or gs:// OUT (`generate s3://bucket/out/train`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from llamapipe.model.llama import ModelArgs, Transformer, precompute_rope
from llamapipe.tokenizer.format import storage

CHECKPOINT_NAME = "checkpoint.pt"


def checkpoint_file(path: str | Path) -> str:
    """`path` itself, or `path/checkpoint.pt` when given a folder (e.g. OUT/train); local or remote. A
    sharded (FSDP) checkpoint is a folder: `path` itself or `path/checkpoint.dcp`, returned resolved to the
    version to read (see `llamapipe.model.sharded.resolve_sharded`)."""
    from llamapipe.model.sharded import SHARDED_CHECKPOINT_NAME, resolve_sharded

    path = str(path)
    sharded = resolve_sharded(path)
    if sharded is not None:
        return sharded
    if storage.is_dir(path):
        sharded = resolve_sharded(storage.join(path, SHARDED_CHECKPOINT_NAME))
        if sharded is not None and not storage.is_file(storage.join(path, CHECKPOINT_NAME)):
            return sharded
        path = storage.join(path, CHECKPOINT_NAME)
    if not storage.is_file(path):
        raise FileNotFoundError(f"{path}: no checkpoint")
    return path


def read_checkpoint(path: str | Path) -> dict:
    from llamapipe.model.sharded import TRAINER_STATE_NAME, read_sharded_weights

    path = checkpoint_file(path)
    if storage.is_file(storage.join(path, TRAINER_STATE_NAME)):  # sharded: every rank's shards, here
        return read_sharded_weights(path)
    if not storage.is_remote(path):
        # mmap: the tensors are paged in as they are used instead of being read whole up front.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    # An object: downloaded to a temporary file (deleted after), whose tensors are read whole.
    with storage.local_copy(path) as local:
        return torch.load(local, map_location="cpu", weights_only=True)


def args_from_dict(data: dict) -> ModelArgs:
    known = {f.name for f in fields(ModelArgs)}
    return ModelArgs(**{k: v for k, v in data.items() if k in known})


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Transformer, dict]:
    """The checkpoint's model in eval mode on `device`, and the checkpoint dict (its other entries)."""
    checkpoint = read_checkpoint(path)
    args = args_from_dict(checkpoint["model_args"])
    with torch.device("meta"):
        model = Transformer(args)
    model.load_state_dict(checkpoint["model"], assign=True)  # takes the loaded tensors, no second copy
    # The RoPE tables are not in state dicts: rebuild them (still meta tensors until here).
    model.rope_cos, model.rope_sin = precompute_rope(args.head_dim, args.max_seq_len, args.rope_theta)
    model.to(device)
    model.eval()
    return model, checkpoint


def save_weights(path: str | Path, state_dict: dict, args: ModelArgs, **extra) -> None:
    """A weights-only checkpoint (what `import-hf` writes): readable by `load_model`, `generate` and
    `export-hf`. Written to a temporary name first, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save({"model": state_dict, "model_args": asdict(args), **extra}, temporary)
    os.replace(temporary, path)


@dataclass(frozen=True)
class TokenizerInfo:
    path: str  # local, or on an object store: read it with `storage.read_bytes`
    bos_id: int = 1
    eos_id: int = 2


def _is_file(path: str) -> bool:
    """Whether a candidate tokenizer exists. An object-store path that cannot be reached here (no
    credentials or endpoint, e.g. a run trained on S3 whose folder was copied to a laptop) counts as
    absent, so that the candidates after it are still tried."""
    if not storage.is_remote(path):
        return storage.is_file(path)
    try:
        return storage.is_file(path)
    except Exception:  # noqa: BLE001 (boto3's and google-cloud's errors alike)
        return False


def find_tokenizer(
    checkpoint: dict, checkpoint_path: str | Path, override: str | None = None
) -> TokenizerInfo:
    """The SentencePiece model of a checkpoint: `override`, else the one recorded at training time (checked
    against its sha256), else the one its manifest names, else `tokenizer.model` beside the checkpoint
    (imported folders)."""
    recorded = checkpoint.get("tokenizer") or {}
    ids = {k: recorded[k] for k in ("bos_id", "eos_id") if recorded.get(k) is not None}
    if override:
        return TokenizerInfo(str(override), **ids)
    candidates = []
    if recorded.get("path"):
        candidates.append(str(recorded["path"]))
    manifest = checkpoint.get("manifest")
    if manifest and _is_file(manifest):
        entry = storage.read_json(manifest)["tokenizer"]
        candidates.append(storage.resolve(storage.dirname(manifest), entry["path"]))
        ids = {k: entry[k] for k in ("bos_id", "eos_id") if entry.get(k) is not None} | ids
    folder = storage.dirname(checkpoint_file(checkpoint_path))
    while "checkpoint.dcp" in folder:  # a sharded checkpoint: the folder holding checkpoint.dcp/
        folder = storage.dirname(folder)
    candidates += [storage.join(folder, "tokenizer.model"),
                   storage.join(storage.dirname(folder), "tokenizer", "tokenizer.model")]
    for candidate in candidates:
        if _is_file(candidate):
            if recorded.get("sha256") and candidate == recorded.get("path"):
                if storage.sha256(candidate) != recorded["sha256"]:
                    raise ValueError(f"{candidate} changed since training (sha256); pass --tokenizer")
            return TokenizerInfo(candidate, **ids)
    raise FileNotFoundError(
        f"no tokenizer found for this checkpoint (looked at {', '.join(candidates)}); pass --tokenizer"
    )
