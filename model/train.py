"""Pretrain a LLaMA on the pipeline's token shards: the paper's optimisation recipe (section 2.3), exact
resume, and DistributedDataParallel when launched by `torchrun`.

Recipe: AdamW (beta1 0.9, beta2 0.95, weight decay 0.1 on weight matrices only), linear warmup then
cosine decay to 10% of the peak learning rate, gradient clipping at 1.0. Batches come from
`MixtureLoader`, which samples each row's source by the manifest's shares.

Batch: `batch_size` sequences per rank per micro-step; a step accumulates gradients over
`grad_accum_steps` micro-steps, or over as many as make `batch_tokens` tokens per step across all ranks
(the paper: 4M), so the global batch does not change when the number of GPUs does.

Evaluation: documents whose id hashes under `holdout_fraction` are held out of training (see
`MixtureLoader`); every `eval_every` steps the loss on `eval_batches` fixed batches of each source's
held-out documents is logged as `source_loss`.

Outputs in `out_dir`, a local folder or an s3:// or gs:// prefix (through
`llamapipe.tokenizer.format.storage`; the manifest and shards may be on an object store too), written by
rank 0 only:
  - `metrics.jsonl`: one JSON line per logged step (step, loss, lr, tokens, tokens_per_s, elapsed_s,
    grad_norm, source_tokens, mfu on GPUs whose peak FLOP/s is known, and source_loss at evaluation
    steps); on an object store, one object rewritten whole now and then (see `_Trainer._log_metrics`);
  - `checkpoint.pt`: model, optimizer, every rank's loader position, step, RNG states, config and model
    args, replaced atomically so a crash mid-write leaves the previous one intact (on an object store:
    saved to a local temporary file, then uploaded as one object, which appears only once complete).
    A run started again with `resume=True` continues from it and ends with the same weights as an
    uninterrupted run.

Distributed: with `WORLD_SIZE` > 1 in the environment (torchrun sets it, with RANK, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT) the process group is initialised (NCCL on GPUs, gloo on CPUs), the model is
wrapped in DDP and each rank reads its own part of the shards. `out_dir` must be on storage every rank
can read for resuming. E.g. `torchrun --standalone --nproc_per_node=8 -m llamapipe.pipeline.cli train
CONFIG`. `compile` wraps the (DDP) model in `torch.compile`.

`parallelism: fsdp` shards weights, gradients and AdamW moments over the ranks instead (FSDP2, see
`llamapipe.model.sharded`): the same loss, data order and `batch_tokens` semantics as DDP; bf16 as a
mixed-precision policy rather than autocast; checkpoints in `checkpoint.dcp/`, written shard by shard by
every rank and resumable on another number of ranks. Gradients are reduce-scattered after every micro-step
(DDP all-reduces once per step): holding unsharded gradients across micro-steps would cost the memory FSDP
is there to save (7B: 27 GB per rank).
"""

from __future__ import annotations

import gc
import itertools
import json
import math
import os
import random
import tempfile
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from llamapipe.model.checkpoints import CHECKPOINT_NAME
from llamapipe.model.data import MixtureLoader
from llamapipe.model.llama import Transformer
from llamapipe.model.plan import device_peak_flops, flops_per_token
from llamapipe.model.sharded import (
    SHARDED_CHECKPOINT_NAME,
    build_fsdp_model,
    load_sharded,
    save_sharded,
    sharded_checkpoint_dir,
)
from llamapipe.model.train_config import (  # noqa: F401 (TrainConfig: also from here)
    METRICS_NAME,
    TrainConfig,
    build_model_args,
)
from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.manifest import read_manifest, validate_manifest

