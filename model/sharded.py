"""Fully sharded data parallel (FSDP2) for the trainer, and its sharded checkpoints.

Model: PyTorch's `fully_shard` on every transformer block, then on the whole model (embedding, final
norm and output projection form the root's group), as torchtitan does for LLaMA. Each rank keeps 1/N of
every weight, gradient and AdamW moment (as DTensors); a block's weights are all-gathered just before it
runs (forward and backward) and freed after, and gradients are reduce-scattered. `dtype: bfloat16` is
the mixed-precision policy: parameters gathered in bf16 for compute, float32 sharded master weights and
optimizer state, gradients reduced in float32 (`MixedPrecisionPolicy(param_dtype=bfloat16,
reduce_dtype=float32)`); `float32` keeps everything float32 (the CPU tests compare it with DDP).

Initial weights: built on the meta device on every rank (no rank ever holds the model on its GPU), then
rank 0's full float32 model, initialised on the CPU with the run's seed as the DDP path does, is broadcast
tensor by tensor and each rank keeps its shard (`set_model_state_dict(..., broadcast_from_rank0=True)`).
So FSDP and DDP start from the same weights on CPUs, and host memory holds one full copy, on rank 0.

Checkpoint: a folder `checkpoint.dcp/` (beside DDP's single file `checkpoint.pt`) written by
`torch.distributed.checkpoint`: each rank writes its own shards of model and optimizer (`__<rank>_0.distcp`)
and rank 0 the `.metadata`, plus `trainer.pt` (rank 0): step, RNG states, every rank's loader position,
config, model args, manifest and tokenizer, as DDP's file holds them. Locally it is written to
`checkpoint.dcp.tmp/` and then renamed into place (the previous one moved to `checkpoint.dcp.old/` during
the swap and found there if a crash falls between the two renames). On an object store, where nothing
renames, each version is a folder `checkpoint.dcp/step-N/` staged through local temporary files and
committed by rewriting the small object `checkpoint.dcp/LATEST` (see `_save_to_object_store`). dcp
reshards on load, so a run resumes on another number of ranks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist

from llamapipe.model.llama import ModelArgs, Transformer
from llamapipe.tokenizer.format import storage

SHARDED_CHECKPOINT_NAME = "checkpoint.dcp"  # a folder, beside DDP's `checkpoint.pt`
TRAINER_STATE_NAME = "trainer.pt"  # inside it: everything but the model and optimizer tensors
LATEST_NAME = "LATEST"  # on an object store: names the committed version folder inside checkpoint.dcp/


def mixed_precision(dtype: str):
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if dtype == "bfloat16":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def device_mesh(device: torch.device, shard_size: int = 0):
    """The ranks as a mesh: 1-D (shard over all) or, with `shard_size` dividing the world size, 2-D
    (replicate across groups of `shard_size` ranks, shard within each: HSDP)."""
    from torch.distributed.device_mesh import init_device_mesh

    world = dist.get_world_size()
    if not shard_size or shard_size >= world:
        return init_device_mesh(device.type, (world,), mesh_dim_names=("shard",))
    if world % shard_size:
        raise ValueError(f"train.fsdp_shard_size {shard_size} does not divide the {world} ranks")
    shape = (world // shard_size, shard_size)
    return init_device_mesh(device.type, shape, mesh_dim_names=("replicate", "shard"))


def build_fsdp_model(
    args: ModelArgs, *, activation_checkpointing: bool, dtype: str, device: torch.device, seed: int,
    compile_backend: str | None = None, shard_size: int = 0,
) -> Transformer:
    """The sharded model with rank 0's initial weights (see the module docstring). Needs an initialised
    process group (of any size, 1 included)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    from torch.distributed.fsdp import fully_shard

    with torch.device("meta"):
        model = Transformer(args, activation_checkpointing)
    policy = mixed_precision(dtype)
    mesh = device_mesh(device, shard_size)
    for layer in model.layers:
        if compile_backend:  # per block before sharding (torchtitan's order): FSDP's hooks stay eager
            layer.compile(backend=compile_backend)
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    # The root's parameters (embedding, norm, output) are gathered for the whole step: resharding them after
    # forward would only gather the output projection again at the start of backward.
    fully_shard(model, mesh=mesh, mp_policy=policy, reshard_after_forward=False)
    model.to_empty(device=device)
    model.reset_rope()
    full: dict = {}
    if dist.get_rank() == 0:
        torch.manual_seed(seed)
        full = Transformer(args).state_dict()  # on the CPU, with the DDP path's initialisation
    set_model_state_dict(
        model, full, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    )
    del full
    return model


def sharded_checkpoint_dir(out_dir: str | Path) -> str | None:
    """The committed sharded checkpoint under `out_dir` (a folder holding dcp's `.metadata` and
    `trainer.pt`), or None. Locally `checkpoint.dcp/` (or `.old/`, left by a crash mid-swap); on an object
    store the `checkpoint.dcp/step-N/` that `checkpoint.dcp/LATEST` names."""
    return resolve_sharded(storage.join(str(out_dir), SHARDED_CHECKPOINT_NAME))


