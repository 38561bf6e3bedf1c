"""Benchmark decontamination: a document holding a word n-gram of an evaluation set is dropped (reason
`contaminated`, the detail naming the set and the document's first matching n-gram), as GPT-3 removed
training documents sharing 13-grams with its benchmarks (Brown et al. 2020, appendix C).

Words are dedup's (`dedup.fingerprints.normalise`: lowercase, punctuation dropped, whitespace collapsed).
An example shorter than n words is matched whole: its word sequence must appear, contiguous, in the
document (examples under `min_words` words are left out, see `DecontaminationConfig`).

**The index** is built once per run by the driver (`build_index`, before the cleaning pipeline), in
OUT/_work/decontamination/, and rebuilt only when the set files (their SHA-256) or the settings change:

    index.json   what it was built from (the key), its size, the sets' names and the example lengths
                 under n present; written last, so an index is complete or absent
    hashes.u64   the distinct n-gram hashes, sorted (uint64, little-endian): 8 bytes per n-gram
    sets.u8      beside each hash, the first set (in config order) holding it: 1 byte per n-gram

so 9 bytes per distinct n-gram: 9 MB per million. The workers memory-map the two files (`load_index`,
in `setup()`; copied to a local temporary file first when OUT is on an object store), so the worker
processes of a machine share one copy in the page cache, and a lookup is a binary search
(`numpy.searchsorted`) of all a document's n-gram hashes at once.

Memory while building is bounded whatever the size of the sets: hashes are gathered in chunks of
`chunk` n-grams, each chunk scattered into `partitions` files by the top bits of the hash; then each
partition (a range of hash values) is sorted and deduplicated alone and appended to the index, so the
partitions come out in order and the result is sorted. The driver holds one chunk and one partition
(about 9 x 3 bytes per n-gram of a partition while it sorts).

The n-gram hash: each word's xxh3-64, combined as sum_j word_j x C_j (mod 2^64) with a fixed odd
random multiplier C_j per position in the n-gram, plus the length, through splitmix64's finaliser. It
is computed for every position and every length up to n in n vectorised steps per document, so the
whole-example lengths cost little. 64-bit hashes: with N n-grams indexed, a document n-gram collides by
chance with probability N / 2^64 (a million indexed n-grams, a billion documents of 1,000 words: about
0.05 false drops in all).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from llamapipe.pipeline.config import ConfigError, DecontaminationConfig, decontamination_files
from llamapipe.pipeline.plumbing.drops import DOCUMENTS, DROPPED, LEDGER_ROWS, drop, group_row
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.dedup.fingerprints import normalise
from llamapipe.pipeline.stages.registry import DECONTAMINATION
from llamapipe.tokenizer.format import storage

STAGE = DECONTAMINATION.name
REASON = "contaminated"
EXAMPLES = "examples"  # the stage's output of example matches (set, example)
EXAMPLES_PER_SET = 5  # written to OUT/decontamination/examples.jsonl
CONTEXT_CHARS = 200  # of the document's text shown on each side of a match

INDEX_FORMAT = 1
META, HASHES, SETS = "index.json", "hashes.u64", "sets.u8"
CHUNK_NGRAMS = 4_000_000  # n-grams gathered before they are scattered to the partitions (36 MB)
PARTITIONS = 256  # ranges of hash values sorted one at a time (a billion n-grams: 35 MB each)

_MAX_NGRAM = 64  # position multipliers drawn (ngram is at most this)
_MULTIPLIERS = np.random.default_rng(0x6C6C616D61).integers(
    0, 2**64, size=_MAX_NGRAM, dtype=np.uint64, endpoint=False) | np.uint64(1)
_LENGTH_SALT = np.uint64(0x9E3779B97F4A7C15)
_RECORD = np.dtype([("hash", "<u8"), ("set", "u1")])


# --- hashing --------------------------------------------------------------------------------------------

def words_of(text: str) -> list[str]:
    """The words decontamination compares: dedup's normalisation, split on spaces."""
    return normalise(text).split()