ADAM_EPS = 1e-5  # Llama 2 paper (section 2.2); the LLaMA-1 paper does not give it
# On an object store metrics.jsonl is one object rewritten whole (see `_Trainer._log_metrics`): at most
# this often between checkpoints and evaluations.
_METRICS_UPLOAD_S = 60.0


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warmup to `lr` over `warmup_steps`, then
    half a cosine down to `min_lr_ratio * lr`, reached at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    min_lr = cfg.lr * cfg.min_lr_ratio
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps - 1))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices (linear weights, embeddings) only: decaying the RMSNorm gains towards 0
    would fight the normalisation they exist to rescale."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _whole(path: str) -> str:
    """A path as recorded in checkpoints: a local one absolute with symlinks resolved, an object-store
    one as it is."""
    return path if storage.is_remote(path) else str(Path(path).resolve())


@dataclass
class _Distributed:
    rank: int
    world_size: int
    device: torch.device
    owns_process_group: bool


def _setup_distributed(fsdp: bool = False) -> _Distributed:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world_size <= 1:
        device = torch.device("cuda" if cuda else "cpu")
        if not fsdp or dist.is_initialized():
            return _Distributed(0, 1, device, False)
        # FSDP shards over a process group even alone (e.g. resuming a sharded run on one GPU): a group of
        # one, on an in-memory store, needs no MASTER_ADDR.
        dist.init_process_group("nccl" if cuda else "gloo", store=dist.HashStore(), rank=0, world_size=1)
        return _Distributed(0, 1, device, True)
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    device = torch.device("cpu")
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if cuda else "gloo")
    return _Distributed(dist.get_rank(), dist.get_world_size(), device, owns)


def train(
    manifest_path: str,
    out_dir: str,
    cfg: TrainConfig,
    resume: bool = True,
    progress: bool = True,
    *,
    stop_at: int | None = None,
) -> dict:
    """Train `cfg.steps` optimizer steps on the shards of `manifest_path`, writing to `out_dir`.

    `resume`: continue from `out_dir/checkpoint.pt` (FSDP: `out_dir/checkpoint.dcp/`) when present (else
    start over, replacing the metrics).
    `stop_at`: end this call after that step (checkpointing there) while the schedule still spans
    `cfg.steps`, as a job hitting its time limit would; run again to continue. Returns a summary."""
    env = _setup_distributed(cfg.parallelism == "fsdp")
    trainer, finished = None, False
    try:
        trainer = _Trainer(manifest_path, out_dir, cfg, env, progress)
        summary = trainer.run(resume, stop_at)
        finished = True
        return summary
    finally:
        if env.owns_process_group:
            # Gloo's threads can still hold the tensors of the last asynchronous collective (DDP's gradient
            # buckets); freed during interpreter shutdown they abort the process ("terminate called without
            # an active exception", seen on rank 1 after both ranks had printed their summaries; the
            # mechanism is pytorch/pytorch#179291). So: a barrier (no collective in flight on any rank;
            # skipped after an error, when the other ranks may be gone), the trainer and its DDP reducer
            # freed while the interpreter is whole, then the group destroyed.
            if finished:
                dist.barrier()
            del trainer
            gc.collect()
            dist.destroy_process_group()


