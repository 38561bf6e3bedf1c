"""`OUT/report.html`: what a run did, gathered from the files it wrote, drawn by `report_html`.

Every number comes from a file of the run: OUT/run.json (config, stage timings, tokenizer, classifier),
OUT/ledger.json (funnel, bytes, lengths, kept languages, duplicate clusters, PII redactions, quality-model
score histograms), OUT/shards/manifest.json
(mixture), OUT/documents (kept examples and the tokenizer sample), OUT/rejects (rejected examples),
OUT/tokenizer/tokenizer.model and OUT/train/metrics.jsonl. Reads are bounded: at most
`SAMPLE_DOCUMENTS` documents per source and `REJECT_ROWS` rejects are read, whatever the corpus size.
A part the run has not written (a failed run, no training yet) is reported as missing. OUT may be local
or on an object store (s3://, gs://): every file is read and written through `storage`.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from llamapipe.pipeline.output.layout import OutputLayout
from llamapipe.pipeline.stages.registry import STAGE_ORDER, stage_rank
from llamapipe.tokenizer.format import storage

SAMPLE_DOCUMENTS = 200  # per source, for tokens per word and the kept examples
SAMPLE_CHARS = 20_000  # of each sampled document: enough for a ratio, bounded for books
EXAMPLES = 3  # kept examples shown per source
REJECTED_EXAMPLES = 4
EXAMPLE_CHARS = 700
REJECT_ROWS = 20_000  # rejects read at most, looking for distinct reasons
CURVE_POINTS = 2_000  # training metrics lines kept for the curves (evenly spaced)


class NotARunError(FileNotFoundError):
    """The folder holds no llamapipe run (no readable run.json)."""


def refresh_report(out: str) -> str:
    """What `llamapipe run` and `train` print after writing the report. The report is a by-product of a
    finished run: on an object store that cannot be reached (no client for its scheme, credentials,
    network) it is not written and the error is told, so that the run or training still succeeds."""
    try:
        return f"report -> {write_report(out)}"
    except Exception as exc:  # each store's client raises its own types (Beam, boto3, google-cloud)
        if not storage.is_remote(out):
            raise
        return (f"report: not written for {out} (remote): {type(exc).__name__}: {exc}; run "
                f"`llamapipe report {out}` once the store is reachable")


def write_report(out: str) -> str:
    """Gather and draw OUT's report into OUT/report.html (complete or absent); returns its path."""
    from llamapipe.pipeline.report.html import render

    html = render(gather(out))
    path = OutputLayout(out).report
    storage.write_text(path, html)
    return path


def gather(out: str) -> dict:
    layout = OutputLayout(out)
    run = _read_run(out)
    ledger = _read_json(layout.ledger)
    manifest = _read_json(layout.manifest)
    sources = list((ledger or {}).get("sources") or run["config"].get("sources") or {})
    samples = {name: sample_documents(storage.join(layout.documents, name)) for name in sources}
    tokenizer_path = layout.tokenizer
    return {
        "out": storage.absolute(out),
        "run": {
            "stages": run.get("stages", {}),
            "tokenizer": run.get("tokenizer"),
            "classifier": run.get("classifier"),
            "sources": sources,
        },
        "skipped_stages": (ledger or {}).get("skipped_stages", {}),
        "funnel": funnel(ledger) if ledger else None,
        "languages": languages(ledger) if ledger else None,
        "lengths": {s: e.get("length_histogram") for s, e in ledger["sources"].items()} if ledger else None,
        "dedup": (ledger or {}).get("dedup"),
        "mixture": manifest,
        "tokenizer": tokenizer_stats(tokenizer_path, samples) if storage.is_file(tokenizer_path) else None,
        "examples": {
            "kept": {s: [_example(d) for d in docs[:EXAMPLES]] for s, docs in samples.items()},
            "rejected": rejected_examples(
                layout.rejects_dir,
                {s: e["dropped_by_stage"] for s, e in ledger["sources"].items()} if ledger else None),
        },
        "training": training_curves(layout.train_metrics),
        "decontamination": decontamination(run, ledger, layout),
        "pii": {s: e["pii"] for s, e in ledger["sources"].items() if e.get("pii")} if ledger else None,
        "pii_config": run["config"].get("pii"),
        "quality_scores": ({s: e["quality_scores"] for s, e in ledger["sources"].items()
                            if e.get("quality_scores")} if ledger else None),
        "quality_models": run["config"].get("quality_models") or [],
    }


