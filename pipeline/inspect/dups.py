"""`llamapipe inspect OUT --dups [N]`: the run's duplicate clusters, and N of them side by side.

Reads `OUT/ledger.json` ("dedup": the cluster statistics) and `OUT/dedup/examples.jsonl` (example
clusters with their texts, written by the pipeline). Each duplicate is printed next to the document
that survived, with their true Jaccard similarity on shingles, from a little before their first
difference; words that differ are marked «so». OUT may be local or on an object store (s3://, gs://).
"""

from __future__ import annotations

import difflib
import json
import shutil
import textwrap

from llamapipe.pipeline.output.layout import OutputLayout
from llamapipe.pipeline.stages.dedup.statistics import format_dedup_summary
from llamapipe.tokenizer.format import storage

MARK_OPEN, MARK_CLOSE = "«", "»"


def load_examples(out: str) -> list[dict]:
    path = OutputLayout(out).dedup_examples
    if not storage.is_file(path):
        raise FileNotFoundError(f"{path}: no duplicate examples (is {out!r} the output folder of a run?)")
    # "\n" only: texts written with ensure_ascii=False may hold U+2028, which splitlines() would cut at
    examples = [json.loads(line) for line in storage.read_text(path).split("\n") if line.strip()]
    # near-duplicate clusters (several distinct texts) first, bigger first
    return sorted(examples, key=lambda e: (-len(e["members"]), e["survivor"]))


def load_stats(out: str) -> dict | None:
    path = OutputLayout(out).ledger
    return storage.read_json(path).get("dedup") if storage.is_file(path) else None


def marked_words(left: str, right: str, context: int = 40) -> tuple[str, str]:
    """Both texts with the words that differ between them marked, from `context` words before the
    first difference (the words before it are the same on both sides)."""
    a, b = left.split(), right.split()
    out_a, out_b = [], []
    first = None
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out_a += a[i1:i2]
            out_b += b[j1:j2]
            continue
        if first is None:
            first = len(out_a)  # == len(out_b): everything before was equal
        if i2 > i1:
            out_a.append(MARK_OPEN + " ".join(a[i1:i2]) + MARK_CLOSE)
        if j2 > j1:
            out_b.append(MARK_OPEN + " ".join(b[j1:j2]) + MARK_CLOSE)
    start = max(0, (first or 0) - context)
    skipped = "… " if start else ""
    return skipped + " ".join(out_a[start:]), skipped + " ".join(out_b[start:])


def side_by_side(left: str, right: str, width: int, max_lines: int) -> list[str]:
    column = max(20, (width - 3) // 2)
    left_lines = textwrap.wrap(left, column) or [""]
    right_lines = textwrap.wrap(right, column) or [""]
    rows = max(len(left_lines), len(right_lines))
    lines = []
    for i in range(min(rows, max_lines)):
        a = left_lines[i] if i < len(left_lines) else ""
        b = right_lines[i] if i < len(right_lines) else ""
        lines.append(f"{a:<{column}} │ {b}")
    if rows > max_lines:
        lines.append(f"{'...':<{column}} │ ...")
    return lines


def _describe(member: dict) -> str:
    copies = f", +{member['exact_copies']} exact copies" if member["exact_copies"] else ""
    return f"{member['id']} ({member['source']}, {member['chars']} chars{copies})"


def format_example(example: dict, width: int, max_lines: int) -> str:
    members = example["members"]
    survivor = next(m for m in members if m["survivor"])
    sources = sorted({s for m in members for s in m["copies_by_source"]})
    size = sum(sum(m["copies_by_source"].values()) for m in members)
    shown = f"{len(members)} shown" if len(members) > 1 else "exact copies only"
    lines = [f"=== cluster of {size} documents ({', '.join(sources)}; {shown}): kept {survivor['id']}"]
    others = [m for m in members if not m["survivor"]]
    if not others:
        lines.append(f"kept {_describe(survivor)}")
        lines += side_by_side(" ".join(survivor["text"].split()), "", width, max_lines)
    for member in others:
        column = max(20, (width - 3) // 2)
        lines.append(f"{'kept ' + _describe(survivor):<{column}} │ dropped {_describe(member)}, "
                     f"Jaccard {member['jaccard_to_survivor']:.2f} to the kept one")
        left, right = marked_words(" ".join(survivor["text"].split()), " ".join(member["text"].split()))
        lines += side_by_side(left, right, width, max_lines)
        lines.append("")
    return "\n".join(lines)


def format_dups(out: str, count: int, width: int | None = None, max_lines: int = 12) -> str:
    width = width or shutil.get_terminal_size((160, 40)).columns
    examples = load_examples(out)
    parts = [format_dedup_summary(load_stats(out)), ""]
    if not examples:
        parts.append("no duplicate clusters in this run")
    for example in examples[:count]:
        parts.append(format_example(example, width, max_lines))
    if len(examples) > count:
        parts.append(f"({len(examples) - count} more example clusters in {out}/dedup/examples.jsonl)")
    return "\n".join(parts)
