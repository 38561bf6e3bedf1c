"""OUT/report.html of the demo run (the session's `demo_run`, trained by `demo_trained`): every section
is there, its charts are drawn, and its numbers are the run's own (ledger.json, manifest.json, the
shards, metrics.jsonl), read back from the page."""

from __future__ import annotations

import html
import json
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.output.rejects import REJECT_SCHEMA
from llamapipe.pipeline.report.build import SAMPLE_CHARS, SAMPLE_DOCUMENTS
from llamapipe.pipeline.report.html import SECTIONS


@pytest.fixture(scope="module")
def report(demo_run, demo_trained) -> dict:
    """The page `llamapipe train` refreshed, cut into its sections."""
    assert demo_trained == 0
    out = demo_run["out"]
    page = (out / "report.html").read_text(encoding="utf-8")
    sections = dict(re.findall(r'<section id="([a-z]+)">(.*?)</section>', page, flags=re.S))
    return {"page": page, "sections": sections, "out": out,
            "ledger": json.loads((out / "ledger.json").read_text()),
            "manifest": json.loads((out / "shards" / "manifest.json").read_text())}


def row(section: str, source: str) -> list[str]:
    """The raw numbers (data-value) of a source's row in a section's table."""
    match = re.search(rf'<tr data-source="{source}">(.*?)</tr>', section, flags=re.S)
    assert match, f"no row for {source}"
    cells = re.findall(r'data-value="([^"]*)">([^<]*)<', match.group(1))
    for raw, shown in cells:  # what is shown is the same number, with separators
        assert shown.replace(",", "").split(" ")[0] in (raw, f"{float(raw):.3f}", f"{float(raw):.2f}") \
            or shown.endswith("B"), (raw, shown)
    return [raw for raw, _ in cells]


def keyed(section: str) -> dict[str, str]:
    """The raw numbers of a section's two-column table, by row name (data-key)."""
    pattern = r'<tr data-key="([^"]+)"><td>[^<]*</td><td class="n" data-value="([^"]+)"'
    return dict(re.findall(pattern, section))