class _Trainer:
    def __init__(self, manifest_path: str, out_dir: str, cfg: TrainConfig, env: _Distributed, progress: bool):
        self.cfg = cfg
        self.env = env
        self.is_main = env.rank == 0
        self.progress = progress and self.is_main
        # OUT/train on a local disk, or an s3:// or gs:// prefix (every path below goes through `storage`).
        self.out = str(out_dir)
        self.checkpoint_path = storage.join(self.out, CHECKPOINT_NAME)
        self.metrics_path = storage.join(self.out, METRICS_NAME)
        self.remote = storage.is_remote(self.out)
        self.fsdp = cfg.parallelism == "fsdp"
        self.loader_seed = cfg.seed  # another one after a resume on another number of ranks (FSDP)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        # Shard digests are not re-hashed (that reads the whole corpus); the tokenizer is, when it sits where
        # the manifest says: a tokenizer retrained after sharding would make the run unusable for inference.
        tokenizer = storage.resolve(
            storage.dirname(str(manifest_path)), read_manifest(manifest_path)["tokenizer"]["path"]
        )
        manifest = validate_manifest(
            manifest_path, tokenizer if storage.is_file(tokenizer) else None, check_sha256=False
        )
        self.args = build_model_args(cfg, manifest["tokenizer"]["vocab_size"])
        torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP broadcasts rank 0's anyway)
        random.seed(cfg.seed)
        if self.fsdp:
            self.model = build_fsdp_model(
                self.args, activation_checkpointing=cfg.activation_checkpointing, dtype=cfg.dtype,
                device=env.device, seed=cfg.seed,
                compile_backend=cfg.compile_backend if cfg.compile else None, shard_size=cfg.fsdp_shard_size,
            )
        else:
            with env.device:  # built where it trains: no host copy of a large model on its way to the GPU
                self.model = Transformer(self.args, cfg.activation_checkpointing)
        # The fused kernel (one pass over each parameter) on CPUs as on GPUs: torch's default on CPU is a
        # Python loop over the parameters, ~5x slower (22 ms against 4.7 ms a step for the `small` preset).
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=ADAM_EPS,
            fused=True,
        )
        self.loader = self._make_loader(manifest_path, cfg.seed)
        self.manifest_path = manifest_path
        self.tokenizer = {
            "path": _whole(tokenizer),
            **{k: manifest["tokenizer"].get(k) for k in ("sha256", "vocab_size", "bos_id", "eos_id")},
        }
        self.sources = sorted(self.loader.shares)
        self.accum = cfg.accumulation_steps(env.world_size)
        self.tokens_per_step = cfg.batch_size * cfg.seq_len * self.accum * env.world_size
        peak = cfg.peak_tflops * 1e12 or device_peak_flops(env.device, cfg.dtype)
        # Model FLOPs only (no recomputation), so MFU is comparable with and without checkpointing.
        self.flops_per_step = (
            flops_per_token(self.args, cfg.seq_len, self.model.num_params(exclude_embeddings=True))
            * self.tokens_per_step
        )
        self.peak_flops = peak * env.world_size if peak else None
        # FSDP's bf16 is its mixed-precision policy (the weights are gathered in bf16), not autocast.
        self.autocast = (
            (lambda: torch.autocast(env.device.type, dtype=torch.bfloat16))
            if cfg.dtype == "bfloat16" and not self.fsdp else nullcontext
        )
        # Progress state, saved in checkpoints so that a resumed run logs what a straight run would.
        self.step = 0
        self.elapsed_before = 0.0
        self.source_tokens: Counter[str] = Counter()  # this rank's rows, counted in predicted tokens
        self.pending_loss = 0.0  # sum of this rank's step losses since the last metrics line
        self.pending_steps = 0
        self.history: list[dict] = []
        self._eval_batches: dict[str, list] | None = None
        self.eval_missing: list[str] = []  # sources without held-out documents
        self._metrics_uploaded = time.monotonic()  # last rewrite of a remote metrics.jsonl

    def _make_loader(self, manifest_path: str, seed: int) -> MixtureLoader:
        return MixtureLoader(
            manifest_path, self.cfg.seq_len, self.cfg.batch_size, seed=seed, rank=self.env.rank,
            world_size=self.env.world_size, num_workers=self.cfg.num_workers, validate=False,
            holdout_fraction=self.cfg.holdout_fraction,
        )

    # ------------------------------------------------------------------ checkpoints

    def _has_checkpoint(self) -> bool:
        if self.fsdp:
            if storage.is_file(self.checkpoint_path):
                raise ValueError(f"{self.checkpoint_path} is a DDP checkpoint and train.parallelism is fsdp; "
                                 "use parallelism: ddp to resume it, or another out_dir")
            return sharded_checkpoint_dir(self.out) is not None
        if sharded_checkpoint_dir(self.out) is not None:
            raise ValueError(f"{self.out} holds a sharded (fsdp) checkpoint and train.parallelism is ddp; "
                             "use parallelism: fsdp to resume it, or another out_dir")
        return storage.is_file(self.checkpoint_path)

    def _load_sharded_checkpoint(self) -> None:
        path = sharded_checkpoint_dir(self.out)
        checkpoint = load_sharded(path, self.model, self.optimizer)
        if checkpoint["model_args"] != asdict(self.args):
            raise ValueError(
                f"{path} holds a different model ({checkpoint['model_args']}) than the config asks for "
                f"({asdict(self.args)}); use another out_dir or resume=False"
            )
        ranks = checkpoint["ranks"]
        self.loader_seed = checkpoint["loader_seed"]
        if len(ranks) == self.env.world_size:
            mine = ranks[self.env.rank]
            if self.loader_seed != self.cfg.seed:
                self.loader = self._make_loader(self.manifest_path, self.loader_seed)
            self.loader.load_state_dict(mine["loader"])
            self.source_tokens = Counter(mine["source_tokens"])
            self.pending_loss, self.pending_steps = mine["pending_loss"], mine["pending_steps"]
        else:
            # Weights, optimizer, schedule and counters carry over (dcp reshards); the loader positions
            # do not: they are per worker of the old split. The data restarts from the shards' beginnings
            # in another order (seed + step), so this run is not the one the old rank count would have
            # made, and some windows come again, some never. Counters go to rank 0, whose sums are logged.
            self.loader_seed = self.cfg.seed + checkpoint["step"]
            self.loader = self._make_loader(self.manifest_path, self.loader_seed)
            if self.is_main:
                self.source_tokens = sum((Counter(r["source_tokens"]) for r in ranks), Counter())
                # The logged loss is sum(losses) / sum(steps) over ranks: the old ranks' pending steps
                # count as this many ranks' (the same mean, the same weight against the steps to come).
                scale = self.env.world_size / len(ranks)
                self.pending_loss = sum(r["pending_loss"] for r in ranks) * scale
                self.pending_steps = ranks[0]["pending_steps"] * self.env.world_size
                print(f"{path} was written by {len(ranks)} ranks, this run has {self.env.world_size}: "
                      f"weights and optimizer resharded; the data stream restarts (seed {self.loader_seed})")
        self.step = checkpoint["step"]
        self.elapsed_before = checkpoint["elapsed_s"]
        torch.set_rng_state(checkpoint["rng"]["torch"])
        random.setstate(checkpoint["rng"]["python"])

    def _load_checkpoint(self) -> None:
        if self.fsdp:
            self._load_sharded_checkpoint()
            return
        # From an object store through a local copy (deleted once loaded): torch.load then reads the file
        # as it reads a local checkpoint, without holding its bytes in memory beside the tensors.
        with storage.local_copy(self.checkpoint_path) as path:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint["model_args"] != asdict(self.args):
            raise ValueError(
                f"{self.checkpoint_path} holds a different model ({checkpoint['model_args']}) than the "
                f"config asks for ({asdict(self.args)}); use another out_dir or resume=False"
            )
        if len(checkpoint["ranks"]) != self.env.world_size:
            raise ValueError(
                f"{self.checkpoint_path} was written by {len(checkpoint['ranks'])} ranks, this run has "
                f"{self.env.world_size}: the data split would differ"
            )
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        # The saved param groups carry the implementation flags of the run that wrote them (checkpoints from
        # before the fused CPU optimizer say fused=None) and loading would adopt them: keep this run's.
        for group in self.optimizer.param_groups:
            group.update(fused=True, foreach=None)
        mine = checkpoint["ranks"][self.env.rank]
        self.loader.load_state_dict(mine["loader"])
        self.source_tokens = Counter(mine["source_tokens"])
        self.pending_loss, self.pending_steps = mine["pending_loss"], mine["pending_steps"]
        self.step = checkpoint["step"]
        self.elapsed_before = checkpoint["elapsed_s"]
        torch.set_rng_state(checkpoint["rng"]["torch"])
        if torch.cuda.is_available() and checkpoint["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])
        random.setstate(checkpoint["rng"]["python"])

    def _save_checkpoint(self, elapsed: float) -> None:
        mine = {
            "loader": self.loader.state_dict(),
            "source_tokens": dict(self.source_tokens),
            "pending_loss": self.pending_loss,
            "pending_steps": self.pending_steps,
        }
        ranks = [mine]
        if self.env.world_size > 1:
            ranks = [None] * self.env.world_size
            dist.all_gather_object(ranks, mine)
        if self.fsdp:
            trainer_state = {
                "step": self.step,
                "elapsed_s": elapsed,
                "ranks": ranks,
                "loader_seed": self.loader_seed,
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
                "config": asdict(self.cfg),
                "model_args": asdict(self.args),
                "manifest": _whole(self.manifest_path),
                "tokenizer": self.tokenizer,
            }
            save_sharded(self.out, self.step, self.model, self.optimizer,
                         trainer_state if self.is_main else None)
            if self.is_main:
                # A fresh run over a DDP one: its older checkpoint.pt would be what generate reads.
                storage.remove(self.checkpoint_path)
                if self.remote:
                    self._upload_metrics()  # as below: the lines up to the checkpoint's step, with it
            return
        if self.is_main:
            checkpoint = {
                "step": self.step,
                "elapsed_s": elapsed,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "ranks": ranks,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    "python": random.getstate(),
                },
                "config": asdict(self.cfg),
                "model_args": asdict(self.args),
                "manifest": _whole(self.manifest_path),
                "tokenizer": self.tokenizer,
            }
            self._write_checkpoint(checkpoint)
            # A fresh run over an FSDP one: its older sharded checkpoint would be what a resume finds.
            storage.remove(storage.join(self.out, SHARDED_CHECKPOINT_NAME))
            if self.remote:
                # The metrics object is rewritten at every checkpoint (and every `_METRICS_UPLOAD_S`):
                # the lines up to the checkpoint's step are on the store whenever the checkpoint is.
                self._upload_metrics()
        if self.env.world_size > 1:
            dist.barrier()  # nobody races ahead and dies before the checkpoint is on disk

    def _write_checkpoint(self, checkpoint: dict) -> None:
        """Complete or absent: readers see the previous checkpoint or this one, never half of one."""
        if not self.remote:
            temporary = self.checkpoint_path + ".tmp"
            with open(temporary, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.checkpoint_path)  # atomic: readers see the old or the new file
            return
        # An object store: serialised whole into a local temporary file first (in $TMPDIR, which needs
        # room for one checkpoint), then one upload, which the store shows only once complete. Not
        # `torch.save` straight into an upload stream: an error mid-save would still close the stream,
        # completing the upload with half a checkpoint over the good one.
        fd, temporary = tempfile.mkstemp(prefix="llamapipe-checkpoint-", suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
            storage.upload(temporary, self.checkpoint_path)
        finally:
            os.remove(temporary)

    def _restart_metrics(self) -> None:
        """Keep only the metrics lines up to the checkpoint's step: lines logged after it (by a run that
        died before its next checkpoint) will be logged again."""
        kept = []
        if self.step > 0 and storage.is_file(self.metrics_path):
            for line in storage.read_text(self.metrics_path).splitlines():
                if line.strip() and json.loads(line)["step"] <= self.step:
                    kept.append(json.loads(line))
        self.history = kept
        if self.remote:
            if kept:
                self._upload_metrics()
            else:  # a fresh start: no lines yet, and no object (rather than an empty one)
                storage.remove(self.metrics_path)
            return
        temporary = self.metrics_path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(temporary, self.metrics_path)

    def _log_metrics(self, record: dict) -> None:
        """One metrics line, by the main rank. A local file is appended to at every logged step.

        An object store has no append: `self.history` holds every line of the run (from its first step:
        the lines before a resume were read back), and the whole object is rewritten from it, in one
        upload, at every checkpoint (a call always ends with one), at every evaluation, and otherwise at
        a logged step `_METRICS_UPLOAD_S` seconds or more after the previous rewrite. A reader (a
        dashboard, `llamapipe report` on a copy) sees a complete metrics.jsonl, never a torn line, that
        lags the run by at most that long (plus one logging interval) and always holds every line up to
        the checkpoint beside it; a crash loses only lines after that checkpoint, which a resume logs
        again."""
        if not self.remote:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            return
        if "source_loss" in record or time.monotonic() - self._metrics_uploaded >= _METRICS_UPLOAD_S:
            self._upload_metrics()

    def _upload_metrics(self) -> None:
        storage.write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in self.history))
        self._metrics_uploaded = time.monotonic()

    # ------------------------------------------------------------------ metrics

    def _global_sum(self, values: list[float]) -> list[float]:
        if self.env.world_size == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.env.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    @torch.no_grad()
    def _source_losses(self, model: Transformer) -> dict[str, float]:
        """Loss per source on fixed batches of its held-out documents (never trained on), the same batches
        at every evaluation so the figures compare across steps. A source too small to have a held-out
        document is left out and named once."""
        if self._eval_batches is None:
            self._eval_batches = {}
            for name in self.sources:
                loader = MixtureLoader(
                    self.manifest_path, self.cfg.seq_len, self.cfg.batch_size, seed=self.cfg.seed,
                    sources=[name], validate=False, holdout_fraction=self.cfg.holdout_fraction,
                    split="heldout",
                )
                try:
                    self._eval_batches[name] = list(itertools.islice(loader, self.cfg.eval_batches))
                except ValueError:  # no held-out document in this source
                    self.eval_missing.append(name)
            if self.eval_missing and self.progress:
                print(f"no held-out documents (holdout_fraction {self.cfg.holdout_fraction}) in: "
                      f"{', '.join(self.eval_missing)}; their loss is not evaluated")
        model.eval()
        losses = {}
        for name, batches in self._eval_batches.items():
            total = 0.0
            for batch in batches:
                with self.autocast():
                    total += model(batch.x.to(self.env.device), batch.y.to(self.env.device))[1].item()
            losses[name] = total / len(batches)
        model.train()
        return losses

    # ------------------------------------------------------------------ the loop

    def run(self, resume: bool, stop_at: int | None) -> dict:
        cfg, env = self.cfg, self.env
        if resume and self._has_checkpoint():
            self._load_checkpoint()
        resumed_from = self.step or None
        if self.is_main:
            storage.makedirs(self.out)  # a local folder; nothing to make under an object-store prefix
            self._restart_metrics()
        model = self.model
        if env.world_size > 1 and not self.fsdp:
            device_ids = [env.device.index] if env.device.type == "cuda" else None
            model = DistributedDataParallel(self.model, device_ids=device_ids)
        # After DDP, so that DDP's bucketing and compiled graphs cooperate (DDPOptimizer); FSDP compiled
        # each block before sharding it.
        if cfg.compile and not self.fsdp:
            model = torch.compile(model, backend=cfg.compile_backend)
        last_step = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
        bar = None
        if self.progress:
            # On a terminal: steps, time left and the latest loss and tokens/s on one line. Elsewhere
            # (a log file, CI) tqdm disables itself (disable=None) and the metrics lines tell the same.
            bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True,
                       disable=None)
        say = bar.write if bar is not None else print
        if self.progress:
            resuming = f", resuming at step {self.step}" if self.step else ""
            say(f"{cfg.model}: {self.model.num_params():,} parameters, {self.tokens_per_step:,} tokens/step "
                f"({self.accum} micro-step(s)), {env.world_size} rank(s) on {env.device}{resuming}")

        run_start = time.perf_counter()
        first_step = self.step
        log_time, log_step = run_start, self.step
        batches = iter(self.loader)
        model.train()
        for step in range(self.step, last_step):
            lr = lr_at(step, cfg)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            step_loss = torch.zeros((), device=env.device)
            for micro in range(self.accum):
                batch = next(batches)
                x, y = batch.x.to(env.device, non_blocking=True), batch.y.to(env.device, non_blocking=True)
                # Gradients are all-reduced once per optimizer step, not after every micro-batch.
                last_micro = micro == self.accum - 1
                # (FSDP reduce-scatters every micro-step: see the module docstring.)
                sync = nullcontext() if env.world_size == 1 or last_micro or self.fsdp else model.no_sync()
                with sync:
                    with self.autocast():
                        _, loss = model(x, y)
                    (loss / self.accum).backward()
                step_loss += loss.detach() / self.accum
                for name in batch.sources:
                    self.source_tokens[name] += cfg.seq_len
            grad_norm = torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
            )
            if hasattr(grad_norm, "full_tensor"):  # FSDP: a DTensor, the norm over every rank's shards
                grad_norm = grad_norm.full_tensor()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step = step + 1
            self.pending_loss += step_loss.item()
            self.pending_steps += 1

            evaluate = cfg.eval_every > 0 and (self.step % cfg.eval_every == 0 or self.step == cfg.steps)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps or evaluate:
                now = time.perf_counter()
                sums = self._global_sum(
                    [self.pending_loss, float(self.pending_steps)]
                    + [float(self.source_tokens[name]) for name in self.sources]
                )
                seconds = max(now - log_time, 1e-9)
                record = {
                    "step": self.step,
                    "loss": sums[0] / sums[1],
                    "lr": lr,
                    "tokens": self.step * self.tokens_per_step,
                    "tokens_per_s": (self.step - log_step) * self.tokens_per_step / seconds,
                    "elapsed_s": self.elapsed_before + now - run_start,
                    "grad_norm": grad_norm.item(),
                    "source_tokens": {name: int(v) for name, v in zip(self.sources, sums[2:], strict=True)},
                }
                if self.peak_flops:
                    record["mfu"] = (self.step - log_step) * self.flops_per_step / seconds / self.peak_flops
                if evaluate and (self.is_main or self.fsdp):  # FSDP's forward needs every rank
                    source_loss = self._source_losses(self.model)
                    if self.is_main:
                        record["source_loss"] = source_loss
                self.pending_loss, self.pending_steps = 0.0, 0
                log_time, log_step = time.perf_counter(), self.step
                self.history.append(record)
                if self.is_main:
                    self._log_metrics(record)
                if self.progress:
                    say(f"step {self.step:>6}/{cfg.steps} | loss {record['loss']:.4f} | lr {lr:.2e} | "
                        f"{record['tokens_per_s']:,.0f} tok/s | {record['elapsed_s']:.1f}s")
                if bar is not None:
                    bar.set_postfix_str(f"loss {record['loss']:.3f}, {record['tokens_per_s']:,.0f} tok/s",
                                        refresh=False)
            if bar is not None:
                bar.update(1)
            if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or self.step == last_step:
                self._save_checkpoint(self.elapsed_before + time.perf_counter() - run_start)
        batches.close()  # stops the dataloader workers, if any
        if bar is not None:
            bar.close()

        run_time = time.perf_counter() - run_start
        losses = [r["loss"] for r in self.history]
        return {
            "params": self.model.num_params(),
            "step": self.step,
            "steps": cfg.steps,
            "tokens": self.step * self.tokens_per_step,
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "tokens_per_s": (self.step - first_step) * self.tokens_per_step / max(run_time, 1e-9),
            "elapsed_s": self.elapsed_before + run_time,
            "resumed_from": resumed_from,
            "accum_steps": self.accum,
            "world_size": env.world_size,
            "device": str(env.device),
            "out_dir": self.out if self.remote else str(Path(self.out)),
        }
