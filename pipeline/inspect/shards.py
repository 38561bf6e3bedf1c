"""What is in a token-shard file or folder: `summary`, `head`, `show`, `stats` (and `verify`, in
`verify_shards`). Every function takes a shard file, a source folder or the shards folder; the manifest
and the tokenizer are found next to the shards (up to three folders up) unless given. Paths may be local
or on an object store (s3://, gs://): files are read through `storage`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq

from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.manifest import MANIFEST_NAME, read_manifest, shard_stats
from llamapipe.tokenizer.format.shards import SHARD_NAME, footer, shard_of


def find_manifest(path: str) -> str | None:
    folder = storage.absolute(path if storage.is_dir(path) else storage.dirname(path))
    for _ in range(3):
        candidate = storage.join(folder, MANIFEST_NAME)
        if storage.is_file(candidate):
            return candidate
        folder = storage.dirname(folder)  # (an object store's bucket is its own parent)
    return None


def shards_folder(path: str) -> str:
    """A run's output folder stands for its shards (`llamapipe inspect OUT` = `inspect OUT/shards`)."""
    if storage.is_dir(path) and storage.is_file(storage.join(path, "shards", MANIFEST_NAME)) \
            and not storage.is_file(storage.join(path, MANIFEST_NAME)):
        return storage.join(path, "shards")
    return path


def shard_files(path: str) -> list[str]:
    if storage.is_file(path):
        return [path]
    if not storage.is_dir(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    files = storage.glob(storage.join(path, "**", "*.parquet"))
    if not files:
        raise FileNotFoundError(f"{path}: no .parquet shard found")
    for file in files:  # a footer read each: a clear message instead of a KeyError deep in pyarrow
        with storage.open_read(file) as f:
            columns = pq.read_schema(f).names
        if "num_tokens" not in columns:
            raise FileNotFoundError(f"{file} is not a token shard (no num_tokens column); inspect reads a "
                                    "shard, a folder of shards, OUT/shards or OUT")
    return files


def shard_source(path: str) -> str:
    return footer(path).get("source") or storage.basename(storage.dirname(storage.absolute(path)))


def tokenizer_for(path: str, tokenizer_path: str | None = None) -> str:
    """The tokenizer.model to decode with: the one given, else the manifest's."""
    if tokenizer_path:
        return tokenizer_path
    manifest_path = find_manifest(path)
    if manifest_path is None:
        raise FileNotFoundError("no manifest.json found near the shards: pass --tokenizer")
    relative = read_manifest(manifest_path)["tokenizer"]["path"]
    found = storage.resolve(storage.dirname(manifest_path), relative)
    if not storage.is_file(found):
        raise FileNotFoundError(f"the manifest's tokenizer {found} does not exist: pass --tokenizer")
    return found


def _processor(path: str, tokenizer_path: str | None):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=storage.read_bytes(tokenizer_for(path, tokenizer_path)))


# ---------------------------------------------------------------------------------------------- summary


def summarize(path: str) -> dict:
    """Documents and tokens per source (read from the shards), with the manifest's shares and epochs."""
    per_source: dict[str, dict] = {}
    for file in shard_files(path):
        stats = shard_stats(file)
        entry = per_source.setdefault(shard_source(file), {"documents": 0, "tokens": 0, "shards": 0})
        entry["documents"] += stats["documents"]
        entry["tokens"] += stats["tokens"]
        entry["shards"] += 1
    manifest_path = find_manifest(path)
    manifest = read_manifest(manifest_path) if manifest_path else None
    order = list(manifest["sources"]) if manifest else []
    per_source = dict(sorted(per_source.items(), key=lambda item: (
        order.index(item[0]) if item[0] in order else len(order), item[0])))
    total = sum(e["tokens"] for e in per_source.values())
    for source, entry in per_source.items():
        entry["token_share"] = entry["tokens"] / total if total else 0.0
        if manifest and source in manifest["sources"]:
            target = manifest["sources"][source]
            entry["share"] = target["share"]
            entry["target_share"] = target.get("configured_share", target["share"])
            entry["epochs"] = target["epochs"]
            entry["manifest_tokens"] = target["tokens"]
    return {"sources": per_source, "manifest": manifest_path, "total_tokens": total,
            "token_budget": manifest.get("token_budget") if manifest else None}


def format_summary(summary: dict) -> str:
    header = (f"{'source':<14}{'shards':>7}{'documents':>11}{'tokens':>13}{'stored':>8}{'sampled':>9}"
              f"{'target':>8}{'epochs':>8}")
    lines = [header, "-" * len(header)]

    def optional(entry, key, width, spec):
        return f"{entry[key]:>{width}{spec}}" if key in entry else f"{'-':>{width}}"

    for source, e in summary["sources"].items():
        lines.append(f"{source:<14}{e['shards']:>7}{e['documents']:>11}{e['tokens']:>13}{e['token_share']:>8.3f}"
                     f"{optional(e, 'share', 9, '.3f')}{optional(e, 'target_share', 8, '.3f')}"
                     f"{optional(e, 'epochs', 8, '.2f')}")
    lines.append("-" * len(header))
    documents = sum(e["documents"] for e in summary["sources"].values())
    lines.append(f"{'total':<14}{'':>7}{documents:>11}{summary['total_tokens']:>13}")
    lines.append("stored = part of the tokens stored here; sampled = part of the training tokens drawn from "
                 "the source (manifest share); target = the configured mixture share; epochs = passes over "
                 "the source" + (f" (trained-token budget {summary['token_budget']})"
                                 if summary.get("token_budget") else ""))
    if summary["manifest"]:
        lines.append(f"manifest: {summary['manifest']}")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- head and show


