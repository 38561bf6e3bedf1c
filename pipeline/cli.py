"""The `llamapipe` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings

EXAMPLES = """\
examples:
  llamapipe demo-data demo-data                 # write the demo corpus (seven real dump formats)
  llamapipe run configs/demo.yaml               # clean, dedup, tokenize -> OUT/shards + manifest
  llamapipe run configs/demo.yaml --runner dask --dask-address tcp://127.0.0.1:8786   # a dask scheduler
  llamapipe run configs/demo.yaml --runner dask # on a LocalCluster of 2 worker processes, closed after
  llamapipe train configs/demo.yaml             # train the configured LLaMA on OUT/shards
  llamapipe train configs/llama.yaml --plan     # parameters, memory and days, before allocating anything
  torchrun --standalone --nproc_per_node=8 -m llamapipe.pipeline.cli train configs/llama.yaml
  llamapipe generate out/demo/train --prompt "The history of"
  llamapipe export-hf out/demo/train out/demo/hf  # a LlamaForCausalLM folder for transformers
  llamapipe inspect out/demo/shards             # documents and tokens per source vs targets
  llamapipe inspect out/demo/shards/c4 --decode 3
  llamapipe inspect verify out/demo/shards      # checksums, schema, tokenizer, manifest; exit 1 on mismatch
  llamapipe inspect out/demo/rejects --reason not_reference_like   # sampled drops with their text
  llamapipe inspect out/demo --dups 5           # duplicate clusters of a run, side by side
  llamapipe report out/demo                     # rebuild out/demo/report.html: the run in tables and charts
  llamapipe export megatron out/demo/shards out/demo/megatron   # Megatron .bin/.idx + the --data-path blend