def word_hashes(words: list[str]) -> np.ndarray:
    import xxhash

    return np.fromiter((xxhash.xxh3_64_intdigest(w.encode("utf-8", "surrogatepass")) for w in words),
                       dtype=np.uint64, count=len(words))


def _finalise(sums: np.ndarray, length: int) -> np.ndarray:
    """splitmix64's finaliser of (sum ^ length salt): every bit of the sum reaches every bit of the hash."""
    z = sums ^ (_LENGTH_SALT * np.uint64(length))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def gram_hashes(hashes: np.ndarray, lengths: set[int] | frozenset[int]) -> dict[int, np.ndarray]:
    """For each length L in `lengths`: the hash of the L words starting at each position (len - L + 1
    values). One pass over the lengths 1..max: the sums of length L extend those of length L - 1."""
    out: dict[int, np.ndarray] = {}
    count = len(hashes)
    top = min(max(lengths, default=0), count)
    sums = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(top):
            sums[:count - j] += hashes[j:] * _MULTIPLIERS[j]
            if j + 1 in lengths:
                out[j + 1] = _finalise(sums[:count - j], j + 1)
    return out


def example_hashes(words: list[str], ngram: int) -> np.ndarray:
    """The hashes an example puts in the index: its n-grams, or its whole word sequence when shorter."""
    if not words:
        return np.zeros(0, dtype=np.uint64)
    length = min(ngram, len(words))
    return gram_hashes(word_hashes(words), {length})[length]


# --- reading evaluation sets ---------------------------------------------------------------------------

def strings_in(value) -> list[str]:
    """Every string a JSON value holds, nested ones included (keys left out), in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def read_examples(path: str, key: str):
    """The examples of one set file: (line number, text). A file that cannot be read is a ConfigError
    naming the config key, the path and the line."""
    try:
        with storage.open_read(path) as raw:
            stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
            text = io.TextIOWrapper(stream, encoding="utf-8")
            for number, line in enumerate(text, start=1):
                if not line.strip():
                    continue
                if path.endswith(".txt"):
                    yield number, line.rstrip("\r\n")
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise ConfigError(f"{key}: {path!r} line {number} is not JSON ({exc})") from None
                for value in strings_in(record):
                    yield number, value
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{key}: {path!r} is not UTF-8 text ({exc})") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ConfigError(f"{key}: cannot read {path!r} ({exc})") from None


def _local_path(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


# --- building the index --------------------------------------------------------------------------------

def index_key(options: DecontaminationConfig, files: dict[str, list[tuple[str, str]]]) -> dict:
    """What an index is built from: the settings and each set file's path and SHA-256."""
    return {"format": INDEX_FORMAT, "ngram": options.ngram, "min_words": options.min_words,
            "sets": [[name, [[path, storage.sha256(path)] for _, path in paths]]
                     for name, paths in files.items()]}


def ensure_index(options: DecontaminationConfig, folder: str, log=print, chunk: int = CHUNK_NGRAMS,
                 partitions: int = PARTITIONS) -> dict:
    """The index of `options`' sets in `folder` (an OUT/_work path): kept when an earlier run built it from
    the same files and settings, else built. Returns its index.json. Bad set files are ConfigErrors."""
    files = decontamination_files(options)
    key = index_key(options, files)
    meta_path = storage.join(folder, META)
    if storage.is_file(meta_path):
        try:
            meta = storage.read_json(meta_path)
        except (OSError, ValueError):
            meta = None
        if meta and meta.get("key") == key:
            log(f"      decontamination index: {meta['ngrams']:,} n-grams of {', '.join(meta['sets'])}, "
                "built by an earlier run, kept")
            return meta
    meta = build_index(options, files, folder, key, chunk=chunk, partitions=partitions)
    log(f"      decontamination index: {meta['ngrams']:,} n-grams ({meta['bytes']:,} bytes) from "
        f"{meta['examples']:,} examples of {', '.join(meta['sets'])} ({meta['skipped_short']:,} under "
        f"{options.min_words} words left out) -> {folder}")
    return meta


