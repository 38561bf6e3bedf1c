"""`llamapipe export FORMAT SHARDS DIR`: the argument parsing and printing of the export command.

    llamapipe export megatron SHARDS DIR     <source>.bin/.idx (Megatron IndexedDataset), blend.txt
    llamapipe export numpy SHARDS DIR        <source>.bin (flat uint16, nanoGPT), tokens.json
    llamapipe export hf SHARDS [DIR]         README.md, a Hugging Face dataset card (default: in SHARDS)
"""

from __future__ import annotations

import argparse
import sys
import time

from llamapipe.pipeline.plumbing.typed_yaml import ConfigError

FORMATS = ("megatron", "numpy", "hf")

DESCRIPTION = """\
A run's token shards (SHARDS: OUT/shards or OUT) for other trainers, the manifest's mixture kept.
SHARDS and DIR may be local or on an object store (s3://..., gs://...).

formats:
  megatron   per source DIR/<source>.bin + .idx in Megatron-Core's IndexedDataset format (uint16 ids when
             the vocabulary has fewer than 65,500, else int32; one sequence per document), DIR/blend.txt
             (weight then prefix per source, the weight being the manifest's share: Megatron's --data-path)
             and DIR/tokenizer.model
  numpy      per source DIR/<source>.bin, the ids as flat uint16 (nanoGPT's np.memmap), DIR/tokens.json
             (documents, tokens, share and epochs per source) and DIR/tokenizer.model
  hf         README.md, a Hugging Face dataset card (configs for the viewer and load_dataset, the
             mixture, the recipe, the ledger's totals), in SHARDS unless DIR is given
"""

EPILOG = """\
examples:
  llamapipe export megatron out/demo/shards out/demo/megatron
  llamapipe export numpy out/demo/shards out/demo/nanogpt
  llamapipe export hf out/demo/shards
"""


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("export", help="write the shards for Megatron-LM, nanoGPT or Hugging Face",
                                   description=DESCRIPTION, epilog=EPILOG,
                                   usage="llamapipe export {megatron,numpy,hf} SHARDS DIR",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", metavar="FORMAT", help=f"one of {', '.join(FORMATS)}")
    parser.add_argument("shards", metavar="SHARDS", help="the shards folder of a run (OUT/shards) or OUT")
    parser.add_argument("dir", metavar="DIR", nargs="?", help="the folder to write (optional for hf)")
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Before any reading: a known format, a DIR, and a DIR that can be written to (a probe file)."""
    if args.format not in FORMATS:
        raise ConfigError(f"FORMAT {args.format!r}: unknown, use one of {', '.join(FORMATS)}")
    if args.dir is None and args.format != "hf":
        raise ConfigError(f"DIR: missing; usage: llamapipe export {args.format} SHARDS DIR")


def check_writable(directory: str) -> None:
    import os
    import uuid

    from llamapipe.pipeline.config import check_reachable, storage_errors_named
    from llamapipe.tokenizer.format import storage

    check_reachable(directory, key="DIR")
    probe = storage.join(directory, f".write-probe-{uuid.uuid4().hex}")
    try:
        with storage_errors_named("DIR", directory):
            storage.makedirs(directory)
            storage.write_bytes(probe, b"probe")
            storage.remove(probe)
    except OSError as exc:
        raise ConfigError(f"DIR {directory}: cannot write there ({exc.strerror or exc})") from None
    if not storage.is_remote(directory) and not os.access(directory, os.W_OK):
        raise ConfigError(f"DIR {directory}: cannot write there")


def run_export(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    check_arguments(args)
    from llamapipe.pipeline.config import check_reachable
    from llamapipe.pipeline.export.shards_in import copy_tokenizer, open_shards
    from llamapipe.tokenizer.format import storage

    check_reachable(args.shards, key="SHARDS")
    shards = open_shards(args.shards)
    directory = storage.absolute(args.dir) if args.dir else shards.folder
    check_writable(directory)
    started = time.perf_counter()
    if args.format == "hf":
        from llamapipe.pipeline.export.hf_card import export_hf

        result = export_hf(shards, directory)
        print(f"wrote {result['card']} (configs: {', '.join(result['configs'])})", file=out)
        return 0
    if args.format == "megatron":
        from llamapipe.pipeline.export.megatron import export_megatron

        result = export_megatron(shards, directory)
    else:
        from llamapipe.pipeline.export.numpy_files import export_numpy

        result = export_numpy(shards, directory)
    copied = copy_tokenizer(shards, directory)
    seconds = time.perf_counter() - started
    tokens = sum(s["tokens"] for s in result["sources"].values())
    print(f"wrote {len(result['sources'])} sources, {tokens:,} tokens as {result['dtype']} to {directory} "
          f"in {seconds:.1f} s; {', '.join(copied)} copied", file=out)
    for source, s in result["sources"].items():
        print(f"  {source:<14}{s['documents']:>10,} documents {s['tokens']:>14,} tokens  "
              f"share {s['share']:.4f}", file=out)
    if args.format == "megatron":
        print(f"blend (also in {storage.join(directory, 'blend.txt')}):", file=out)
        print("--data-path " + " ".join(result["blend"]), file=out)
    else:
        print(f"token counts and shares: {storage.join(directory, 'tokens.json')}", file=out)
    return 0