def svg_texts(section: str) -> list[str]:
    """The texts written on a section's charts (SVG keeps them as text)."""
    return [html.unescape(t) for svg in re.findall(r"<svg.*?</svg>", section, flags=re.S)
            for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_every_section_has_a_drawn_chart(report):
    assert [s for s, _ in SECTIONS if s not in report["sections"]] == []
    for section, content in report["sections"].items():
        if section == "examples":
            continue
        if section in ("pii", "scores") and 'class="missing"' in content:
            continue  # beyond the recipe, off in the demo (tests/pipeline/test_beyond_recipe.py has them on)
        charts = re.findall(r"<svg.*?</svg>", content, flags=re.S)
        assert charts, f"{section}: no chart"
        shapes = sum(chart.count("<path") for chart in charts)
        assert shapes > 5 and svg_texts(content), f"{section}: an empty chart"


def test_the_page_is_self_contained(report):
    page = report["page"]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page and "<script" not in page
    assert "<link" not in page and "<img" not in page


def test_the_funnel_is_the_ledger(report):
    section = report["sections"]["funnel"]
    texts = svg_texts(section)
    for source, entry in report["ledger"]["sources"].items():
        values = row(section, source)
        assert values == [str(entry[k]) for k in ("in", "bytes_in", "kept", "bytes_kept", "dropped")]
        assert entry["bytes_in"] >= entry["chars_in"] > 0
        assert f"{entry['in']:,} in" in texts  # the chart's bar of this source
        for stage, reasons in entry["dropped_by_stage"].items():
            for reason, count in reasons.items():
                assert f"{reason} {count:,}" in section, (source, stage, reason)
    totals = report["ledger"]["totals"]
    assert row(section, "total") == [str(totals[k]) for k in ("in", "kept", "dropped")]


def test_languages_count_kept_documents_and_language_drops(report):
    section = report["sections"]["languages"]
    ledger = report["ledger"]["sources"]
    for source, entry in ledger.items():
        assert sum(entry["kept_languages"].values()) == entry["kept"], source
    assert ledger["github"]["kept_languages"] == {"none": ledger["github"]["kept"]}  # code: no language ID
    dropped_fr = ledger["commoncrawl"]["dropped_by_stage"]["langid"]["language_fr"]
    assert f"fr {dropped_fr:,}" in section
    kept_en = sum(e["kept_languages"].get("en", 0) for e in ledger.values())
    assert f" {kept_en:,} kept" in svg_texts(section)
    assert any(t.startswith(f" 0 kept, {dropped_fr:,} dropped") for t in svg_texts(section))


def test_lengths_before_and_after_cleaning_add_up(report):
    section = report["sections"]["lengths"]
    for source, entry in report["ledger"]["sources"].items():
        histogram = entry["length_histogram"]
        # what the readers drop (unreadable, redirects, GitHub's file rules) has no text to measure; what a
        # source's corpus-wide step drops (GitHub's exact copies, Stack Exchange's smaller sites) was read
        by_stage = entry["dropped_by_stage"]
        read_drops = sum(count for stage in ("read", "clean")
                         for reason, count in by_stage.get(stage, {}).items()
                         if reason not in ("exact_duplicate_file", "site_not_largest"))
        assert sum(histogram["in"].values()) == entry["in"] - read_drops
        assert sum(histogram["kept"].values()) == entry["kept"]
        read, mean_read, kept, mean_kept = (int(v) for v in row(section, source))
        assert (read, kept) == (entry["in"] - read_drops, entry["kept"])
        assert mean_read == round(entry["chars_in"] / read) and mean_kept == round(entry["chars_kept"] / kept)
    # web pages are read as HTML: far longer before extraction than after
    cc = report["ledger"]["sources"]["commoncrawl"]
    assert cc["chars_in"] / cc["in"] > 1.5 * cc["chars_kept"] / cc["kept"]
    assert set(svg_texts(section)) >= set(report["ledger"]["sources"])  # a panel per source


def test_duplicate_clusters_are_the_ledger_s(report):
    section = report["sections"]["dedup"]
    dedup = report["ledger"]["dedup"]
    cells = keyed(section)
    assert int(cells["clusters"]) == dedup["clusters"] > 0
    assert int(cells["dropped as duplicates"]) == dedup["duplicates_dropped"]
    for pair, count in dedup["cross_source_pairs"].items():
        assert int(cells[f"pairs {pair}"]) == count
    texts = svg_texts(section)
    for size, clusters in dedup["size_histogram"].items():
        assert size in texts and f"{clusters:,}" in texts  # the bar and its label


def test_the_mixture_is_the_manifest_s(report):
    section = report["sections"]["mixture"]
    texts = " ".join(svg_texts(section))
    for source, entry in report["manifest"]["sources"].items():
        documents, tokens, shards, share, target, epochs, target_epochs = row(section, source)
        assert (int(documents), int(tokens), int(shards)) == (entry["documents"], entry["tokens"],
                                                               len(entry["shards"]))
        assert float(share) == entry["share"] and float(epochs) == entry["epochs"]
        assert float(target) == entry["configured_share"]
        assert float(target_epochs) == entry["configured_epochs"]
        assert f"{100 * entry['share']:.1f}% vs {100 * entry['configured_share']:.1f}%, " \
               f"{entry['epochs']:.2f} epochs of {entry['tokens']:,} tokens" in texts
    assert row(section, "total") == [str(report["manifest"]["total_tokens"])]


def test_tokens_per_word_come_from_the_run_s_tokenizer(report):
    """Where the sample is the whole source, the tokens counted are the shards' (less one BOS each)."""
    section = report["sections"]["tokenizer"]
    vocab = report["manifest"]["tokenizer"]["vocab_size"]
    assert f"Tokenizer ({vocab:,} pieces): tokens per word" in svg_texts(section)
    whole = 0
    for source, entry in report["manifest"]["sources"].items():
        documents, words, tokens, per_word, _ = row(section, source)
        assert int(documents) == min(entry["documents"], SAMPLE_DOCUMENTS)
        assert 1.0 < float(per_word) < 4.0 and float(per_word) == round(int(tokens) / int(words), 3)
        lengths = [len(t) for p in (report["out"] / "documents" / source).glob("*.parquet")
                   for t in pq.read_table(p, columns=["text"]).column("text").to_pylist()]
        if len(lengths) <= SAMPLE_DOCUMENTS and max(lengths) <= SAMPLE_CHARS:
            assert int(tokens) == entry["tokens"] - entry["documents"], source
            whole += 1
    assert whole >= 3  # the check above ran on real sources


def test_examples_are_the_run_s_documents_and_drops(report):
    section = report["sections"]["examples"]
    ledger = report["ledger"]["sources"]
    rejects = {r["id"]: r for path in (report["out"] / "rejects").glob("*.parquet")
               for r in pq.read_table(path).to_pylist()}
    for source, entry in ledger.items():
        block = section.split(f'<h3 data-source="{source}">')[1].split("<h3")[0]
        assert block.count('class="doc kept"') == min(3, entry["kept"])
        shown = re.findall(r'<div class="doc rejected"><b>([^<]*)</b><div class="meta">(\S+)', block)
        reasons = {(stage, reason) for stage, by in entry["dropped_by_stage"].items() for reason in by}
        assert len(shown) == min(4, len(reasons)), source
        for title, doc_id in shown:  # each is a sampled drop of this source, its text shown escaped
            reject = rejects[html.unescape(doc_id)]
            assert html.unescape(title) == f"{reject['stage']} / {reject['reason']}"
            assert reject["source"] == source
            shown_text = html.escape(reject["text"][:700]) if reject["text"] else "(no text recorded)"
            assert shown_text in block
        stages = [html.unescape(title).split(" / ")[0] for title, _ in shown]
        assert len(set(stages)) == min(len(shown), len({s for s, _ in reasons}))  # one per stage first
    assert "&lt;" in section  # HTML pages and code: shown as text
    assert report["page"].count("<html") == 1 and report["page"].count("<body") == 1


def test_a_hostile_text_stays_text(report, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(report["out"], copy, ignore=shutil.ignore_patterns("train", "shards", "documents"))
    hostile = '</pre></div><script>alert("x")</script><img src="https://example.com/x.png"> & done'
    row = {"source": "zz", "stage": "quality", "reason": "<b>bold</b>", "id": 'zz:"1"', "detail": "<i>",
           "text": hostile, "sampled_by": "rate"}
    pq.write_table(pa.Table.from_pylist([row], schema=REJECT_SCHEMA), copy / "rejects" / "rejects-zz.parquet")
    assert main(["report", str(copy)]) == 0
    page = (copy / "report.html").read_text(encoding="utf-8")
    assert html.escape(hostile) in page and "<script" not in page and "<img" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "zz:&quot;1&quot;" in page


def test_training_curves_are_the_metrics(report):
    section = report["sections"]["training"]
    lines = (report["out"] / "train" / "metrics.jsonl").read_text().splitlines()
    metrics = [json.loads(line) for line in lines]
    cells = keyed(section)
    assert int(cells["steps"]) == metrics[-1]["step"]
    assert float(cells["last loss"]) == round(metrics[-1]["loss"], 4)
    assert float(cells["first loss"]) == round(metrics[0]["loss"], 4)
    evaluated = [m for m in metrics if m.get("source_loss")]
    assert len(evaluated) >= 2
    texts = svg_texts(section)
    for source, loss in evaluated[-1]["source_loss"].items():
        assert f"held-out {source}" in texts
        assert float(cells[f"held-out {source}"]) == round(loss, 4)
    assert f"{metrics[-1]['loss']:.3f}" in texts  # the last point is labelled


def test_report_rebuilds_and_tells_what_is_missing(report, tmp_path, capsys):
    assert main(["report", str(report["out"])]) == 0
    assert f"wrote {report['out'] / 'report.html'}" in capsys.readouterr().out
    # a run that has not trained, and one that failed before its ledger: the page still builds
    copy = tmp_path / "run"
    shutil.copytree(report["out"], copy, ignore=shutil.ignore_patterns("train", "shards", "ledger.json"))
    assert main(["report", str(copy)]) == 0
    page = (copy / "report.html").read_text(encoding="utf-8")
    for missing in ("not trained yet", "no OUT/ledger.json", "no OUT/shards/manifest.json"):
        assert missing in page


def test_report_on_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "holds no llamapipe run" in error[0]
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err