def decontamination(run: dict, ledger: dict | None, layout: OutputLayout) -> dict | None:
    """Documents removed per evaluation set and source (the ledger's `dropped_by_group`), their tokens
    estimated from the characters removed and the run's measured characters per token of each source
    (the tokenizer is trained after cleaning, on kept text: the dropped texts are not tokenized), the
    index (run.json) and a few matches (OUT/decontamination/examples.jsonl). None when not configured."""
    from llamapipe.pipeline.stages.decontamination import STAGE, read_examples_file

    settings = (run.get("config") or {}).get("decontamination") or {}
    if not settings.get("sets"):
        return None
    chars_per_token = ((run.get("tokenizer") or {}).get("chars_per_token")) or {}
    rows = []
    for source, entry in ((ledger or {}).get("sources") or {}).items():
        for set_name, counts in (entry.get("dropped_by_group") or {}).get(STAGE, {}).items():
            ratio = chars_per_token.get(source)
            rows.append({"set": set_name, "source": source, **counts,
                         "tokens_estimated": round(counts["chars"] / ratio) if ratio else None})
    order = list(settings["sets"])
    rows.sort(key=lambda r: (order.index(r["set"]) if r["set"] in order else len(order), r["source"]))
    return {"settings": {k: settings.get(k) for k in ("ngram", "min_words", "sources")},
            "sets": order, "index": run.get("decontamination"), "rows": rows,
            "examples": read_examples_file(layout.decontamination_examples)}


def _read_json(path: str) -> dict | None:
    return storage.read_json(path) if storage.is_file(path) else None


def _read_run(out: str) -> dict:
    marker = OutputLayout(out).run
    hint = "pass the `output` folder of a config that `llamapipe run` has run"
    if not storage.is_dir(out):
        raise NotARunError(f"{out!r} is not a folder; {hint}")
    try:
        run = _read_json(marker)
    except (OSError, ValueError) as exc:
        raise NotARunError(f"{marker!r} is not a readable llamapipe run record ({exc})") from None
    if not isinstance(run, dict) or not isinstance(run.get("config"), dict):
        raise NotARunError(f"{out!r} holds no llamapipe run (no run.json); {hint}")
    return run


def funnel(ledger: dict) -> dict:
    """Per source: documents and bytes in and kept, and drops per stage (ledger order) and reason."""
    rows = {}
    for name, entry in ledger["sources"].items():
        rows[name] = {
            "in": entry["in"], "kept": entry["kept"], "dropped": entry["dropped"],
            "bytes_in": entry.get("bytes_in"), "bytes_kept": entry.get("bytes_kept"),
            "chars_in": entry.get("chars_in"), "chars_kept": entry.get("chars_kept"),
            "by_stage": {stage: sum(by.values()) for stage, by in entry["dropped_by_stage"].items()},
            "by_reason": entry["dropped_by_stage"],
        }
    stages = [s for s in STAGE_ORDER if any(s in r["by_stage"] for r in rows.values())]
    stages += sorted({s for r in rows.values() for s in r["by_stage"]} - set(stages))
    return {"sources": rows, "stages": stages, "totals": ledger["totals"]}


def languages(ledger: dict) -> dict:
    """Per source: kept documents by language, and the documents language ID dropped, by language."""
    result = {}
    for name, entry in ledger["sources"].items():
        dropped: dict[str, int] = {}
        for reason, count in entry["dropped_by_stage"].get("langid", {}).items():
            language = reason[len("language_"):] if reason.startswith("language_") else reason
            dropped[language] = dropped.get(language, 0) + count
        result[name] = {"kept": entry.get("kept_languages", {}), "dropped": dropped}
    return result


def sample_documents(folder: str, limit: int = SAMPLE_DOCUMENTS) -> list[dict]:
    """The first `limit` documents of a source (files in name order), texts cut to SAMPLE_CHARS."""
    docs = []
    for row in _rows(folder, limit, columns=["id", "text", "url", "language"]):
        row["chars"] = len(row["text"])
        row["text"] = row["text"][:SAMPLE_CHARS]
        docs.append(row)
    return docs