"""


MODEL_COMMANDS = ("train", "generate", "export-hf", "import-hf")


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
                          "Wikipedia XML.bz2, Gutenberg books, arXiv tarballs, Stack Exchange Posts.xml).",
                          epilog="example: llamapipe demo-data demo-data --seed 1")
    demo.add_argument("dir", help="folder to write (e.g. demo-data)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--scale", type=float, default=1.0, help="multiply document counts (benchmarks)")

    run = sub.add_parser("run", help="run the data pipeline of a config",
                         description="Read, clean, deduplicate and tokenize the config's sources into "
                         "OUT/shards with a manifest. Unknown --flags are passed to Beam as pipeline "
                         "options.", epilog="example: llamapipe run configs/demo.yaml --direct_num_workers=2")
    run.add_argument("config", help="YAML config (see configs/)")
    run.add_argument("--runner", help="Beam runner: direct, dask, dataflow, flink, spark or a class path")
    run.add_argument("--dask-address", "--dask_address", dest="dask_address", metavar="tcp://HOST:PORT",
                     help="with --runner dask (implied): the dask.distributed scheduler to run on; without "
                     "it, a LocalCluster of --direct_num_workers (default 2) processes runs the pipeline")
    run.add_argument("--verbose", action="store_true", help="show Beam's logs instead of OUT/beam.log")
    run.add_argument("--fresh", action="store_true",
                     help="run every stage again; by default a rerun of the same config into the same "
                     "folder resumes, skipping the stages (and sources' shards) an earlier attempt finished")

    train = sub.add_parser("train", help="train the config's LLaMA on the run's shards",
                           description="Train on OUT/shards/manifest.json, writing OUT/train/metrics.jsonl "
                           "and a checkpoint (resumed when present).",
                           epilog="example: llamapipe train configs/demo.yaml --steps 50")
    train.add_argument("config")
    train.add_argument("--steps", type=int, help="override train.steps")
    train.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    train.add_argument("--plan", action="store_true",
                       help="print parameters, memory per precision and the days the paper's speed implies; "
                       "allocates no weight and trains nothing")
    train.add_argument("--gpus", type=int, default=1, help="with --plan: data-parallel GPUs to plan for")
    train.add_argument("--parallelism", choices=["ddp", "fsdp"], help="override train.parallelism")
    train.add_argument("--gpu-memory", type=float, default=80.0,
                       help="with --plan: GB of one GPU, for the largest micro-batch that fits (default 80)")
    train.add_argument("--context", type=int, help="with --plan: inference context length (default seq_len)")

    generate = sub.add_parser("generate", help="print a sample from a checkpoint",
                              description="Continue a prompt with a trained (or imported) checkpoint, "
                              "using the tokenizer the shards were made with.",
                              epilog='example: llamapipe generate out/demo/train --prompt "The river"')
    generate.add_argument("checkpoint", help="checkpoint.pt, or the folder holding it (OUT/train)")
    generate.add_argument("--prompt", default="", help="text to continue (default: a document's start)")
    generate.add_argument("--max-new-tokens", type=int, default=100)
    generate.add_argument("--temperature", type=float, default=0.8, help="0: greedy")
    generate.add_argument("--top-k", type=int, default=200)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--tokenizer", help="tokenizer.model (default: the one recorded in the checkpoint)")

    export = sub.add_parser("export-hf", help="write a checkpoint as a Hugging Face LlamaForCausalLM folder",
                            description="config.json, safetensors (wq/wk permuted for HF's rotary layout) "
                            "and tokenizer files, loadable with transformers' AutoModelForCausalLM.",
                            epilog="example: llamapipe export-hf out/demo/train out/demo/hf")
    export.add_argument("checkpoint", help="checkpoint.pt, or the folder holding it")
    export.add_argument("dir", help="folder to write")
    export.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    export.add_argument("--tokenizer", help="tokenizer.model (default: the one recorded in the checkpoint)")

    imp = sub.add_parser("import-hf", help="read a Hugging Face LlamaForCausalLM folder into a checkpoint",
                         description="Write a weights-only checkpoint (Meta's names and rotary layout) that "
                         "generate and export-hf read.",
                         epilog="example: llamapipe import-hf out/demo/hf --out out/demo/imported.pt")
    imp.add_argument("dir")
    imp.add_argument("--out", help="checkpoint to write (default: DIR/checkpoint.pt)")

    report = sub.add_parser("report", help="rebuild OUT/report.html: the run in tables and charts",
                            description="Write OUT/report.html, one static page (no network needed to view "
                            "it): the funnel per source and stage, languages, document lengths before and "
                            "after cleaning, duplicate clusters, the token mixture against its target, "
                            "tokens per word, kept and rejected examples, and the training curves when "
                            "OUT/train/metrics.jsonl exists. `llamapipe run` writes it at its end and "
                            "`llamapipe train` refreshes it; this command rebuilds it from the run's files.",
                            epilog="example: llamapipe report out/demo && xdg-open out/demo/report.html")
    report.add_argument("dir", help="a run's output folder (the config's `output`)")

    status = sub.add_parser("status", help="where a run is: stages done, input files recorded, time left",
                            description="Where the run in OUT is, while it runs or after: who holds it, the "
                            "stages done, the input files whose per-file work is recorded (of those the "
                            "config lists), the documents read so far, the elapsed time and an estimate "
                            "of the per-file work left. Reads OUT only; safe while a run is going.",
                            epilog="example: llamapipe status out/demo --json")
    status.add_argument("dir", help="a run's output folder (the config's `output`)")
    status.add_argument("--json", action="store_true", help="print the status as JSON (files_total, "
                        "files_done, last_run.files_processed, last_run.files_reused, ...)")

    from llamapipe.pipeline.inspect.cli import add_inspect_parser

    inspect = add_inspect_parser(sub)
    inspect.add_argument("--reason", help="on OUT/rejects: print the sampled drops with this reason")
    inspect.add_argument("--source", help="on OUT/rejects: only this source")
    inspect.add_argument("--show", type=int, default=3, metavar="N", help="on OUT/rejects: texts to print")
    inspect.add_argument("--dups", type=int, nargs="?", const=3, default=0, metavar="N",
                         help="`inspect OUT --dups [N]`: OUT is a run's output folder; print its duplicate-"
                         "cluster statistics and N example clusters (default 3), each duplicate beside "
                         "the copy that was kept")

    from llamapipe.pipeline.export.cli import add_export_parser

    add_export_parser(sub)

    ablate = sub.add_parser("ablate", help="train the same model on each pipeline variant, score each on one "
                            "held-out set", description="Run the pipeline with each variant of the config "
                            "(raw: readers and extraction only; full; no_<stage> for each stage that is on), "
                            "train the config's model on each for the same tokens and seeds with one "
                            "tokenizer, and write DIR/ablation.json and DIR/report.html.",
                            epilog="example: llamapipe ablate configs/demo.yaml --out out/ablate "
                            "--variants raw,full,no_dedup --seeds 2")
    ablate.add_argument("config")
    ablate.add_argument("--out", required=True, help="folder of the variants' runs and the results")
    ablate.add_argument("--variants", help="comma-separated (default: raw, full and every no_<stage>)")
    ablate.add_argument("--seeds", type=int, default=2, help="training seeds per variant (>= 2)")
    ablate.add_argument("--tokens", type=int, help="training tokens per run (default 204,800: demo scale)")
    ablate.add_argument("--eval", dest="eval_file", metavar="FILE",
                        help="evaluation texts (.jsonl `text` field, else lines), not held-out documents")
    ablate.add_argument("--eval-sources", default="wikipedia,books,arxiv",
                        help="sources whose held-out documents (of the full run) are the evaluation set")
    ablate.add_argument("--runner", help="Beam runner of the pipeline runs (as `run --runner`)")
    return parser


def main(argv: list[str] | None = None) -> int:
    _quiet()
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")

    from llamapipe.pipeline.plumbing.typed_yaml import ConfigError

    try:
        _check_remote_arguments(args)
        if args.command == "demo-data":
            from llamapipe.sources.demo import write_demo_corpus

            summary = write_demo_corpus(args.dir, seed=args.seed, scale=args.scale)
            print(f"wrote the demo corpus to {args.dir}: {summary['total']} documents")
            for name, count in summary["documents"].items():
                print(f"  {name:<14}{count}")
            return 0
        if args.command == "run":
            from llamapipe.pipeline.config import check_inputs, check_output, load_config
            from llamapipe.pipeline.output.layout import OutputLayout
            from llamapipe.pipeline.run import NothingKeptError, beam_options, run
            from llamapipe.tokenizer.format import storage

            config = load_config(args.config, check_files=False)
            if args.verbose:
                logging.getLogger().setLevel(logging.INFO)
            runner = args.runner or ("dask" if args.dask_address else None)
            if args.dask_address:
                extra = [*extra, f"--dask_client_address={args.dask_address}"]
            # Inputs and output are checked with the run's own storage settings (--s3_endpoint_url...)
            storage.use_options(beam_options(config, runner, extra))
            check_inputs(config)
            check_output(config, OutputLayout(config.output).work)
            try:
                run(config, runner=runner, extra_args=extra, quiet_beam=not args.verbose, fresh=args.fresh)
            except NothingKeptError as exc:  # ledger and report written; the inputs or filters to fix
                print(f"llamapipe: error: {exc}", file=sys.stderr)
                return 2
            return 0
        if args.command == "train":
            return _train(args)
        if args.command == "ablate":
            return _ablate(args)
        if args.command == "status":
            from llamapipe.pipeline.status import format_status, run_status

            status = run_status(args.dir)
            print(json.dumps(status, indent=2) if args.json else format_status(status))
            return 0
        if args.command == "report":
            from llamapipe.pipeline.report.build import write_report

            print(f"wrote {write_report(args.dir)}")
            return 0
        if args.command in ("generate", "export-hf", "import-hf"):
            return _weights_command(args)
        if args.command == "inspect" and args.dups:
            from llamapipe.pipeline.inspect.dups import format_dups

            if len(args.words) != 1:
                parser.error("usage: llamapipe inspect OUT --dups [N]")
            print(format_dups(args.words[0], args.dups))
            return 0
        if args.command == "inspect":
            from llamapipe.pipeline.inspect.rejects import format_rejects, is_rejects

            if len(args.words) == 1 and is_rejects(args.words[0]):
                print(format_rejects(args.words[0], args.reason, args.source, args.show))
                return 0
            from llamapipe.pipeline.inspect.cli import run_inspect

            return run_inspect(args)
        if args.command == "export":
            from llamapipe.pipeline.export.cli import run_export

            return run_export(args)
    except ConfigError as exc:
        print(f"llamapipe: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        print(f"llamapipe: error: `llamapipe {args.command}` needs torch, which the pipeline alone does not: "
              "pip install 'llamapipe[train]'", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"llamapipe: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # bad settings found by the model code (batch_tokens, an unsupported model...)
        if args.command not in MODEL_COMMANDS:
            raise
        print(f"llamapipe: error: {exc}", file=sys.stderr)
        return 2
    return 1


def _ablate(args) -> int:
    from llamapipe.pipeline.ablate.report import console_lines
    from llamapipe.pipeline.ablate.runner import DEFAULT_TOKENS, run_ablation
    from llamapipe.pipeline.config import load_config

    config = load_config(args.config)
    names = [n.strip() for n in args.variants.split(",") if n.strip()] if args.variants else None
    sources = tuple(n.strip() for n in args.eval_sources.split(",") if n.strip())
    ablation = run_ablation(config, args.out, names, seeds=args.seeds, tokens=args.tokens or DEFAULT_TOKENS,
                            eval_file=args.eval_file, eval_sources=sources, runner=args.runner)
    for line in console_lines(ablation):
        print(line)
    print(f"wrote {os.path.join(args.out, 'ablation.json')} and {os.path.join(args.out, 'report.html')}")
    return 0


def _check_remote_arguments(args) -> None:
    """An s3:// or gs:// folder given to `report` or `inspect` answers one bounded request first, so
    that a wrong bucket, endpoint or credential is one clear error at once (exit 2), not minutes of
    Beam's retries and a traceback."""
    if args.command not in ("report", "inspect", "status"):
        return
    from llamapipe.pipeline.config import check_reachable

    for path in [args.dir] if args.command in ("report", "status") else args.words:
        check_reachable(path, key=args.command)


