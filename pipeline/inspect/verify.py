"""`llamapipe inspect verify PATH`: are these the shards the manifest describes, whole and well-formed?

Per shard: readable Parquet with the documented columns and types; footer of this schema version, naming
the manifest's tokenizer, vocabulary and the source of its folder; every token id < vocab size; every
document starting with BOS and with `num_tokens == len(tokens)`; no nulls; doc_ids sorted, unique and in
the shard their hash names. Against the manifest: every shard listed and present, its sha256, documents
and tokens as recorded, the sources' totals, the tokenizer file's sha256. One pass over each file (plus
one for its sha256). Shards may be local or on an object store (s3://, gs://), read through `storage`.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llamapipe.pipeline.inspect.shards import find_manifest, shard_files
from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.manifest import manifest_problems, read_manifest
from llamapipe.tokenizer.format.shards import SCHEMA_VERSION, footer, schema_problems, shard_of


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shards: int = 0
    documents: int = 0
    tokens: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = [f"note: {n}" for n in self.notes] + [f"MISMATCH: {p}" for p in self.problems]
        verdict = "OK" if self.ok else f"FAILED: {len(self.problems)} problem(s)"
        lines.append(f"{verdict} - {self.shards} shard(s), {self.documents} documents, {self.tokens} tokens "
                     "checked")
        return "\n".join(lines)


def verify(path: str, tokenizer_path: str | None = None) -> Report:
    report = Report()
    files = [storage.absolute(f) for f in shard_files(path)]
    manifest_path = find_manifest(path)
    manifest = expected = None
    if manifest_path is None:
        report.notes.append("no manifest.json found: checked the shards on their own")
    else:
        manifest = read_manifest(manifest_path)
        root = storage.dirname(manifest_path)  # absolute, as find_manifest's paths are
        expected = _manifest_shards(manifest, root)
        report.problems += [p for p in manifest_problems(manifest, root, check_sha256=False,
                                                         check_footers=False)
                            if "does not exist" not in p]  # missing shards are reported below, in scope
        tokenizer_path = tokenizer_path or _manifest_tokenizer(manifest, root)
    if tokenizer_path and storage.is_file(tokenizer_path) and manifest is not None:
        actual = storage.sha256(tokenizer_path)
        if actual != manifest["tokenizer"].get("sha256"):
            report.problems.append(f"tokenizer {tokenizer_path} has sha256 {actual}, the manifest says "
                                   f"{manifest['tokenizer'].get('sha256')}")
    elif manifest is not None:
        report.notes.append(f"tokenizer {tokenizer_path} not found: its sha256 was not checked")

    for file in files:
        entry = expected.pop(file, None) if expected is not None else None
        if expected is not None and entry is None:
            report.problems.append(f"{file}: not listed in the manifest")
        _verify_shard(file, entry, manifest, report)
    if expected is not None:
        scope = storage.absolute(path)
        separator = "/" if storage.is_remote(scope) else os.sep
        for missing, (source, _) in sorted(expected.items()):
            if missing == scope or missing.startswith(scope.rstrip(separator) + separator):
                report.problems.append(f"{missing}: shard of {source} listed in the manifest is missing")
    return report


def _manifest_tokenizer(manifest: dict, root: str) -> str | None:
    relative = (manifest.get("tokenizer") or {}).get("path")
    return storage.resolve(root, relative) if relative else None


def _manifest_shards(manifest: dict, root: str) -> dict[str, tuple[str, dict]]:
    shards = {}
    for source, entry in (manifest.get("sources") or {}).items():
        for shard in entry.get("shards", []):
            shards[storage.resolve(root, shard["path"])] = (source, shard)
    return shards


def _verify_shard(file: str, entry: tuple[str, dict] | None, manifest: dict | None, report: Report) -> None:
    with ExitStack() as opened:
        try:
            stream = opened.enter_context(storage.open_read(file))  # open while the rows are read
            parquet = pq.ParquetFile(stream)
            meta = footer(stream)
        except (pa.ArrowException, OSError) as error:
            report.problems.append(f"{file}: not a readable Parquet file ({error})")
            return
        _verify_contents(file, parquet, meta, entry, manifest, report)


def _verify_contents(file: str, parquet: pq.ParquetFile, meta: dict, entry: tuple[str, dict] | None,
                     manifest: dict | None, report: Report) -> None:
    problems = report.problems
    report.shards += 1
    source, recorded = entry if entry else (None, None)
    tokenizer = (manifest or {}).get("tokenizer") or {}
    vocab_size = tokenizer.get("vocab_size") or _int(meta.get("vocab_size"))
    bos_id = tokenizer.get("bos_id", _int(meta.get("bos_id"), 1))
    problems += [f"{file}: {p}" for p in schema_problems(parquet.schema_arrow, vocab_size)]
    if not meta:
        problems.append(f"{file}: no llamapipe footer metadata (source, tokenizer, schema version)")
    else:
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            problems.append(f"{file}: footer schema version {meta.get('schema_version')}, "
                            f"not {SCHEMA_VERSION}")
        if tokenizer.get("sha256") and meta.get("tokenizer_sha256") != tokenizer["sha256"]:
            problems.append(f"{file}: made by another tokenizer (footer sha256 "
                            f"{meta.get('tokenizer_sha256')}, manifest {tokenizer['sha256']})")
        if vocab_size and _int(meta.get("vocab_size")) != vocab_size:
            problems.append(f"{file}: footer vocab size {meta.get('vocab_size')}, manifest {vocab_size}")
        if source and meta.get("source") != source:
            problems.append(f"{file}: footer source {meta.get('source')!r}, manifest {source!r}")
    if any(p.startswith(f"{file}: column") for p in problems):
        return  # the content checks below need the documented columns
    source = source or meta.get("source")
    documents, tokens = _verify_rows(file, parquet, meta, source, vocab_size, bos_id, problems)
    report.documents += documents
    report.tokens += tokens
    if recorded is not None:
        if (documents, tokens) != (recorded.get("documents"), recorded.get("tokens")):
            problems.append(f"{file}: {documents} documents / {tokens} tokens, the manifest says "
                            f"{recorded.get('documents')} / {recorded.get('tokens')}")
        if storage.sha256(file) != recorded.get("sha256"):
            problems.append(f"{file}: sha256 differs from the manifest's (the file changed after the run)")


def _verify_rows(file, parquet, meta, source, vocab_size, bos_id, problems) -> tuple[int, int]:
    """Stream the row groups; returns (documents, tokens) and appends at most one problem per kind."""
    found: dict[str, str] = {}
    index, count = _int(meta.get("shard_index")), _int(meta.get("num_shards"))
    previous = None
    documents = tokens = 0
    try:
        for group in range(parquet.num_row_groups):
            batch = parquet.read_row_group(group)
            for name in batch.column_names:
                if batch.column(name).null_count:
                    found.setdefault("nulls", f"column {name} has nulls")
            column = batch.column("tokens").combine_chunks()
            offsets = column.offsets.to_numpy()
            values = column.values.to_numpy()[offsets[0]:offsets[-1]]
            lengths = np.diff(offsets)
            documents += len(lengths)
            tokens += int(lengths.sum())
            if vocab_size and len(values) and int(values.max()) >= vocab_size:
                found.setdefault("vocab", f"token id {int(values.max())} >= vocab size {vocab_size}")
            if np.any(lengths == 0) or np.any(values[offsets[:-1][lengths > 0] - offsets[0]] != bos_id):
                found.setdefault("bos", f"a document does not start with BOS ({bos_id})")
            if not np.array_equal(batch.column("num_tokens").to_numpy(), lengths):
                found.setdefault("num_tokens", "num_tokens differs from the length of tokens")
            if source and not pc.all(pc.equal(batch.column("source"), source)).as_py():
                found.setdefault("source", f"a row's source is not {source!r}")
            ids = batch.column("doc_id").to_pylist()
            in_order = ids if previous is None else [previous, *ids]
            if any(a >= b for a, b in zip(in_order, in_order[1:], strict=False)):
                found.setdefault("order", "doc_ids are not sorted and unique")
            previous = ids[-1] if ids else previous
            if count and any(shard_of(i, count) != index for i in ids):
                found.setdefault("hash", f"a document whose id does not hash to shard {index} of {count}")
    except (pa.ArrowException, OSError) as error:
        found["read"] = f"unreadable content ({error})"
    problems += [f"{file}: {message}" for message in found.values()]
    return documents, tokens


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