def decode_documents(path: str, count: int, tokenizer_path: str | None = None) -> Iterator[tuple]:
    """Yield (doc_id, source, num_tokens, text) for the first `count` documents."""
    if count <= 0:
        return
    sp = _processor(path, tokenizer_path)
    shown = 0
    for file in shard_files(path):
        with storage.open_read(file) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=64):
                for row in batch.to_pylist():
                    yield row["doc_id"], row["source"], row["num_tokens"], sp.decode(row["tokens"])
                    shown += 1
                    if shown >= count:
                        return


def find_document(path: str, doc_id: str) -> tuple[str, dict] | None:
    """(shard file, row) of a document. A shard named `-SSSSS-of-NNNNN` holds exactly the ids that hash
    to SSSSS, so only that file of each source is opened; row-group statistics skip the rest."""
    files = shard_files(path)
    candidates = []
    for file in files:
        match = SHARD_NAME.search(storage.basename(file))
        if match is None or shard_of(doc_id, int(match["count"])) == int(match["index"]):
            candidates.append(file)
    for file in candidates:
        with storage.open_read(file) as f:
            table = pq.read_table(f, filters=[("doc_id", "=", doc_id)])
        if table.num_rows:
            return file, table.slice(0, 1).to_pylist()[0]
    return None


def show_document(path: str, doc_id: str, tokenizer_path: str | None = None, max_ids: int = 64) -> str:
    found = find_document(path, doc_id)
    if found is None:
        raise KeyError(f"document {doc_id!r} is not in {path}")
    file, row = found
    sp = _processor(path, tokenizer_path)
    ids = row["tokens"]
    pieces = " ".join(sp.id_to_piece(i) for i in ids[:max_ids])
    more = f" ... (+{len(ids) - max_ids})" if len(ids) > max_ids else ""
    return "\n".join([
        f"doc_id:     {row['doc_id']}",
        f"source:     {row['source']}",
        f"shard:      {file}",
        f"num_tokens: {row['num_tokens']}",
        f"ids:        {ids[:max_ids]}{more}",
        f"pieces:     {pieces}{more}",
        f"--- text ---\n{sp.decode(ids)}",
    ])


# ---------------------------------------------------------------------------------------------- stats

PERCENTILES = (1, 10, 50, 90, 99)


def length_stats(path: str) -> dict:
    """Per source: document lengths in tokens (percentiles, mean, max) and a power-of-two histogram.
    Reads only the `num_tokens` column."""
    lengths: dict[str, list[np.ndarray]] = {}
    for file in shard_files(path):
        with storage.open_read(file) as f:
            column = pq.read_table(f, columns=["num_tokens"]).column(0).to_numpy()
        lengths.setdefault(shard_source(file), []).append(column)
    result = {}
    for source, parts in lengths.items():
        values = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        if not len(values):
            result[source] = {"documents": 0, "tokens": 0}
            continue
        buckets = np.bincount(np.ceil(np.log2(np.maximum(values, 1))).astype(int))
        result[source] = {
            "documents": int(len(values)),
            "tokens": int(values.sum()),
            "mean": float(values.mean()),
            "min": int(values.min()),
            "max": int(values.max()),
            **{f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES},
            # bucket b holds lengths in (2**(b-1), 2**b]
            "histogram": {int(2**b): int(n) for b, n in enumerate(buckets) if n},
        }
    return result


def format_stats(stats: dict, width: int = 40) -> str:
    header = (f"{'source':<14}{'documents':>10}{'tokens':>13}{'mean':>9}{'min':>7}"
              + "".join(f"{'p' + str(p):>8}" for p in PERCENTILES) + f"{'max':>9}")
    lines = ["document length in tokens (BOS included)", header, "-" * len(header)]
    for source, s in stats.items():
        if not s["documents"]:
            lines.append(f"{source:<14}{0:>10}")
            continue
        lines.append(f"{source:<14}{s['documents']:>10}{s['tokens']:>13}{s['mean']:>9.0f}{s['min']:>7}"
                     + "".join(f"{s['p' + str(p)]:>8.0f}" for p in PERCENTILES) + f"{s['max']:>9}")
    for source, s in stats.items():
        if not s.get("histogram"):
            continue
        lines.append(f"\n{source}: documents by length (tokens <=)")
        peak = max(s["histogram"].values())
        for upper, count in s["histogram"].items():
            bar = "#" * max(1, round(width * count / peak))
            lines.append(f"  {upper:>9}  {count:>8}  {bar}")
    return "\n".join(lines)
