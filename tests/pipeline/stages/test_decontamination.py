"""Benchmark decontamination: passages of an evaluation set (written by the test, as jsonl) planted in real
documents of ../shared/realdata are found, each with its set and first n-gram, and nothing else is; short
examples are matched whole; jsonl values are read at any depth, .txt lines one by one; the index built in
tiny chunks is the one built at once; the stage through a real cleaning run reaches the ledger and the
report; bad settings are config errors naming the key."""

from __future__ import annotations

import gzip
import json
import random
import re

import numpy as np
import pytest

from llamapipe.pipeline.config import ConfigError, DecontaminationConfig, decontamination_files, parse_config
from llamapipe.pipeline.plumbing.drops import DROPPED, LEDGER_ROWS
from llamapipe.pipeline.stages.decontamination import (
    HASHES,
    SETS,
    DecontaminateDoFn,
    Index,
    build_index,
    ensure_index,
    example_hashes,
    words_of,
)
from llamapipe.sources.demo.text import EnglishWriter
from tests.pipeline.stages.real_texts import _stackexchange_threads, _wikipedia_articles, c4_pages


def _write_jsonl(path, records, gz: bool = False) -> str:
    data = "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return str(path)


def _passages(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [EnglishWriter(rng, register="formal").paragraph(2) for _ in range(count)]


def _index(tmp_path, sets: dict[str, list[str]], **settings) -> Index:
    options = DecontaminationConfig(sets=sets, **settings)
    ensure_index(options, str(tmp_path / "index"), log=lambda line: None)
    return Index(str(tmp_path / "index"))


def _run_dofn(folder: str, docs: list[dict], sources=None) -> tuple[list[dict], dict[str, dict], list]:
    dofn = DecontaminateDoFn(folder, sources)
    dofn.setup()
    kept, dropped, rows = [], {}, []
    for doc in docs:
        for out in dofn.process(doc):
            if isinstance(out, dict):
                kept.append(out)
            elif out.tag == DROPPED:
                dropped[out.value["id"]] = out.value
            elif out.tag == LEDGER_ROWS:
                rows.append(out.value)
    return kept, dropped, rows


def _plant(text: str, passage: str, rng: random.Random) -> str:
    """`passage` inserted at a random whitespace of `text` (between two of its words)."""
    spaces = [m.start() for m in re.finditer(r"\s", text)] or [len(text)]
    at = rng.choice(spaces)
    return f"{text[:at]} {passage} {text[at:]}"


def test_passages_planted_in_real_documents_are_dropped_with_set_and_ngram(tmp_path, realdata):
    documents = [t for t in (c4_pages(realdata) + _wikipedia_articles(realdata)[:60]
                             + _stackexchange_threads(realdata)[:60]) if len(words_of(t.text)) >= 20]
    assert len(documents) >= 100
    # Two sets, as a benchmark ships them: contexts, choices and nested metadata.
    quiz = _passages(1, 12)
    reading = _passages(2, 12)
    quiz_file = _write_jsonl(tmp_path / "quiz.jsonl", [
        {"ctx": p, "endings": ["yes", "no"], "label": 0, "meta": {"source_id": f"q{i}"}}
        for i, p in enumerate(quiz)])
    reading_file = _write_jsonl(tmp_path / "reading.jsonl.gz", [
        {"passage": {"text": p, "title": "t"}, "questions": [{"q": "which one", "a": ["a", "b"]}]}
        for p in reading], gz=True)
    index = _index(tmp_path, {"quiz": [quiz_file], "reading": [reading_file]})
    assert index.meta["examples"] == 24 and index.names == ["quiz", "reading"]

    rng = random.Random(7)
    docs, planted = [], {}
    for i, real in enumerate(documents):
        text = real.text
        if i % 4 == 1:  # a whole passage
            set_name, passage = ("quiz", quiz[i % 12]) if i % 8 == 1 else ("reading", reading[i % 12])
            text = _plant(text, passage, rng)
            planted[real.id] = (set_name, " ".join(words_of(passage)[:13]))
        elif i % 4 == 3:  # 13 words from inside a passage, in upper case, with other punctuation
            words = words_of(reading[i % 12])
            start = rng.randrange(len(words) - 13)
            piece = ", ".join(words[start:start + 13]).upper()
            text = _plant(text, piece, rng)
            planted[real.id] = ("reading", " ".join(words[start:start + 13]))
        elif i % 8 == 2:  # only 12 words of a passage: not contaminated
            text = _plant(text, " ".join(words_of(quiz[i % 12])[:12]), rng)
        docs.append({"id": real.id, "source": real.kind, "text": text})
    kept, dropped, rows = _run_dofn(str(tmp_path / "index"), docs)

    assert set(dropped) == set(planted)
    for doc_id, (set_name, ngram) in planted.items():
        record = dropped[doc_id]
        assert (record["stage"], record["reason"]) == ("decontamination", "contaminated")
        assert record["detail"] == f'{set_name}: "{ngram}"'
    assert len(kept) == len(documents) - len(planted)
    assert sorted(row[2] for row in rows) == sorted(set_name for set_name, _ in planted.values())
    assert all(row[1] == "group:decontamination" for row in rows)


def test_short_examples_are_matched_whole(tmp_path):
    lines = ["The mitochondria is the powerhouse of the cell.",  # 8 words: matched whole
             "Which planet has the most moons?",  # 6 words: under min_words, left out
             "A very long question of thirteen words or more is matched by n-grams alone."]
    path = tmp_path / "mmlu.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    index = _index(tmp_path, {"mmlu": [str(path)]})
    assert index.meta["examples"] == 2 and index.meta["skipped_short"] == 1
    assert index.meta["short_lengths"] == [8]

    match = index.first_match("We learned that THE MITOCHONDRIA is the power-house... no: is the powerhouse "
                              "of the cell, said the teacher.")
    assert match is None  # "power-house" is two words: the sequence is not there
    match = index.first_match("We learned that the Mitochondria -- is the powerhouse of the cell! Really.")
    assert match.set == "mmlu" and match.ngram == "the mitochondria is the powerhouse of the cell"
    assert index.first_match("the mitochondria is the powerhouse of the") is None  # 7 of its 8 words
    assert index.first_match("which planet has the most moons") is None
    # 14 words: its 13-grams, not its whole sequence, are what a document must hold
    assert index.first_match("a very long question of thirteen words or is matched by n-grams alone") is None
    assert index.first_match("so a very long question of thirteen words or more is matched by n grams")

    literal = _index(tmp_path / "literal", {"mmlu": [str(path)]}, min_words=1)
    found = literal.first_match("Which planet has the most moons? Saturn.")
    assert found.ngram == "which planet has the most moons"


def test_jsonl_values_at_any_depth_and_txt_lines(tmp_path):
    deep = "the answer hidden three levels down inside a list of records stays an example"
    record = {"question_key_is_not_an_example_but_its_value_is":
              "a plain question with exactly nine words in it",
              "nested": {"items": [{"x": 1, "y": [deep, 3.5, None]}]}, "number": 12}
    jsonl = _write_jsonl(tmp_path / "a.jsonl", [record])
    gz = _write_jsonl(tmp_path / "b.jsonl.gz",
                      [{"t": "compressed files hold examples of the same kind as plain ones"}], gz=True)
    txt = tmp_path / "c.txt"
    txt.write_text("first line of the text file is an example on its own\n\n"
                   "second line of the text file is another example\n", encoding="utf-8")
    index = _index(tmp_path, {"a": [jsonl], "b": [gz], "c": [str(txt)]})
    assert index.meta["examples"] == 5
    assert index.first_match(f"prefix {deep} suffix").set == "a"
    assert index.first_match("A plain question, with exactly nine words in it!").set == "a"
    assert index.first_match("question key is not an example but its value is") is None
    assert index.first_match("Compressed files hold examples of the same kind as plain ones.").set == "b"
    assert index.first_match("second line of the text file is another example").set == "c"
    assert index.first_match("first line of the text file is an example on its own second line").set == "c"


def test_index_built_in_tiny_chunks_equals_the_one_built_at_once(tmp_path):
    passages = _passages(3, 30)
    first = _write_jsonl(tmp_path / "one.jsonl", [{"p": p} for p in passages[:20]])
    second = _write_jsonl(tmp_path / "two.jsonl", [{"p": p} for p in passages[10:]])  # 10 shared with `one`
    options = DecontaminationConfig(sets={"one": [first], "two": [second]})
    files = decontamination_files(options)
    at_once = build_index(options, files, str(tmp_path / "at_once"), chunk=10**9, partitions=1)
    chunked = build_index(options, files, str(tmp_path / "chunked"), chunk=7, partitions=16)
    assert at_once["ngrams"] == chunked["ngrams"] > 0
    for name in (HASHES, SETS):
        assert (tmp_path / "at_once" / name).read_bytes() == (tmp_path / "chunked" / name).read_bytes()

    hashes = np.fromfile(tmp_path / "chunked" / HASHES, dtype="<u8")
    sets = np.fromfile(tmp_path / "chunked" / SETS, dtype="u1")
    expected: dict[int, int] = {}
    for set_id, group in enumerate((passages[:20], passages[10:])):
        for p in group:
            for h in example_hashes(words_of(p), 13).tolist():
                expected.setdefault(h, set_id)  # an n-gram of both sets is named by the first
    assert hashes.tolist() == sorted(expected)
    assert sets.tolist() == [expected[h] for h in sorted(expected)]
    assert 0 < sum(sets == 0) and 0 < sum(sets == 1)


def test_index_is_kept_until_its_files_change(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("one example line with enough words to make a single thirteen gram\n", encoding="utf-8")
    options = DecontaminationConfig(sets={"s": [str(path)]})
    logs: list[str] = []
    ensure_index(options, str(tmp_path / "index"), log=logs.append)
    ensure_index(options, str(tmp_path / "index"), log=logs.append)
    path.write_text("another example line with enough words to make a single thirteen gram\n",
                    encoding="utf-8")
    ensure_index(options, str(tmp_path / "index"), log=logs.append)
    assert ["built by an earlier run" in line for line in logs] == [False, True, False]
    assert Index(str(tmp_path / "index")).first_match(path.read_text()) is not None


def test_sources_not_checked_are_kept(tmp_path):
    path = tmp_path / "s.txt"
    passage = _passages(4, 1)[0]
    path.write_text(passage + "\n", encoding="utf-8")
    _index(tmp_path, {"s": [str(path)]})
    docs = [{"id": "a", "source": "c4", "text": passage}, {"id": "b", "source": "github", "text": passage}]
    kept, dropped, _ = _run_dofn(str(tmp_path / "index"), docs, sources=["c4"])
    assert [d["id"] for d in kept] == ["b"] and list(dropped) == ["a"]


# --- config errors -------------------------------------------------------------------------------------

def _config(tmp_path, decontamination: dict):
    c4 = tmp_path / "c4.json"
    c4.write_text('{"text": "Hello world.", "url": "u"}\n')
    return parse_config({"output": str(tmp_path / "out"), "sources": {"c4": {"inputs": [str(c4)]}},
                         "decontamination": decontamination})


@pytest.mark.parametrize("settings, message", [
    ({"sets": {"s": ["x.txt"]}, "ngram": 0}, r"^decontamination: decontamination\.ngram must be >= 1"),
    ({"sets": {"s": ["x.txt"]}, "sources": ["c5"]}, r"decontamination\.sources: unknown source 'c5'"),
    ({"sets": {"s": "x.txt"}}, r"^decontamination\.sets\.s: expected a list"),
    ({"sets": {"s": []}}, r"decontamination\.sets\.s: no file given"),
    ({"colour": 1}, r"^decontamination\.colour: unknown key"),
])
def test_bad_settings_name_the_key(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, settings)


def test_bad_files_name_the_key(tmp_path):
    config = _config(tmp_path, {"sets": {"mmlu": [str(tmp_path / "missing*.jsonl")]}})
    with pytest.raises(ConfigError, match=r"^decontamination\.sets\.mmlu\[0\]: no file matches"):
        decontamination_files(config.decontamination)
    (tmp_path / "e.csv").write_text("a,b\n")
    config = _config(tmp_path, {"sets": {"e": [str(tmp_path / "e.csv")]}})
    with pytest.raises(ConfigError, match=r"^decontamination\.sets\.e\[0\]: .*e\.csv' is not a \.jsonl"):
        decontamination_files(config.decontamination)
    (tmp_path / "bad.jsonl").write_text('{"q": "fine line"}\n{"q": broken\n')
    config = _config(tmp_path, {"sets": {"bad": [str(tmp_path / "bad.jsonl")]}})
    with pytest.raises(ConfigError, match=r"^decontamination\.sets\.bad\[0\]: .*' line 2 is not JSON"):
        ensure_index(config.decontamination, str(tmp_path / "index"), log=lambda line: None)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    config = _config(tmp_path, {"sets": {"l": [str(tmp_path / "latin1.txt")]}})
    with pytest.raises(ConfigError, match=r"^decontamination\.sets\.l\[0\]: .* is not UTF-8"):
        ensure_index(config.decontamination, str(tmp_path / "index"), log=lambda line: None)


def test_cli_exits_2_naming_the_set_glob(tmp_path, capsys):
    from llamapipe.pipeline.cli import main

    c4 = tmp_path / "c4.json"
    c4.write_text('{"text": "Hello world.", "url": "u"}\n')
    path = tmp_path / "config.yaml"
    path.write_text(f"output: {tmp_path}/out\nsources:\n  c4: {{inputs: ['{c4}']}}\n"
                    f"decontamination:\n  sets: {{hellaswag: ['{tmp_path}/evals/hellaswag*.jsonl']}}\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "decontamination.sets.hellaswag[0]: no file matches" in err and "Traceback" not in err


def test_cleaning_run_drops_planted_pages_into_the_ledger_and_report(tmp_path, realdata):
    """Real C4 pages, three with a passage of the set, through `run_cleaning` (every stage of the
    cleaning graph, DirectRunner): the ledger counts them per source and set, the drops name the set,
    and the report's section shows the counts and a match."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from llamapipe.pipeline.output.layout import OutputLayout
    from llamapipe.pipeline.report.build import gather, write_report
    from llamapipe.pipeline.run import prepare_output, run_cleaning

    pages = c4_pages(realdata)
    passages = _passages(5, 6)
    rng = random.Random(3)
    lines = []
    for i, page in enumerate(pages):
        text = _plant(page.text, passages[i % 6], rng) if i in (2, 9, 15) else page.text
        lines.append({"text": text, "url": f"https://example.org/{i}", "timestamp": "2019-04-20T00:00:00Z"})
    corpus = _write_jsonl(tmp_path / "c4-train.00000-of-00001.json.gz", lines, gz=True)
    evals = _write_jsonl(tmp_path / "evals.jsonl", [{"ctx": p, "choices": ["a", "b"]} for p in passages])
    config = parse_config({
        "output": str(tmp_path / "out"),
        "sources": {"c4": {"inputs": [corpus]}},
        "langid": {"allowed": {"c4": []}}, "filters": {"rules": {}},  # every page reaches decontamination
        "decontamination": {"sets": {"evals": [evals]}},
    })
    paths = OutputLayout(config.output)
    prepare_output(config.output)
    record: dict = {"stages": {}, "config": {"decontamination": {"sets": {"evals": [evals]}, "ngram": 13}}}
    ledger = run_cleaning(config, PipelineOptions(["--runner=DirectRunner"]), paths, record,
                          log=lambda line: None, quiet_beam=False)

    entry = ledger["sources"]["c4"]
    assert entry["dropped_by_stage"]["decontamination"] == {"contaminated": 3}
    group = entry["dropped_by_group"]["decontamination"]["evals"]
    assert group["documents"] == 3 and group["chars"] > 3 * 600
    drops = [json.loads(line) for f in (tmp_path / "out" / "dropped").glob("*.jsonl")
             for line in f.read_text().splitlines()]
    contaminated = [d for d in drops if d["reason"] == "contaminated"]
    planted_ids = {f"c4:c4-train.00000-of-00001.json.gz:{i + 1}" for i in (2, 9, 15)}
    assert {d["id"] for d in contaminated} == planted_ids
    assert all(d["detail"].startswith('evals: "') for d in contaminated)
    assert record["decontamination"]["ngrams"] > 0

    (tmp_path / "out" / "run.json").write_text(json.dumps(record))
    report = gather(str(tmp_path / "out"))["decontamination"]
    assert [(r["set"], r["source"], r["documents"]) for r in report["rows"]] == [("evals", "c4", 3)]
    assert len(report["examples"]) == 3
    example = report["examples"][0]
    assert " ".join(words_of(example["match"])) == example["ngram"] and example["before"]
    write_report(str(tmp_path / "out"))
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'data-set="evals" data-source="c4"' in page and "<mark>" in page
