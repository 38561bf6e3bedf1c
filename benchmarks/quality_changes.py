"""How many real documents change decision when the quality rules of an older commit are replaced by
this checkout's: per rule set, on the same real texts (tests/pipeline/stages/real_texts.py, made from
../shared/realdata by the project's readers: C4 pages, extracted web pages, a WET record, Wikipedia
articles, Stack Exchange threads, books, arXiv bodies).

The old rules are `pipeline/stages/quality.py` as it was at OLD (read with `git show`, loaded as a module
of its own). A rule set's decision on a text is "kept" or its drop reason; C4's two rule sets are applied
together (`c4_lines` then `c4_document`), as the quality stage applies them.

    python benchmarks/quality_changes.py [--old f936030] [--realdata ../shared/realdata]

Issue 23's figures (f936030 -> the rules of c4_utils and of the Gopher paper / datatrove), on 544 texts:
- c4_lines + c4_document: 19 change, all c4_too_few_sentences -> kept (3 of the 20 real C4 pages);
- gopher_repetition: 42 change (kept 491 -> 513), mostly gopher_dup_5gram -> kept (first occurrences no
  longer counted as duplicates), and top n-gram reasons trading places;
- gopher_quality: 67 change (kept 422 -> 364): 58 kept -> gopher_alpha_words (punctuation marks are
  words, as datatrove's spaCy words), 7 stop-word drops now alpha-word drops, 1 each way on stop words
  (two different ones needed, matched as written);
- ccnet_min_length, redpajama_code: unchanged (0).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # tests.pipeline.stages.real_texts


def load_old_rules(revision: str):
    source = subprocess.run(["git", "show", f"{revision}:pipeline/stages/quality.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "old_quality.py")
        Path(path).write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("old_quality", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def decide(rules, text: str) -> str:
    for rule in rules:
        if hasattr(rule, "clean"):
            text = rule.clean(text)
            if not text.strip():
                return f"{rule.name}_no_lines_left"
            continue
        keep, reason = rule(text)
        if not keep:
            return reason
    return "kept"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", default="f936030", help="the commit whose quality rules are compared")
    parser.add_argument("--realdata", default=str(REPO.parent / "shared" / "realdata"))
    args = parser.parse_args(argv)

    from llamapipe.pipeline.stages import quality as new
    from tests.pipeline.stages.real_texts import real_texts

    old = load_old_rules(args.old)
    texts = real_texts(Path(args.realdata))
    print(f"{len(texts)} real texts: {dict(Counter(t.kind for t in texts))}")
    rule_sets = {
        "c4_lines + c4_document": ["c4_lines", "c4_document"],
        "gopher_repetition": ["gopher_repetition"],
        "gopher_quality": ["gopher_quality"],
        "ccnet_min_length": ["ccnet_min_length"],
        "redpajama_code": ["redpajama_code"],
    }
    for label, names in rule_sets.items():
        old_rules, new_rules = old.build_rules(names), new.build_rules(names)
        changes, per_kind, old_kept, new_kept = Counter(), Counter(), 0, 0
        for text in texts:
            before, after = decide(old_rules, text.text), decide(new_rules, text.text)
            old_kept += before == "kept"
            new_kept += after == "kept"
            if before != after:
                kind = ("kept -> dropped" if before == "kept" else
                        "dropped -> kept" if after == "kept" else "dropped, other reason")
                changes[(kind, before, after)] += 1
                per_kind[text.kind] += 1
        total = sum(changes.values())
        print(f"\n{label}: {total} of {len(texts)} texts change decision "
              f"(kept {old_kept} -> {new_kept}); by source: {dict(per_kind)}")
        for (kind, before, after), count in changes.most_common():
            print(f"  {count:4d}  {kind}: {before} -> {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