def tokenizer_stats(model_path: str, samples: dict[str, list[dict]]) -> dict:
    """Tokens per whitespace-separated word and characters per token, per source, on the samples."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=storage.read_bytes(model_path))
    per_source = {}
    for name, docs in samples.items():
        if not docs:
            continue
        texts = [d["text"] for d in docs]
        tokens = sum(len(ids) for ids in processor.encode(texts))
        words = sum(len(t.split()) for t in texts)
        chars = sum(len(t) for t in texts)
        per_source[name] = {
            "documents": len(docs), "words": words, "tokens": tokens, "chars": chars,
            "tokens_per_word": round(tokens / words, 3) if words else None,
            "chars_per_token": round(chars / tokens, 3) if tokens else None,
        }
    return {"vocab_size": processor.get_piece_size(), "sources": per_source}


def _example(doc: dict) -> dict:
    text = doc["text"]
    return {"id": doc["id"], "url": doc.get("url") or "", "language": doc.get("language") or "",
            "chars": doc.get("chars", len(text)), "text": text[:EXAMPLE_CHARS]}


def rejected_examples(folder: str, drop_counts: dict[str, dict] | None = None,
                      per_source: int = REJECTED_EXAMPLES, max_rows: int = REJECT_ROWS) -> dict:
    """Per source up to `per_source` sampled drops: the best of each stage first, in pipeline order (the
    stage's most frequent reason by `drop_counts`, the ledger's dropped_by_stage per source), drops
    without text last, so that a few examples show the breadth of what was removed."""
    first: dict[tuple[str, str, str], dict] = {}  # the first sampled drop of each (source, stage, reason)
    for row in _rows(folder, max_rows):
        key = (row["source"], row["stage"], row["reason"])
        if key not in first:
            text = row.get("text") or ""
            first[key] = {"id": row["id"], "stage": row["stage"], "reason": row["reason"],
                          "detail": row.get("detail") or "", "chars": len(text), "text": text[:EXAMPLE_CHARS]}
    chosen: dict[str, list[dict]] = {}
    for source in dict.fromkeys(key[0] for key in first):
        counts = (drop_counts or {}).get(source, {})

        def rank(e: dict, counts: dict = counts) -> tuple:
            return (not e["text"], stage_rank(e["stage"]), -counts.get(e["stage"], {}).get(e["reason"], 0),
                    e["reason"])

        candidates = sorted((e for key, e in first.items() if key[0] == source), key=rank)
        best_of_stage = list({e["stage"]: e for e in reversed(candidates)}.values())
        picked = sorted(best_of_stage, key=rank) + [e for e in candidates if e not in best_of_stage]
        chosen[source] = sorted(picked[:per_source], key=rank)
    return chosen


def _rows(folder: str, max_rows: int, columns: list[str] | None = None):
    """The first `max_rows` rows of the Parquet files of a folder (in name order), streamed."""
    read = 0
    for path in storage.glob(storage.join(folder, "*.parquet")):
        with storage.open_read(path) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=256, columns=columns):
                for row in batch.to_pylist():
                    if read >= max_rows:
                        return
                    read += 1
                    yield row


def training_curves(path: str) -> dict | None:
    """Training loss per logged step and held-out loss per source at evaluation steps."""
    if not storage.is_file(path):
        return None
    records = [json.loads(line) for line in storage.read_text(path).split("\n") if line.strip()]
    if not records:
        return None
    evals: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        for source, loss in (record.get("source_loss") or {}).items():
            evals.setdefault(source, []).append((record["step"], loss))
    stride = max(1, len(records) // CURVE_POINTS)
    curve = records[::stride]
    if curve[-1] is not records[-1]:
        curve.append(records[-1])
    last = records[-1]
    return {
        "steps": [r["step"] for r in curve],
        "loss": [r["loss"] for r in curve],
        "eval": evals,
        "last": {k: last.get(k) for k in ("step", "loss", "tokens", "tokens_per_s", "elapsed_s")},
        "first_loss": records[0]["loss"],
    }
