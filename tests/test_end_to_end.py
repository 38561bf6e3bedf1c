"""The whole spine on the demo corpus: what a user of `make demo` would check by hand.

One run of the pipeline (demo corpus -> cleaned documents -> tokenizer -> shards -> manifest, the
`demo_run` fixture of tests/conftest.py, shared with tests/pipeline/report/test_report.py) serves the tests of
this module; each test then checks one behaviour against the corpus's own record of what it planted
(`plants.json`), an independent account of the input.
"""

from __future__ import annotations

import glob
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.inspect.shards import summarize


def kept_documents(out) -> dict[str, dict]:
    docs = {}
    for path in glob.glob(str(out / "documents" / "*" / "*.parquet")):
        for row in pq.read_table(path).to_pylist():
            docs[row["id"]] = row
    return docs


def drop_records(out) -> dict[str, dict]:
    drops = {}
    for path in glob.glob(str(out / "dropped" / "*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                assert record["id"] not in drops, f"{record['id']} dropped twice"
                drops[record["id"]] = record
    return drops


def test_ledger_adds_up_and_matches_an_independent_count_of_the_inputs(demo_run):
    ledger = json.loads((demo_run["out"] / "ledger.json").read_text())
    planted = demo_run["plants"]["documents"]
    http_errors = len(demo_run["plants"]["http_errors"])  # HTML responses with 404: documents, dropped
    kept = kept_documents(demo_run["out"])
    drops = drop_records(demo_run["out"])
    assert set(ledger["sources"]) == set(planted)
    for source, entry in ledger["sources"].items():
        dropped = sum(sum(reasons.values()) for reasons in entry["dropped_by_stage"].values())
        assert entry["in"] == entry["kept"] + entry["dropped"] == entry["kept"] + dropped, source
        expected_in = planted[source] + (http_errors if source == "commoncrawl" else 0)
        assert entry["in"] == expected_in, source
        assert entry["kept"] == sum(1 for d in kept.values() if d["source"] == source), source
        assert entry["dropped"] == sum(1 for d in drops.values() if d["source"] == source), source
    assert not set(kept) & set(drops), "a document is both kept and dropped"


def test_planted_foreign_pages_are_dropped_by_language_id(demo_run):
    drops = drop_records(demo_run["out"])
    foreign = demo_run["plants"]["non_english"]
    assert {item["lang"] for item in foreign} >= {"fr", "de", "es", "ru", "zh"}
    for item in foreign:
        drop = drops.get(item["id"])
        assert drop is not None, f"{item['lang']} page {item['url']} was kept"
        assert (drop["stage"], drop["reason"]) == ("langid", f"language_{item['lang']}")


def test_planted_duplicates_become_one_document(demo_run):
    kept = kept_documents(demo_run["out"])
    drops = drop_records(demo_run["out"])
    for kind in ("near_duplicates", "exact_duplicates", "cross_source_duplicates"):
        for pair in demo_run["plants"][kind]:
            ids = [item["id"] for item in pair]
            survivors = [i for i in ids if i in kept]
            assert len(survivors) == 1, f"{kind}: {ids} -> kept {survivors}"
            (loser,) = [i for i in ids if i not in kept]
            # GitHub removes exact file copies itself (RedPajama's recipe); the rest is the dedup stage
            reason = (drops[loser]["stage"], drops[loser]["reason"])
            assert reason[0] == "dedup" or reason == ("clean", "exact_duplicate_file"), (kind, reason)


def test_cross_source_copy_survives_in_the_preferred_source(demo_run):
    kept = kept_documents(demo_run["out"])
    for pair in demo_run["plants"]["cross_source_duplicates"]:
        by_source = {item["source"]: item["id"] for item in pair}
        if {"c4", "commoncrawl"} <= set(by_source):
            assert by_source["c4"] in kept  # source priority: C4 before CommonCrawl


def test_spam_gibberish_short_and_bad_code_are_dropped_with_reasons(demo_run):
    drops = drop_records(demo_run["out"])
    plants = demo_run["plants"]
    for item in plants["spam"] + plants["gibberish"] + plants["short"]:
        assert item["id"] in drops, item
        assert drops[item["id"]]["stage"] in {"langid", "quality"}
    for item in plants["non_permissive_code"]:
        assert drops[item["id"]]["reason"] == "license_not_allowed"
    for item in plants["c4_rule_violations"]:
        assert drops[item["id"]]["reason"].startswith("c4_")


def test_normal_documents_are_mostly_kept(demo_run):
    kept = kept_documents(demo_run["out"])
    drops = drop_records(demo_run["out"])
    uncited = {item["id"] for item in demo_run["plants"]["uncited_urls"]}
    # Normal pages not cited by Wikipedia are the reference classifier's to judge (next test); no
    # other rule may remove them.
    normal = [item for item in demo_run["plants"]["normal_english"] if item["id"] not in uncited]
    kept_share = sum(1 for item in normal if item["id"] in kept) / len(normal)
    assert kept_share > 0.95
    judged = [i for i in uncited if i in kept or drops[i]["stage"] == "classifier"]
    assert len(judged) > 0.95 * len(uncited)


def test_a_line_shared_by_pages_is_removed_from_all_of_them(demo_run):
    kept = kept_documents(demo_run["out"])
    pages = demo_run["plants"]["shared_line_pages"]
    template = pages[0]["line"]
    prefix, suffix = template.split("{year}")
    survivors = [kept[item["id"]]["text"] for item in pages if item["id"] in kept]
    assert len(survivors) >= 0.95 * len(pages)  # the pages stay, without the line (any year)
    assert not any(prefix in text or suffix in text for text in survivors)


def test_reference_classifier_trains_and_separates_cited_from_uncited_pages(demo_run):
    record = json.loads((demo_run["out"] / "run.json").read_text())
    status = record["classifier"]
    assert status["status"] == "trained"
    assert status["cited_pages_found"] >= 0.9 * len(demo_run["plants"]["cited_urls"])
    # ~40 held-out pages, some of them uncited pages written like references (the planted duplicates)
    assert status["heldout"]["accuracy"] >= 0.8
    assert (demo_run["out"] / "classifier" / "model.bin").exists()
    kept = kept_documents(demo_run["out"])
    drops = drop_records(demo_run["out"])
    cited = [item["id"] for item in demo_run["plants"]["cited_urls"]]
    uncited = [item["id"] for item in demo_run["plants"]["uncited_urls"]]
    assert sum(i in kept for i in cited) >= 0.95 * len(cited)
    assert all(json.loads(kept[i]["meta"])["reference_score"] >= 0.25 for i in cited if i in kept)
    dropped_as_unlike = [i for i in uncited if drops.get(i, {}).get("reason") == "not_reference_like"]
    assert len(dropped_as_unlike) >= 0.8 * len(uncited)


def test_rejects_hold_an_example_of_every_drop_reason(demo_run, capsys):
    ledger = json.loads((demo_run["out"] / "ledger.json").read_text())
    rows = [row for path in glob.glob(str(demo_run["out"] / "rejects" / "*.parquet"))
            for row in pq.read_table(path).to_pylist()]
    sampled = {(r["source"], r["stage"], r["reason"]) for r in rows}
    for source, entry in ledger["sources"].items():
        for stage, reasons in entry["dropped_by_stage"].items():
            for reason in reasons:
                assert (source, stage, reason) in sampled
    drops = drop_records(demo_run["out"])
    assert all(drops[r["id"]]["reason"] == r["reason"] for r in rows)
    assert main(["inspect", str(demo_run["out"] / "rejects"), "--reason", "language_fr"]) == 0
    printed = capsys.readouterr().out
    assert "language_fr" in printed and "<html" in printed  # a page dropped before extraction: its HTML


def test_every_cleaned_document_decodes_back_exactly(demo_run):
    result = demo_run["result"]
    sp = spm.SentencePieceProcessor(model_file=result["tokenizer"]["path"])
    kept = kept_documents(demo_run["out"])
    assert kept
    for doc_id, row in kept.items():
        assert sp.decode(sp.encode(row["text"])) == row["text"], doc_id
    # and what is stored in the shards is exactly that text, after a BOS
    shard_rows = 0
    for path in glob.glob(str(demo_run["out"] / "shards" / "*" / "*.parquet")):
        table = pq.read_table(path)
        assert table.schema.field("tokens").type.value_type == pa.uint16()
        for row in table.to_pylist():
            assert row["tokens"][0] == sp.bos_id()
            assert row["num_tokens"] == len(row["tokens"])
            assert sp.decode(row["tokens"][1:]) == kept[row["doc_id"]]["text"]
            shard_rows += 1
    assert shard_rows == len(kept)


def test_manifest_and_inspect_agree_with_the_shards(demo_run, capsys):
    manifest = json.loads((demo_run["out"] / "shards" / "manifest.json").read_text())
    summary = summarize(str(demo_run["out"] / "shards"))
    assert set(summary["sources"]) == set(manifest["sources"])
    for source, entry in manifest["sources"].items():
        assert summary["sources"][source]["tokens"] == entry["tokens"] > 0
        assert summary["sources"][source]["documents"] == entry["documents"]
        for shard in entry["shards"]:
            assert os.path.exists(demo_run["out"] / "shards" / shard["path"])
    assert abs(sum(e["share"] for e in manifest["sources"].values()) - 1) < 1e-4
    assert manifest["tokenizer"]["sha256"] == demo_run["result"]["tokenizer"]["sha256"]
    # the CLI prints the same per-source token counts
    assert main(["inspect", str(demo_run["out"] / "shards")]) == 0
    printed = capsys.readouterr().out
    for source, entry in manifest["sources"].items():
        line = next(line for line in printed.splitlines() if line.startswith(source + " "))
        assert str(entry["tokens"]) in line.split()
    # and every check of `inspect verify` passes on what the run wrote
    assert main(["inspect", "verify", str(demo_run["out"] / "shards")]) == 0, capsys.readouterr().out


def test_the_tokenizer_folder_loads_in_hugging_face(demo_run):
    transformers = pytest.importorskip("transformers")
    folder = demo_run["out"] / "tokenizer"
    sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    hf = transformers.LlamaTokenizerFast.from_pretrained(str(folder))
    for row in list(kept_documents(demo_run["out"]).values())[:200]:
        assert hf.encode(row["text"]) == sp.encode(row["text"], add_bos=True), row["id"]


def test_training_on_the_shards_lowers_the_loss(demo_run, demo_trained):
    assert demo_trained == 0  # `llamapipe train CONFIG --fresh`'s exit code
    lines = (demo_run["out"] / "train" / "metrics.jsonl").read_text().splitlines()
    metrics = [json.loads(line) for line in lines]
    assert {"step", "loss", "lr", "tokens_per_s"} <= set(metrics[0])
    assert metrics[-1]["step"] == 40
    first = sum(m["loss"] for m in metrics[:2]) / 2
    last = sum(m["loss"] for m in metrics[-2:]) / 2
    assert last < first - 0.5
    assert (demo_run["out"] / "train" / "checkpoint.pt").exists()


def test_the_trained_model_plans_samples_and_loads_in_transformers(demo_run, capsys, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llamapipe.model.checkpoints import load_model

    config, run = demo_run["config_path"], demo_run["out"] / "train"
    if not (run / "checkpoint.pt").exists():  # when run alone, without the training test
        assert main(["train", config, "--steps", "5", "--fresh"]) == 0
    capsys.readouterr()
    assert main(["train", config, "--plan"]) == 0
    vocab = json.loads((demo_run["out"] / "shards" / "manifest.json").read_text())["tokenizer"]["vocab_size"]
    model, _ = load_model(run)
    assert f"{model.num_params():,} parameters" in capsys.readouterr().out  # with the shards' vocabulary
    assert model.params.vocab_size == vocab

    assert main(["generate", str(run), "--prompt", "The", "--max-new-tokens", "20"]) == 0
    assert capsys.readouterr().out.startswith("The")

    assert main(["export-hf", str(run), str(tmp_path / "hf")]) == 0
    theirs = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    shard = sorted((demo_run["out"] / "shards" / "c4").glob("*.parquet"))[0]
    tokens = torch.tensor([pq.read_table(shard, columns=["tokens"]).column("tokens")[0].as_py()[:64]])
    with torch.no_grad():
        assert (model(tokens)[0] - theirs(tokens).logits).abs().max().item() <= 1e-4
    assert theirs.generate(tokens[:, :8], max_new_tokens=5, do_sample=False).shape[1] > 8
    # the pipeline's tokenizer.json went along: transformers tokenizes as the shards were tokenized
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    processor = spm.SentencePieceProcessor(model_file=str(demo_run["out"] / "tokenizer" / "tokenizer.model"))
    text = "The river ran past the old mill in 1887."
    assert tokenizer(text)["input_ids"] == [1] + processor.encode(text)


def test_duplicate_clusters_are_in_the_ledger_and_inspect_shows_them_side_by_side(demo_run, capsys):
    out = demo_run["out"]
    stats = json.loads((out / "ledger.json").read_text())["dedup"]
    drops = drop_records(out)
    plants = demo_run["plants"]
    pairs = [pair for kind in ("near_duplicates", "exact_duplicates", "cross_source_duplicates")
             for pair in plants[kind]]
    at_dedup = [pair for pair in pairs
                if any(drops.get(item["id"], {}).get("stage") == "dedup" for item in pair)]
    # each planted pair the dedup stage resolved is one cluster of two; nothing else clusters
    assert stats["clusters"] == len(at_dedup) and stats["size_histogram"] == {"2": len(at_dedup)}
    assert stats["duplicates_dropped"] == sum(1 for d in drops.values() if d["stage"] == "dedup")
    assert stats["cross_source_pairs"] == {"c4~commoncrawl": len(plants["cross_source_duplicates"])}
    assert stats["components"]["converged"] and stats["lsh"]["book_pairs_confirmed"] > 0  # the book edition

    assert main(["inspect", str(out), "--dups", "50"]) == 0
    printed = capsys.readouterr().out
    examples = [json.loads(line) for line in (out / "dedup" / "examples.jsonl").read_text().splitlines()]
    assert len(examples) == demo_run["config"].dedup.examples
    for example in examples:
        survivor = example["survivor"]
        assert f"kept {survivor}" in printed
        for member in example["members"]:
            if member["id"] != survivor:  # shown beside the kept copy, and dropped as its duplicate
                assert f"dropped {member['id']}" in printed
                assert drops[member["id"]]["detail"].endswith(f"copy of {survivor}")