def index_summary(meta: dict) -> dict:
    """What run.json and the report say of an index: its size and what went in, without the file list."""
    return {k: v for k, v in meta.items() if k != "key"} | {"min_words": meta.get("key", {}).get("min_words"),
                                                            "bytes_per_ngram": _RECORD.itemsize}


def build_index(options: DecontaminationConfig, files: dict[str, list[tuple[str, str]]], folder: str,
                key: dict | None = None, chunk: int = CHUNK_NGRAMS, partitions: int = PARTITIONS) -> dict:
    """Build the index files in `folder` (see the module's docstring); returns its index.json."""
    partitions = max(1, partitions)
    bits = max(1, (partitions - 1).bit_length())
    remote = storage.is_remote(folder)
    local = tempfile.mkdtemp(prefix="llamapipe-decon-") if remote else _local_path(folder)
    os.makedirs(local, exist_ok=True)
    for name in (META, HASHES, SETS):  # an older index: absent until this one is complete
        if os.path.exists(os.path.join(local, name)):
            os.remove(os.path.join(local, name))
    scratch = tempfile.mkdtemp(prefix="partitions-", dir=local)
    stats = {"examples": 0, "skipped_short": 0, "ngrams_with_repeats": 0}
    short_lengths: set[int] = set()
    try:
        part_files = [open(os.path.join(scratch, f"{p:05d}"), "wb") for p in range(1 << bits)]
        pending: list[np.ndarray] = []
        pending_count = 0

        def flush() -> None:
            nonlocal pending, pending_count
            if not pending:
                return
            records = np.concatenate(pending)
            part = (records["hash"] >> np.uint64(64 - bits)).astype(np.int64)
            order = np.argsort(part, kind="stable")
            records, part = records[order], part[order]
            bounds = np.searchsorted(part, np.arange((1 << bits) + 1))
            for p in range(1 << bits):
                if bounds[p + 1] > bounds[p]:
                    part_files[p].write(records[bounds[p]:bounds[p + 1]].tobytes())
            pending, pending_count = [], 0

        for set_id, paths in enumerate(files.values()):
            for config_key, path in paths:
                for _, example in read_examples(path, config_key):
                    words = words_of(example)
                    if len(words) < min(options.min_words, options.ngram):
                        stats["skipped_short"] += bool(words)
                        continue
                    stats["examples"] += 1
                    if len(words) < options.ngram:
                        short_lengths.add(len(words))
                    hashes = example_hashes(words, options.ngram)
                    records = np.empty(len(hashes), dtype=_RECORD)
                    records["hash"], records["set"] = hashes, set_id
                    pending.append(records)
                    pending_count += len(records)
                    stats["ngrams_with_repeats"] += len(records)
                    if pending_count >= chunk:
                        flush()
        flush()
        for f in part_files:
            f.close()
        total = 0
        with open(os.path.join(local, HASHES + ".tmp"), "wb") as hashes_out, \
                open(os.path.join(local, SETS + ".tmp"), "wb") as sets_out:
            for p in range(1 << bits):
                records = np.fromfile(os.path.join(scratch, f"{p:05d}"), dtype=_RECORD)
                if not len(records):
                    continue
                records = records[np.lexsort((records["set"], records["hash"]))]
                first = np.ones(len(records), dtype=bool)  # each hash once, with its first set
                first[1:] = records["hash"][1:] != records["hash"][:-1]
                records = records[first]
                hashes_out.write(records["hash"].astype("<u8").tobytes())
                sets_out.write(records["set"].tobytes())
                total += len(records)
        for name in (HASHES, SETS):
            os.replace(os.path.join(local, name + ".tmp"), os.path.join(local, name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    meta = {"key": key or {}, "ngram": options.ngram, "sets": list(files), "ngrams": total,
            "bytes": total * (_RECORD.itemsize), "short_lengths": sorted(short_lengths), **stats}
    with open(os.path.join(local, META), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    if remote:
        try:
            for name in (HASHES, SETS, META):  # index.json last: complete or absent
                storage.upload(os.path.join(local, name), storage.join(folder, name))
        finally:
            shutil.rmtree(local, ignore_errors=True)
    return meta


# --- looking documents up ------------------------------------------------------------------------------

@dataclass
class Match:
    set: str
    ngram: str  # the matching words, normalised
    start: int  # word positions in the document's normalised words
    length: int


class Index:
    """A built index, memory-mapped: `first_match(text)`."""

    def __init__(self, folder: str):
        self.meta = json.loads(open(os.path.join(folder, META), encoding="utf-8").read())
        count = self.meta["ngrams"]
        if count:
            self.hashes = np.memmap(os.path.join(folder, HASHES), dtype="<u8", mode="r", shape=(count,))
            self.sets = np.memmap(os.path.join(folder, SETS), dtype="u1", mode="r", shape=(count,))
        else:
            self.hashes, self.sets = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint8)
        self.names = self.meta["sets"]
        self.ngram = self.meta["ngram"]
        self.lengths = frozenset([self.ngram, *self.meta["short_lengths"]])

    def __len__(self) -> int:
        return len(self.hashes)

    def first_match(self, text: str, words: list[str] | None = None) -> Match | None:
        """The document's first indexed word sequence (earliest start; the longest there), or None."""
        if not len(self.hashes):
            return None
        words = words_of(text) if words is None else words
        if not words:
            return None
        best: tuple[int, int, int] | None = None  # (start, -length, index position)
        for length, grams in gram_hashes(word_hashes(words), self.lengths).items():
            found = np.searchsorted(self.hashes, grams)
            found[found == len(self.hashes)] = 0
            hits = np.flatnonzero(self.hashes[found] == grams)
            if len(hits):
                candidate = (int(hits[0]), -length, int(found[hits[0]]))
                best = candidate if best is None or candidate < best else best
        if best is None:
            return None
        start, length, position = best[0], -best[1], best[2]
        ngram = " ".join(words[start:start + length])
        return Match(self.names[int(self.sets[position])], ngram, start, length)


_INDEXES: dict[str, Index] = {}  # one per index folder and process, shared by the DoFn instances
_LOCK = threading.Lock()


def load_index(folder: str) -> Index:
    """The index in `folder`, memory-mapped; from an object store, copied to a local temporary folder
    first (once per process and index: the folder's name carries the index's key)."""
    with _LOCK:
        if folder in _INDEXES:
            return _INDEXES[folder]
        local = folder
        if storage.is_remote(folder):
            meta = storage.read_bytes(storage.join(folder, META))
            digest = hashlib.sha1(folder.encode() + meta).hexdigest()[:16]
            local = os.path.join(tempfile.gettempdir(), f"llamapipe-decon-{digest}")
            if not os.path.isfile(os.path.join(local, META)):
                partial = tempfile.mkdtemp(prefix=f"llamapipe-decon-{digest}-")
                for name in (HASHES, SETS):
                    storage.download(storage.join(folder, name), os.path.join(partial, name))
                with open(os.path.join(partial, META), "wb") as f:
                    f.write(meta)
                try:
                    os.rename(partial, local)
                except OSError:  # another process of this machine was first
                    shutil.rmtree(partial, ignore_errors=True)
        else:
            local = _local_path(folder)
        _INDEXES[folder] = Index(local)
        return _INDEXES[folder]


# --- the stage -----------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def match_span(text: str, match: Match) -> tuple[int, int] | None:
    """The character span of a match in the document's own text (None when lowercasing changed the
    text's length, so that offsets no longer line up)."""
    lowered = text.lower()
    if len(lowered) != len(text):
        return None
    start = end = None
    for index, word in enumerate(_WORD.finditer(lowered)):
        if index == match.start:
            start = word.start()
        if index == match.start + match.length - 1:
            end = word.end()
            break
    return (start, end) if start is not None and end is not None else None


def example_of(doc: dict, match: Match) -> dict:
    """A match to show in the report: the document's text around it."""
    text = doc["text"]
    span = match_span(text, match)
    rank = hashlib.sha1(doc["id"].encode("utf-8", "surrogatepass")).hexdigest()
    found = {"rank": rank, "set": match.set, "source": doc["source"], "id": doc["id"], "ngram": match.ngram}
    if span is None:
        return {**found, "before": "", "match": match.ngram, "after": ""}
    start, end = span
    return {**found, "before": text[max(0, start - CONTEXT_CHARS):start], "match": text[start:end],
            "after": text[end:end + CONTEXT_CHARS]}


class DecontaminateDoFn(beam.DoFn):
    """Document -> itself, or a drop `contaminated` (detail: `<set>: "<first matching n-gram>"`), a ledger
    row counting it under its set, and an example for the report."""

    def __init__(self, index_folder: str, sources: list[str] | None):
        self._folder = index_folder
        self._sources = None if sources is None else frozenset(sources)

    def setup(self) -> None:
        self._index = load_index(self._folder)

    def process(self, doc: dict):
        source = doc["source"]
        if self._sources is not None and source not in self._sources:
            yield doc
            return
        match = self._index.first_match(doc["text"])
        if match is None:
            yield doc
            return
        text = doc["text"]
        Decontaminate.counter(source, f"{REASON}.{match.set}").inc()  # per source and set
        yield drop(source, STAGE, REASON, doc["id"], f'{match.set}: "{match.ngram}"', text)
        yield beam.pvalue.TaggedOutput(LEDGER_ROWS, group_row(
            source, STAGE, match.set, len(text), len(text.encode("utf-8", "surrogatepass"))))
        yield beam.pvalue.TaggedOutput(EXAMPLES, (match.set, example_of(doc, match)))


class Decontaminate(Stage):
    """Documents -> kept, drops (`contaminated`), ledger rows per set (LEDGER_ROWS) and examples; the
    index must have been built in `index_folder` (`ensure_index`, by the driver)."""

    entry = DECONTAMINATION

    def __init__(self, options: DecontaminationConfig, index_folder: str, examples_path: str | None = None):
        super().__init__()
        self._options = options
        self._folder = index_folder
        self._examples_path = examples_path

    def expand(self, docs):
        if not self._options.enabled:
            out = self.unchanged(docs)
            nothing = docs | "NoRows" >> beam.FlatMap(lambda _: [])
            return self.outputs(out[DOCUMENTS], out[DROPPED], **{LEDGER_ROWS: nothing, EXAMPLES: nothing})
        out = docs | "FindNgrams" >> beam.ParDo(
            DecontaminateDoFn(self._folder, self._options.sources)).with_outputs(
            DROPPED, LEDGER_ROWS, EXAMPLES, main=DOCUMENTS)
        return self.outputs(out[DOCUMENTS], out[DROPPED], **{LEDGER_ROWS: out[LEDGER_ROWS],
                                                              EXAMPLES: out[EXAMPLES]})

    def write_reports(self, outputs: dict) -> None:
        if not self._examples_path:
            return
        (
            outputs[EXAMPLES]
            | "FirstExamplesPerSet" >> beam.combiners.Top.PerKey(EXAMPLES_PER_SET, key=lambda e: e["rank"],
                                                                 reverse=True)
            | "ExampleLines" >> beam.FlatMap(
                lambda kv: [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in kv[1]])
            | "WriteExamples" >> beam.io.WriteToText(self._examples_path, shard_name_template="")
        )


def read_examples_file(path: str) -> list[dict]:
    """OUT/decontamination/examples.jsonl (empty when the run wrote none)."""
    if not storage.is_file(path):
        return []
    return [json.loads(line) for line in storage.read_text(path).splitlines() if line.strip()]
