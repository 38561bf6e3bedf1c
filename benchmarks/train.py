"""Training throughput on CPU: this trainer against transformers' `LlamaForCausalLM`, same config, batch,
data and optimizer hyper-parameters, in the same run.

    python benchmarks/train.py                          # small preset, 4 x 128 tokens, 40 steps, 1 thread
    python benchmarks/train.py --preset tiny --steps 60 --threads 0

Both sides build the same model config (`export-hf`'s config.json for the transformers side), read the
same synthetic token shards through `MixtureLoader` (so the loader's cost is on both), use the same
`torch.set_num_threads` and take the same optimizer steps: AdamW (0.9, 0.95, eps 1e-5, weight decay 0.1
on matrices), warmup then cosine, clipping at 1.0, mean next-token cross-entropy over float32 logits.

  - "ours" is the whole trainer (`llamapipe.model.train.train`: stopped after the warmup steps, then
    resumed and timed to the end, its start-up, checkpoint load, metrics and final checkpoint write
    included; the transformers side has none of these in its timing). Its model is `model/llama.py`
    (RoPE as one complex multiply, RMSNorm through the fused `F.rms_norm`, SDPA with `is_causal`), and
    its optimizer is the trainer's own choice, `torch.optim.AdamW(fused=True)`.
  - "transformers" is the same loop written around `LlamaForCausalLM` (SDPA attention) with
    `torch.optim.AdamW` at its defaults, as a transformers user would write it: on CPU torch then picks
    its per-parameter loop implementation (neither foreach nor fused).

The first `--warmup` steps of each are not timed (allocator and thread pools settling). Runs alternate
`--repeats` times and the best of each side is reported, since other processes on the machine add noise.
Prints tokens per wall second and per CPU second (this process's threads: steadier on a shared machine)
of each, and the ratios ours / transformers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from llamapipe.model.data import MixtureLoader
from llamapipe.model.hf import hf_config
from llamapipe.model.train import ADAM_EPS, TrainConfig, lr_at, param_groups, train
from llamapipe.model.train_config import build_model_args


def write_synthetic_shards(root: Path, vocab_size: int, tokens_per_source: int, seed: int = 0) -> Path:
    """Two sources of random documents (BOS then 200-1000 random ids) in the pipeline's shard format."""
    rng = np.random.default_rng(seed)
    tokenizer = root / "tokenizer" / "tokenizer.model"
    tokenizer.parent.mkdir(parents=True)
    tokenizer.write_bytes(b"synthetic: only its digest is checked")
    sources = {}
    for name, share in (("commoncrawl", 0.8), ("github", 0.2)):
        docs, total = [], 0
        while total < tokens_per_source:
            doc = [1] + rng.integers(3, vocab_size, int(rng.integers(200, 1000))).tolist()
            docs.append(doc)
            total += len(doc)
        path = root / "shards" / name / f"{name}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True)
        table = pa.table({"doc_id": [f"{name}:{i}" for i in range(len(docs))], "source": [name] * len(docs),
                          "tokens": pa.array(docs, type=pa.list_(pa.uint16())),
                          "num_tokens": [len(d) for d in docs]})
        pq.write_table(table, path, row_group_size=256)
        sources[name] = {"documents": len(docs), "tokens": total, "share": share, "epochs": 1.0,
                         "shards": [{"path": f"{name}/{path.name}", "tokens": total, "documents": len(docs),
                                     "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}]}
    manifest = {"schema_version": 1, "sources": sources,
                "tokenizer": {"path": "../tokenizer/tokenizer.model", "vocab_size": vocab_size, "bos_id": 1,
                              "eos_id": 2, "sha256": hashlib.sha256(tokenizer.read_bytes()).hexdigest()}}
    path = root / "shards" / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


class Clock:
    """Wall and CPU time (this process, all its threads) of a block. CPU time is the steadier figure on a
    shared machine: other processes slow the wall clock of both sides by different amounts from run to
    run, but hardly change the work each side does."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_ours(manifest: Path, out: Path, cfg: TrainConfig, warmup: int) -> tuple[float, float]:
    """(tokens per wall second, tokens per CPU second) of the trainer after `warmup` steps: it stops there
    (checkpoint), and the resumed run to the end is timed, its start-up and final checkpoint included."""
    train(str(manifest), str(out), cfg, resume=False, progress=False, stop_at=warmup)
    with Clock() as clock:
        train(str(manifest), str(out), cfg, resume=True, progress=False)
    tokens = (cfg.steps - warmup) * cfg.batch_size * cfg.seq_len * cfg.grad_accum_steps
    return tokens / clock.wall, tokens / clock.cpu


def optimizer_of_checkpoint(out: Path) -> str:
    """How the trainer's AdamW ran, as its checkpoint records it."""
    group = torch.load(out / "checkpoint.pt", weights_only=True)["optimizer"]["param_groups"][0]
    return f"AdamW(fused={group['fused']}, foreach={group['foreach']})"


def run_transformers(manifest: Path, cfg: TrainConfig, vocab_size: int, warmup: int) -> tuple[float, float]:
    from transformers import LlamaConfig, LlamaForCausalLM

    args = build_model_args(cfg, vocab_size)
    config = LlamaConfig(**{k: v for k, v in hf_config(args, 1, 2, "float32").items()
                            if k not in ("architectures", "model_type", "torch_dtype", "dtype")})
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa")
    model.train()
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                  betas=(cfg.beta1, cfg.beta2), eps=ADAM_EPS)
    batches = iter(MixtureLoader(manifest, cfg.seq_len, cfg.batch_size, seed=cfg.seed, validate=False,
                                 holdout_fraction=cfg.holdout_fraction))
    def step(step: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        for _ in range(cfg.grad_accum_steps):
            batch = next(batches)
            logits = model(input_ids=batch.x).logits.float()
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), batch.y.view(-1))
            (loss / cfg.grad_accum_steps).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for index in range(warmup):
        step(index)
    with Clock() as clock:
        for index in range(warmup, cfg.steps):
            step(index)
    tokens = (cfg.steps - warmup) * cfg.batch_size * cfg.seq_len * cfg.grad_accum_steps
    return tokens / clock.wall, tokens / clock.cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the steadiest comparison on a shared machine; "
                        "0: torch's default)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    options = parser.parse_args(argv)
    if options.threads:
        torch.set_num_threads(options.threads)
    cfg = TrainConfig(model=options.preset, seq_len=options.seq_len, batch_size=options.batch_size,
                      steps=options.steps, warmup_steps=options.warmup, log_every=options.steps,
                      checkpoint_every=0, threads=options.threads, lr=3e-4)
    with tempfile.TemporaryDirectory() as tmp:
        tokens = 4 * options.steps * options.batch_size * (options.seq_len + 1)
        manifest = write_synthetic_shards(Path(tmp), options.vocab_size, tokens)
        ours, theirs = [], []
        for repeat in range(options.repeats):
            ours.append(run_ours(manifest, Path(tmp) / f"ours-{repeat}", cfg, options.warmup))
            ours_optimizer = optimizer_of_checkpoint(Path(tmp) / f"ours-{repeat}")
            theirs.append(run_transformers(manifest, cfg, options.vocab_size, options.warmup))
            print(f"  repeat {repeat + 1}: ours {ours[-1][0]:,.0f} tokens/s ({ours[-1][1]:,.0f} per CPU-s), "
                  f"transformers {theirs[-1][0]:,.0f} tokens/s ({theirs[-1][1]:,.0f} per CPU-s)",
                  file=sys.stderr)
    import transformers

    best = {name: (max(r[0] for r in runs), max(r[1] for r in runs))
            for name, runs in (("ours", ours), ("transformers", theirs))}
    result = {
        "config": {k: v for k, v in asdict(cfg).items() if k in ("model", "seq_len", "batch_size", "steps")},
        "warmup_steps_untimed": options.warmup,
        "vocab_size": options.vocab_size,
        "threads": torch.get_num_threads(),
        "optimizer": {"ours": ours_optimizer, "transformers": "AdamW(fused=None, foreach=None)"},
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "ours_tokens_per_s": best["ours"][0],
        "transformers_tokens_per_s": best["transformers"][0],
        "ratio": best["ours"][0] / best["transformers"][0],
        "ours_tokens_per_cpu_s": best["ours"][1],
        "transformers_tokens_per_cpu_s": best["transformers"][1],
        "ratio_cpu": best["ours"][1] / best["transformers"][1],
        "runs": {"ours": ours, "transformers": theirs},
    }
    print(f"{cfg.model} preset, batch {cfg.batch_size} x {cfg.seq_len} tokens, {cfg.steps} steps "
          f"({options.warmup} untimed), {result['threads']} threads, best of {options.repeats}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"optimizer: ours {ours_optimizer} (the trainer's choice), transformers "
          f"AdamW(fused=None, foreach=None) (torch's default: a per-parameter loop on CPU)")
    print(f"{'':34}{'tokens/s':>10}{'tokens/CPU-s':>14}")
    labels = {"ours": "ours (llamapipe trainer)", "transformers": "transformers LlamaForCausalLM"}
    for name, label in labels.items():
        print(f"  {label:<32}{best[name][0]:>10,.0f}{best[name][1]:>14,.0f}")
    print(f"  ratio ours / transformers       {result['ratio']:>9.2f}x{result['ratio_cpu']:>13.2f}x")
    if options.json:
        Path(options.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