def resolve_sharded(path: str | Path) -> str | None:
    """`path` (a `checkpoint.dcp` folder, or one of its committed versions) as the folder to read, or
    None when it holds no complete sharded checkpoint."""
    path = str(path)
    if storage.is_remote(path):
        latest = storage.join(path, LATEST_NAME)
        if storage.is_file(latest):
            return storage.join(path, storage.read_text(latest).strip())
        return path if storage.is_file(storage.join(path, TRAINER_STATE_NAME)) else None
    for candidate in (Path(path), Path(path + ".old")):
        if (candidate / TRAINER_STATE_NAME).is_file() and (candidate / ".metadata").is_file():
            return str(candidate)
    return None


def is_sharded_checkpoint(path: str | Path) -> bool:
    return resolve_sharded(path) is not None


def save_sharded(out_dir: str, step: int, model, optimizer, trainer_state: dict | None) -> None:
    """Every rank calls this; rank 0 passes `trainer_state` (the others None)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optimizer_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optimizer_state}
    main = dist.get_rank() == 0
    if storage.is_remote(out_dir):
        _save_to_object_store(out_dir, step, state, trainer_state)
        return
    final = Path(out_dir) / SHARDED_CHECKPOINT_NAME
    temporary, old = final.with_name(final.name + ".tmp"), final.with_name(final.name + ".old")
    if main:
        shutil.rmtree(temporary, ignore_errors=True)  # a half-written one from a crash
        temporary.mkdir(parents=True)
    dist.barrier()
    dcp.save(state, checkpoint_id=str(temporary))
    if main:
        _write_trainer_state(temporary / TRAINER_STATE_NAME, trainer_state)
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(temporary, final)
        shutil.rmtree(old, ignore_errors=True)
    dist.barrier()  # nobody races ahead (or reads) before the checkpoint is in place


def _write_trainer_state(path: Path, trainer_state: dict) -> None:
    with open(path, "wb") as f:
        torch.save(trainer_state, f)
        f.flush()
        os.fsync(f.fileno())


def _save_to_object_store(out_dir: str, step: int, state: dict, trainer_state: dict | None) -> None:
    """dcp writes files: each rank saves its shards into a local temporary folder ($TMPDIR needs room for
    one rank's shards) and uploads them through `storage` to `checkpoint.dcp/step-N/`; then rank 0 adds
    `trainer.pt` and rewrites `LATEST` (one small object: the commit) and deletes the older versions. A
    crash before the commit leaves `LATEST` on the previous version."""
    import torch.distributed.checkpoint as dcp

    root = storage.join(out_dir, SHARDED_CHECKPOINT_NAME)
    version = f"step-{step:09d}"
    folder = storage.join(root, version)
    local = tempfile.mkdtemp(prefix="llamapipe-dcp-")
    try:
        dcp.save(state, checkpoint_id=local)  # collective: every rank's shards, rank 0's .metadata
        for name in os.listdir(local):
            storage.upload(os.path.join(local, name), storage.join(folder, name))
        dist.barrier()  # every shard uploaded
        if dist.get_rank() == 0:
            path = Path(local) / TRAINER_STATE_NAME
            _write_trainer_state(path, trainer_state)
            storage.upload(str(path), storage.join(folder, TRAINER_STATE_NAME))
            storage.write_text(storage.join(root, LATEST_NAME), version + "\n")
            for name in storage.list_names(root):
                if name not in (version, LATEST_NAME):
                    storage.remove(storage.join(root, name))
    finally:
        shutil.rmtree(local, ignore_errors=True)
    dist.barrier()


@contextmanager
def _readable(path: str) -> Iterator[str]:
    """A local folder holding the checkpoint `path`: itself, or a temporary copy of an object-store one
    (every file: dcp may read any rank's shards when the rank count changed; deleted after)."""
    if not storage.is_remote(path):
        yield path
        return
    local = tempfile.mkdtemp(prefix="llamapipe-dcp-")
    try:
        for name in storage.list_names(path):
            storage.download(storage.join(path, name), os.path.join(local, name))
        yield local
    finally:
        shutil.rmtree(local, ignore_errors=True)


def load_sharded(path: str, model, optimizer) -> dict:
    """Model and optimizer shards into `model` and `optimizer` (resharded for this number of ranks);
    returns the trainer state. Every rank calls this."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    with _readable(path) as local:
        trainer_state = read_trainer_state(local)
        model_state, optimizer_state = get_state_dict(model, optimizer)
        state = {"model": model_state, "optimizer": optimizer_state}
        dcp.load(state, checkpoint_id=local)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    return trainer_state


def read_trainer_state(path: str | Path) -> dict:
    return torch.load(Path(path) / TRAINER_STATE_NAME, map_location="cpu", weights_only=True)


def read_sharded_weights(path: str | Path) -> dict:
    """A sharded checkpoint as a plain checkpoint dict (`model`: full state dict on the CPU, plus the
    trainer state's entries), in this one process, for `generate` and `export-hf`. dcp reads every rank's
    shards into a plain model's tensors without a process group. The optimizer state is not read."""
    import torch.distributed.checkpoint as dcp

    with _readable(resolve_sharded(path) or str(path)) as local:
        checkpoint = read_trainer_state(local)
        with torch.device("meta"):  # no initialisation: every tensor is read from the checkpoint
            model = Transformer(ModelArgs(**checkpoint["model_args"]))
        weights = model.to_empty(device="cpu").state_dict()
        state = {"model": weights}
        with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.load(state, checkpoint_id=local, no_dist=True)
    return {**checkpoint, "model": state["model"]}
