"""The `llamapipe` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

EXAMPLES = """\
examples:
  llamapipe demo-data demo-data                 # write the demo corpus (seven real dump formats)
  llamapipe run configs/demo.yaml               # clean, dedup, tokenize -> OUT/shards + manifest
  llamapipe run configs/demo.yaml --runner dask --dask_address=tcp://127.0.0.1:8786
  llamapipe train configs/demo.yaml             # train the configured LLaMA on OUT/shards
  llamapipe inspect out/demo/shards             # documents and tokens per source vs targets
  llamapipe inspect out/demo/shards/c4 --decode 3
  llamapipe inspect verify out/demo/shards      # checksums, schema, tokenizer, manifest; exit 1 on mismatch
  llamapipe inspect out/demo/rejects --reason not_reference_like   # sampled drops with their text
  llamapipe inspect out/demo --dups 5           # duplicate clusters of a run, side by side
"""


def _quiet() -> None:
    # Beam warns about optional GCP clients on import; it is noise for local runs.
    logging.getLogger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llamapipe",
        description="LLaMA pretraining data: seven raw public dumps -> cleaned, deduplicated, tokenized, "
        "mixture-weighted shards -> a LLaMA training run.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo-data", help="write the demo corpus in the seven sources' real formats",
                          description="Write a seeded demo corpus (WARC, C4 json.gz, GitHub jsonl, "
                          "Wikipedia XML.bz2, Gutenberg books, arXiv tarballs, Stack Exchange Posts.xml).")
    demo.add_argument("dir", help="folder to write (e.g. demo-data)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--scale", type=float, default=1.0, help="multiply document counts (benchmarks)")

    run = sub.add_parser("run", help="run the data pipeline of a config",
                         description="Read, clean, deduplicate and tokenize the config's sources into "
                         "OUT/shards with a manifest. Unknown --flags are passed to Beam as pipeline "
                         "options.", epilog="example: llamapipe run configs/demo.yaml --direct_num_workers=2")
    run.add_argument("config", help="YAML config (see configs/)")
    run.add_argument("--runner", help="Beam runner: direct, dask, dataflow, flink, spark or a class path")
    run.add_argument("--verbose", action="store_true", help="show Beam's logs instead of OUT/beam.log")

    train = sub.add_parser("train", help="train the config's LLaMA on the run's shards",
                           description="Train on OUT/shards/manifest.json, writing OUT/train/metrics.jsonl "
                           "and a checkpoint (resumed when present).",
                           epilog="example: llamapipe train configs/demo.yaml --steps 50")
    train.add_argument("config")
    train.add_argument("--steps", type=int, help="override train.steps")
    train.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")

    from llamapipe.pipeline.inspect_cli import add_inspect_parser

    inspect = add_inspect_parser(sub)
    inspect.add_argument("--reason", help="on OUT/rejects: print the sampled drops with this reason")
    inspect.add_argument("--source", help="on OUT/rejects: only this source")
    inspect.add_argument("--show", type=int, default=3, metavar="N", help="on OUT/rejects: texts to print")
    inspect.add_argument("--dups", type=int, nargs="?", const=3, default=0, metavar="N",
                         help="`inspect OUT --dups [N]`: OUT is a run's output folder; print its duplicate-"
                         "cluster statistics and N example clusters (default 3), each duplicate beside "
                         "the copy that was kept")
    return parser


def main(argv: list[str] | None = None) -> int:
    _quiet()
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")

    from llamapipe.pipeline.typed_yaml import ConfigError

    try:
        if args.command == "demo-data":
            from llamapipe.pipeline.demo import write_demo_corpus

            summary = write_demo_corpus(args.dir, seed=args.seed, scale=args.scale)
            total = sum(v for v in summary.values() if isinstance(v, int))
            print(f"wrote the demo corpus to {args.dir}: {total} documents")
            for name, count in summary.items():
                print(f"  {name:<14}{count}")
            return 0
        if args.command == "run":
            from llamapipe.pipeline.config import load_config
            from llamapipe.pipeline.run import run

            config = load_config(args.config)
            if args.verbose:
                logging.getLogger().setLevel(logging.INFO)
            run(config, runner=args.runner, extra_args=extra, quiet_beam=not args.verbose)
            return 0
        if args.command == "train":
            return _train(args)
        if args.command == "inspect" and args.dups:
            from llamapipe.pipeline.inspect_dups import format_dups

            if len(args.words) != 1:
                parser.error("usage: llamapipe inspect OUT --dups [N]")
            print(format_dups(args.words[0], args.dups))
            return 0
        if args.command == "inspect":
            from llamapipe.pipeline.inspect_rejects import format_rejects, is_rejects

            if len(args.words) == 1 and is_rejects(args.words[0]):
                print(format_rejects(args.words[0], args.reason, args.source, args.show))
                return 0
            from llamapipe.pipeline.inspect_cli import run_inspect

            return run_inspect(args)
    except ConfigError as exc:
        print(f"llamapipe: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"llamapipe: error: {exc}", file=sys.stderr)
        return 2
    return 1


def _train(args) -> int:
    import dataclasses

    from llamapipe.model.train import train
    from llamapipe.pipeline.config import load_config
    from llamapipe.pipeline.run import output_paths
    from llamapipe.pipeline.typed_yaml import ConfigError

    config = load_config(args.config, check_files=False)
    paths = output_paths(config.output)
    if not os.path.exists(paths["manifest"]):
        raise ConfigError(f"{paths['manifest']}: no manifest; run `llamapipe run {args.config}` first")
    cfg = config.train
    if args.steps is not None:
        cfg = dataclasses.replace(cfg, steps=args.steps)
    summary = train(paths["manifest"], paths["train"], cfg, resume=not args.fresh)
    print(f"trained {summary.get('steps', cfg.steps)} steps -> {paths['train']}")
    for key in ("params", "first_loss", "last_loss", "tokens_per_s"):
        if key in summary:
            print(f"  {key}: {summary[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