def _train(args) -> int:
    import dataclasses
    from contextlib import nullcontext

    from llamapipe.model.train import train
    from llamapipe.pipeline.config import check_reachable, load_config
    from llamapipe.pipeline.output.layout import OutputLayout
    from llamapipe.pipeline.plumbing.typed_yaml import ConfigError
    from llamapipe.pipeline.run_lock import RunLock
    from llamapipe.tokenizer.format import storage

    config = load_config(args.config, check_files=False)
    paths = OutputLayout(config.output)
    if not args.plan:
        check_reachable(config.output, key="output")
    cfg = config.train
    if args.steps is not None:
        cfg = dataclasses.replace(cfg, steps=args.steps)
    if args.parallelism is not None:
        cfg = dataclasses.replace(cfg, parallelism=args.parallelism)
    if args.plan:
        from llamapipe.model.plan import plan_text
        from llamapipe.tokenizer.format.manifest import read_manifest

        # The shards' vocabulary when they exist, else the one the config will train.
        exists = storage.is_file(paths.manifest)  # OUT may be local or on s3:// / gs://
        vocab = read_manifest(paths.manifest)["tokenizer"]["vocab_size"] if exists else None
        print(plan_text(cfg, vocab or config.tokenizer.vocab_size, gpus=args.gpus,
                        gpu_memory_gb=args.gpu_memory, context=args.context))
        return 0
    # Under torchrun, rank 0 holds OUT's lock for all ranks (a busy OUT is said before a missing manifest)
    with RunLock(config.output, "train", create=False) if int(os.environ.get("RANK", "0")) == 0 \
            else nullcontext():
        if not storage.is_file(paths.manifest):
            raise ConfigError(f"{paths.manifest}: no manifest; run `llamapipe run {args.config}` first")
        summary = train(paths.manifest, paths.train, cfg, resume=not args.fresh)
    if int(os.environ.get("RANK", "0")) != 0:  # rank 0 reports
        return 0
    print(f"trained {summary.get('steps', cfg.steps)} steps -> {paths.train}")
    for key in ("params", "first_loss", "last_loss", "tokens_per_s"):
        if key in summary:
            print(f"  {key}: {summary[key]}")
    from llamapipe.pipeline.report.build import refresh_report

    print(refresh_report(config.output))  # now with the training curves
    return 0


def _weights_command(args) -> int:
    if args.command == "generate":
        from llamapipe.model.generate import sample

        text = sample(args.checkpoint, args.prompt, max_new_tokens=args.max_new_tokens, seed=args.seed,
                      temperature=args.temperature, top_k=args.top_k, tokenizer=args.tokenizer)
        print(text)
        return 0
    if args.command == "export-hf":
        from llamapipe.model.hf import export_hf

        summary = export_hf(args.checkpoint, args.dir, dtype=args.dtype, tokenizer=args.tokenizer)
        print(f"wrote a LlamaForCausalLM folder ({summary['params']:,} parameters) to {summary['dir']}: "
              f"{', '.join(summary['files'])}; tokenizer: {summary['tokenizer']}")
        return 0
    from llamapipe.model.hf import import_hf

    summary = import_hf(args.dir, args.out)
    print(f"imported {summary['params']:,} parameters -> {summary['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
