"""Training throughput and MFU of a 1B-class LLaMA with FSDP on the GPUs of this machine: the figure to
take in minutes when a GPU machine is lent.

    python benchmarks/train_gpu.py                    # every GPU here, 1.3B model, 2048 tokens, bf16
    python benchmarks/train_gpu.py --gpus 8 --batch-size 8 --steps 40
    python benchmarks/train_gpu.py --cpu-demo         # no GPU: a tiny model on 2 CPU ranks (gloo), to see
                                                      # that the script and the FSDP path work

The model is TinyLlama-1.1B's shape in Meta's layout (dim 2048, 22 layers, 32 heads, SwiGLU hidden 5632;
multi-head attention, so 1.26B parameters with the 32,000-piece vocabulary). The script writes synthetic
token shards (random documents: throughput does not depend on the text), then launches itself under
`torch.distributed.run` with one rank per GPU, each running the bundled trainer (`llamapipe.model.train`)
with `parallelism: fsdp`, `dtype: bfloat16` (bf16 compute, float32 master weights and reduction) and
activation checkpointing, as `llamapipe train` would. It prints tokens/s (all GPUs and per GPU) and MFU
from the trainer's metrics, after `--warmup` steps (allocator and NCCL settling, first-step compilation).
MFU is model FLOPs (PaLM's count, no recomputation) over the GPUs' dense bf16 peak, known for the GPUs in
`llamapipe.model.plan.GPU_PEAK_FLOPS` (else pass --peak-tflops). The LLaMA paper's 65B run implies ~49%.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from llamapipe.model.train import TrainConfig, train

MODEL_1B = {"model": "7B", "dim": 2048, "n_layers": 22, "n_heads": 32}  # TinyLlama-1.1B's shape
TINY = {"model": "tiny", "n_layers": 2}


def _config(args: argparse.Namespace) -> TrainConfig:
    shape = TINY if args.cpu_demo else MODEL_1B
    return TrainConfig(
        **shape, seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps, warmup_steps=1,
        log_every=1, checkpoint_every=0, holdout_fraction=0.0,
        dtype="float32" if args.cpu_demo else "bfloat16", activation_checkpointing=not args.no_checkpointing,
        parallelism="fsdp", peak_tflops=args.peak_tflops, compile=args.compile,
        threads=1 if args.cpu_demo else 0,
    )


def _rank_main(manifest: str, out: str, cfg: TrainConfig) -> None:
    """One rank (under torchrun): train, then rank 0 writes the summary beside the metrics."""
    summary = train(manifest, out, cfg, resume=False, progress=False)
    if int(os.environ.get("RANK", "0")) == 0:
        Path(out, "summary.json").write_text(json.dumps(summary))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=0, help="ranks (default: every GPU)")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=4, help="sequences per GPU per step")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the figures")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="per GPU; 0: known from its name")
    parser.add_argument("--no-checkpointing", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile each block (inductor)")
    parser.add_argument("--cpu-demo", action="store_true", help="no GPU: a tiny model on 2 CPU ranks")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--rank-run", nargs=3, metavar=("MANIFEST", "OUT", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.rank_run:  # a rank, launched by the branch below
        manifest, out, cfg = args.rank_run
        _rank_main(manifest, out, TrainConfig(**json.loads(cfg)))
        return 0

    if args.cpu_demo:
        args.seq_len, args.batch_size = min(args.seq_len, 64), min(args.batch_size, 4)
        args.steps, args.warmup = min(args.steps, 8), min(args.warmup, 3)
        ranks = 2
    else:
        if not torch.cuda.is_available():
            print("train_gpu.py: no CUDA GPU on this machine (torch.cuda.is_available() is False); nothing "
                  "to measure. --cpu-demo runs a tiny model on 2 CPU ranks to check the script works.",
                  file=sys.stderr)
            return 2
        ranks = args.gpus or torch.cuda.device_count()
    if args.warmup >= args.steps:
        parser.error("--warmup must be below --steps")
    cfg = _config(args)

    sys.path.insert(0, str(Path(__file__).parent))
    from train import write_synthetic_shards  # benchmarks/train.py

    with tempfile.TemporaryDirectory(prefix="llamapipe-train-gpu-") as tmp:
        tokens = ranks * cfg.batch_size * (cfg.seq_len + 1) * cfg.steps * 2  # no source wraps around
        manifest = write_synthetic_shards(Path(tmp) / "data", 32000 if not args.cpu_demo else 512,
                                          max(tokens // 2, 200_000))
        out = Path(tmp) / "train"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={ranks}", str(Path(__file__).resolve()), "--rank-run", str(manifest),
                   str(out), json.dumps(asdict(cfg))]
        threads = os.environ.get("OMP_NUM_THREADS", "1" if args.cpu_demo else "8")
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        done = subprocess.run(command, env=env)
        if done.returncode:
            print(f"train_gpu.py: the ranks failed (exit {done.returncode})", file=sys.stderr)
            return 1
        metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        summary = json.loads((out / "summary.json").read_text())

    timed = [m for m in metrics if m["step"] > args.warmup]
    step_tokens = cfg.batch_size * cfg.seq_len * ranks  # one micro-step per step
    seconds = sum(step_tokens / m["tokens_per_s"] for m in timed)  # logged every step: that step's time
    tokens_per_s = len(timed) * step_tokens / seconds
    mfus = [m["mfu"] for m in timed if "mfu" in m]
    device = "CPU (gloo)" if args.cpu_demo else torch.cuda.get_device_name(0)
    figures = {
        "device": device, "ranks": ranks, "params": summary["params"], "seq_len": cfg.seq_len,
        "batch_size_per_rank": cfg.batch_size, "activation_checkpointing": cfg.activation_checkpointing,
        "dtype": cfg.dtype, "steps_timed": len(timed), "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_rank": tokens_per_s / ranks, "mfu": sum(mfus) / len(mfus) if mfus else None,
        "last_loss": summary["last_loss"],
    }
    print(f"{summary['params']:,} parameters, FSDP over {ranks} x {device}, "
          f"{cfg.batch_size} x {cfg.seq_len} tokens per rank per step, {cfg.dtype}, checkpointing "
          f"{'on' if cfg.activation_checkpointing else 'off'}")
    print(f"  {tokens_per_s:,.0f} tokens/s ({tokens_per_s / ranks:,.0f} per rank) over steps "
          f"{args.warmup + 1}-{cfg.steps}")
    print(f"  MFU {figures['mfu']:.1%}" if figures["mfu"] is not None else
          "  MFU: unknown peak for this device (pass --peak-tflops)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
