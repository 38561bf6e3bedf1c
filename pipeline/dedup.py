"""Exact and MinHash near-duplicate removal, as Beam shuffles (no step sees the whole corpus).

Exact: documents grouped by the hash of their normalised text; one copy survives.

Near: datasketch MinHash over word n-gram shingles; LSH bands x rows from datasketch's
optimal-parameter routine for the threshold. Each document emits one key per band; a bucket
(documents sharing a band) yields candidate pairs, kept only when the estimated Jaccard similarity
reaches the threshold. A document is dropped when it has a confirmed near-duplicate that ranks
better. Which copy survives is deterministic: source priority, then the longest text, then the
smallest id. (Full connected components, so that chains A~B~C keep exactly one, are issue P4.)
"""

from __future__ import annotations

import hashlib
import re
import struct

import apache_beam as beam
import numpy as np

from llamapipe.pipeline.config import DedupConfig
from llamapipe.sources.base import DROPPED, make_drop

STAGE = "dedup"
_NON_WORD = re.compile(r"[^\w\s]", re.UNICODE)


def normalise(text: str) -> str:
    """Lowercase, drop punctuation, collapse whitespace: the text identity used by exact dedup."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def rank_key(doc_source: str, length: int, doc_id: str, priority: list[str]) -> tuple:
    """Smaller is better: source priority, then longer text, then smaller id."""
    index = priority.index(doc_source) if doc_source in priority else len(priority)
    return (index, -length, doc_id)


def shingles(text: str, n: int) -> set[bytes]:
    words = normalise(text).split()
    if len(words) < n:
        return {" ".join(words).encode("utf-8")} if words else set()
    return {" ".join(words[i : i + n]).encode("utf-8") for i in range(len(words) - n + 1)}


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """Bands and rows minimising weighted false positives/negatives (datasketch's routine)."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


class _Scoped:
    """Prefix keys with the source when dedup is scoped per source."""

    def __init__(self, scope: str):
        self.scope = scope

    def key(self, doc: dict, value: str) -> str:
        return f"{doc['source']}|{value}" if self.scope == "source" else value


def _summary(doc: dict) -> tuple:
    return (doc["id"], doc["source"], len(doc["text"]))


class ExactDuplicateMarks(beam.DoFn):
    """One bucket of identical texts -> a mark for every copy but the best."""

    def __init__(self, priority: list[str]):
        self._priority = priority

    def process(self, element):
        _, members = element
        members = sorted(members, key=lambda m: rank_key(m[1], m[2], m[0], self._priority))
        survivor = members[0]
        for doc_id, source, _ in members[1:]:
            yield doc_id, make_drop(source, STAGE, "exact_duplicate", doc_id, f"copy of {survivor[0]}")


class MinHashBands(beam.DoFn):
    """A document -> (band key, (summary, minhash values)) for each LSH band."""

    def __init__(self, options: DedupConfig):
        self._options = options

    def setup(self) -> None:
        import xxhash
        from datasketch import MinHash

        self._minhash = MinHash
        self._hash = xxhash.xxh32_intdigest  # datasketch's SHA-1 default is ~10x slower
        self._bands, self._rows = lsh_params(self._options.threshold, self._options.num_perm)
        self._scoped = _Scoped(self._options.scope)

    def process(self, doc: dict):
        grams = shingles(doc["text"], self._options.shingle_words)
        if not grams:
            return
        m = self._minhash(num_perm=self._options.num_perm, seed=1, hashfunc=self._hash)
        m.update_batch(grams)
        values = m.hashvalues.astype(np.uint64)
        for band in range(self._bands):
            chunk = values[band * self._rows : (band + 1) * self._rows]
            digest = hashlib.blake2b(struct.pack(f"<{len(chunk)}Q", *chunk.tolist()), digest_size=12)
            key = self._scoped.key(doc, f"{band}:{digest.hexdigest()}")
            yield key, (_summary(doc), values.tobytes())


class NearDuplicateMarks(beam.DoFn):
    """One LSH bucket -> a mark for each member whose better-ranked candidate is confirmed similar."""

    def __init__(self, options: DedupConfig):
        self._options = options

    def process(self, element):
        _, members = element
        members = list(members)
        if len(members) < 2:
            return
        priority = self._options.source_priority
        members.sort(key=lambda m: rank_key(m[0][1], m[0][2], m[0][0], priority))
        signatures = [np.frombuffer(sig, dtype=np.uint64) for _, sig in members]
        for i in range(1, len(members)):
            (doc_id, source, _), _ = members[i]
            for j in range(i):
                similarity = float(np.mean(signatures[i] == signatures[j]))
                if similarity >= self._options.threshold:
                    better = members[j][0][0]
                    detail = f"~{similarity:.2f} of {better}"
                    yield doc_id, make_drop(source, STAGE, "near_duplicate", doc_id, detail)
                    break


class ApplyMarks(beam.DoFn):
    """(id, {docs, marks}) -> the document if unmarked, else one drop record."""

    def process(self, element):
        _, grouped = element
        docs = list(grouped["docs"])
        marks = list(grouped["marks"])
        for doc in docs:
            if marks:
                marks.sort(key=lambda m: (m["reason"] != "exact_duplicate", m["detail"]))
                reason = marks[0]["reason"]
                beam.metrics.Metrics.counter(f"{doc['source']}.{STAGE}", f"dropped.{reason}").inc()
                yield beam.pvalue.TaggedOutput(DROPPED, marks[0])
            else:
                yield doc


class Deduplicate(beam.PTransform):
    def __init__(self, options: DedupConfig):
        super().__init__()
        self._options = options

    def expand(self, docs):
        options = self._options
        scoped = _Scoped(options.scope)
        mark_sets = []
        if options.exact:
            mark_sets.append(
                docs
                | "KeyByTextHash" >> beam.Map(
                    lambda d: (
                        scoped.key(d, hashlib.sha1(normalise(d["text"]).encode("utf-8")).hexdigest()),
                        _summary(d),
                    )
                )
                | "GroupIdenticalTexts" >> beam.GroupByKey()
                | "MarkExactCopies" >> beam.ParDo(ExactDuplicateMarks(options.source_priority))
            )
        if options.near:
            mark_sets.append(
                docs
                | "MinHashBands" >> beam.ParDo(MinHashBands(options))
                | "GroupBuckets" >> beam.GroupByKey()
                | "MarkNearCopies" >> beam.ParDo(NearDuplicateMarks(options))
            )
        if not mark_sets:
            return {"documents": docs, "dropped": docs | "NoDrops" >> beam.FlatMap(lambda _: [])}
        marks = mark_sets | "AllMarks" >> beam.Flatten()
        keyed_docs = docs | "KeyById" >> beam.Map(lambda d: (d["id"], d))
        out = (
            {"docs": keyed_docs, "marks": marks}
            | "JoinMarks" >> beam.CoGroupByKey()
            | "KeepOrDrop" >> beam.ParDo(ApplyMarks()).with_outputs(DROPPED, main="documents")
        )
        return {"documents": out.documents, "dropped": out[DROPPED]}
