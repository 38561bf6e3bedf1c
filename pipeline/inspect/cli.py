"""`llamapipe inspect [ACTION] PATH [ARG]`: the argument parsing and printing of the inspect command.

    llamapipe inspect PATH                   summary (also: llamapipe inspect summary PATH)
    llamapipe inspect PATH --decode N        summary, then N decoded documents (as `head PATH N`)
    llamapipe inspect head PATH [N]          the first N documents, decoded (default 3)
    llamapipe inspect show PATH DOC_ID       one document: shard, ids, pieces, text
    llamapipe inspect verify PATH            checksums, schema, ids < vocab, manifest agreement; exit 1 on any
    llamapipe inspect stats PATH             document length distribution per source
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ACTIONS = ("summary", "head", "show", "verify", "stats")
HEAD_DEFAULT = 3

DESCRIPTION = """\
What is in token shards (a shard file, a source folder or OUT/shards), local or on an object
store (s3://..., gs://...). The manifest and the tokenizer are found next to the shards.

actions:
  summary              per source: shards, documents, tokens, stored vs sampled vs target share, epochs
  head PATH [N]        the first N documents, decoded (default 3)
  show PATH DOC_ID     one document: its shard, token ids, pieces and text
  verify               checksums, schema, footers, token ids < vocab, BOS, manifest agreement;
                       exit code 1 on any mismatch
  stats                document length distribution per source (percentiles, histogram)
"""

EPILOG = """\
examples:
  llamapipe inspect out/demo/shards
  llamapipe inspect head out/demo/shards/c4 2
  llamapipe inspect show out/demo/shards c4:c4-train.00000-of-00002.json.gz:10
  llamapipe inspect verify out/demo/shards
  llamapipe inspect stats out/demo/shards --json
"""


def add_inspect_parser(subparsers) -> argparse.ArgumentParser:
    """Register `inspect` on the main CLI's subparsers; returns its parser (callers may extend it)."""
    parser = subparsers.add_parser("inspect", help="summarise, show, verify token shards (a file or folder)",
                                   description=DESCRIPTION, epilog=EPILOG,
                                   usage="llamapipe inspect [ACTION] PATH [ARG] [--decode N] "
                                         "[--tokenizer FILE] [--max-chars N] [--json]",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("words", nargs="+", metavar="[ACTION] PATH [ARG]",
                        help=f"ACTION is one of {', '.join(ACTIONS)} (default summary)")
    parser.add_argument("--decode", type=int, default=0, metavar="N",
                        help="with summary: also print N decoded documents")
    parser.add_argument("--tokenizer", metavar="FILE", help="tokenizer.model (default: the manifest's)")
    parser.add_argument("--max-chars", type=int, default=2000, metavar="N",
                        help="head: print at most N characters per document (0: all)")
    parser.add_argument("--json", action="store_true", help="summary, stats, verify: print JSON")
    return parser


def parse_words(words: list[str]) -> tuple[str, str, list[str]]:
    """(action, path, extra arguments) from `[ACTION] PATH [ARG]`."""
    if len(words) == 1:
        return "summary", words[0], []
    if words[0] not in ACTIONS:
        raise ValueError(f"unknown action {words[0]!r}: use one of {', '.join(ACTIONS)}, or only a PATH")
    action, path, extra = words[0], words[1], words[2:]
    allowed = {"head": 1, "show": 1}.get(action, 0)
    if len(extra) > allowed or (action == "show" and not extra):
        usage = {"head": "head PATH [N]", "show": "show PATH DOC_ID"}.get(action, f"{action} PATH")
        raise ValueError(f"usage: llamapipe inspect {usage}")
    return action, path, extra


def run_inspect(args: argparse.Namespace, out=None) -> int:
    try:
        return _run(args, out or sys.stdout)
    except BrokenPipeError:  # `llamapipe inspect ... | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace, out) -> int:
    from llamapipe.pipeline.inspect import shards as shards

    try:
        action, path, extra = parse_words(args.words)
    except ValueError as error:
        print(f"llamapipe inspect: error: {error}", file=sys.stderr)
        return 2
    path = shards.shards_folder(path)
    if action == "summary":
        summary = shards.summarize(path)
        print(json.dumps(summary, indent=2) if args.json else shards.format_summary(summary), file=out)
        _print_documents(shards.decode_documents(path, args.decode, args.tokenizer), args.max_chars, out)
        return 0
    if action == "head":
        try:
            count = int(extra[0]) if extra else HEAD_DEFAULT
        except ValueError:
            print(f"llamapipe inspect: error: head N: {extra[0]!r} is not a number", file=sys.stderr)
            return 2
        _print_documents(shards.decode_documents(path, count, args.tokenizer), args.max_chars, out)
        return 0
    if action == "show":
        try:
            print(shards.show_document(path, extra[0], args.tokenizer), file=out)
        except KeyError as error:
            print(f"llamapipe inspect: {error.args[0]}", file=sys.stderr)
            return 1
        return 0
    if action == "stats":
        stats = shards.length_stats(path)
        print(json.dumps(stats, indent=2) if args.json else shards.format_stats(stats), file=out)
        return 0
    from llamapipe.pipeline.inspect.verify import verify

    report = verify(path, args.tokenizer)
    if args.json:
        print(json.dumps({"ok": report.ok, "problems": report.problems, "notes": report.notes,
                          "shards": report.shards, "documents": report.documents, "tokens": report.tokens},
                         indent=2), file=out)
    else:
        print(report.format(), file=out)
    return 0 if report.ok else 1


def _print_documents(documents, max_chars: int, out) -> None:
    for doc_id, source, num_tokens, text in documents:
        shown = text if max_chars <= 0 or len(text) <= max_chars else (
            text[:max_chars] + f"\n[... {len(text) - max_chars} more characters]")
        print(f"\n=== {doc_id} ({source}, {num_tokens} tokens) ===\n{shown}", file=out)
