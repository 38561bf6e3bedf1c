"""Mixture-aware, resumable streaming over the pipeline's token shards.

The pipeline writes `OUT/shards/<source>/*.parquet` (one row per document: `doc_id`, `source`, `tokens`
(list<uint16|uint32>, each document starting with BOS), `num_tokens`) and `OUT/shards/manifest.json`
(tokenizer digest, and per source its token count, sampling `share`, `epochs` and shard list).

`MixtureLoader` turns that into training batches:

  - every source is an endless stream: its row groups are read one at a time (a shard is never loaded
    whole), documents are concatenated (they are BOS-separated already) and cut into non-overlapping
    windows of `seq_len + 1` tokens, x = w[:-1], y = w[1:]. The row-group order is reshuffled every
    pass with a seeded RNG;
  - every batch row picks its source at random with probability proportional to the manifest's `share`
    (the paper's sampling proportions, table 1), so the mixture holds at every step, not only on average
    over a run;
  - data is split over all *global workers* (rank * num_workers + dataloader worker id) by shard, or by row
    group when a source has fewer shards than workers, or by document when it has fewer row groups still,
    so no window is ever produced by two workers;
  - documents can be held out for evaluation: a document is held out when the 64-bit xxHash of its
    `doc_id` falls under `holdout_fraction` of the hash range. The test depends on the id alone, so the
    same documents are held out for every run, seed, rank and worker, the training split (`split="train"`)
    never sees a held-out document and the evaluation split (`split="heldout"`) sees nothing else; a
    larger fraction holds out a superset. The pipeline removed exact and near duplicates across all
    sources before sharding, so a held-out document has no copy left in the training split;
  - `state_dict()` records, per worker, the RNG state and per source the position of the next unread token
    (pass, row group, offset), so a loader restored from it yields exactly the batches that would have
    come next.
"""

from __future__ import annotations

import copy
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import xxhash
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

# The manifest is read and validated in one place, shared with the pipeline and `llamapipe inspect verify`.
# Every path (manifest, shards) goes through `storage`: a local disk, or an s3:// or gs:// OUT.
from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.manifest import read_manifest, validate_manifest

STATE_VERSION = 1
SPLITS = ("train", "heldout")


def is_held_out(doc_id: str, fraction: float) -> bool:
    """Whether a document belongs to the held-out split: xxh64(doc_id) / 2**64 < fraction."""
    return xxhash.xxh64_intdigest(doc_id.encode("utf-8")) < fraction * 2.0**64


# ----------------------------------------------------------------------------------------------- manifest


def source_shares(manifest: dict) -> dict[str, float]:
    """Sampling probability per source: the manifest's `share`, renormalised over the sources that have
    tokens (a source the pipeline kept nothing of must not swallow probability mass)."""
    raw = {
        name: float(entry.get("share", 0.0))
        for name, entry in manifest.get("sources", {}).items()
        if entry.get("tokens", 0) > 0 and entry.get("shards") and entry.get("share", 0.0) > 0
    }
    total = sum(raw.values())
    if total <= 0:
        raise ValueError("manifest has no source with tokens, shards and a positive share")
    return {name: share / total for name, share in raw.items()}


# ------------------------------------------------------------------------------------------ one source


@dataclass(frozen=True)
class _Unit:
    """One row group of one shard: the unit of reading (and of sharding, when shards are too few)."""

    path: str
    row_group: int
    first_row: int  # index, within the whole source, of the row group's first document


def _row_groups(path: str, first_row: int) -> tuple[list[_Unit], int]:
    with storage.open_read(path) as f:  # the footer only (a ranged read on an object store)
        metadata = pq.ParquetFile(f).metadata
    units = []
    for index in range(metadata.num_row_groups):
        units.append(_Unit(path, index, first_row))
        first_row += metadata.row_group(index).num_rows
    return units, first_row


def _assign_units(
    paths: list[str], worker: int, n_workers: int
) -> tuple[list[_Unit], tuple[int, int] | None]:
    """The row groups a global worker reads, and the document stride `(n_workers, worker)` it keeps
    (None: every document of its row groups). Coarsest split first: whole shards are the cheapest to
    hand out (each worker opens only its own files), row groups next, documents last."""
    if len(paths) >= n_workers:
        units = []
        for path in paths[worker::n_workers]:
            units.extend(_row_groups(path, 0)[0])  # first_row is only needed for document striding
        return units, None
    all_units: list[_Unit] = []
    first_row = 0
    for path in paths:
        units, first_row = _row_groups(path, first_row)
        all_units.extend(units)
    if len(all_units) >= n_workers:
        return all_units[worker::n_workers], None
    if first_row <= worker:
        return [], None  # fewer documents than workers: this worker gets none of this source
    return all_units, (n_workers, worker)


class _SourceStream:
    """Endless stream of one source's tokens for one worker, cut into windows on demand.

    Position = (pass, index of the row group in that pass's order, token offset in it) of the next token
    not yet handed out; tokens already read but not yet handed out sit in `_segments`."""

    def __init__(
        self,
        name: str,
        units: list[_Unit],
        stride: tuple[int, int] | None,
        shuffle_key: str,
        vocab_size: int,
        holdout: tuple[float, str] | None = None,
    ):
        self.name = name
        self.units = units
        self.stride = stride
        self.shuffle_key = shuffle_key
        self.vocab_size = vocab_size
        self.holdout = holdout  # (fraction, split kept) or None: every document
        self._orders: dict[int, list[int]] = {}  # row-group order of the (at most two) passes in use
        self._next = (0, 0)  # (pass, index in order) of the next row group to read
        self._segments: deque[list] = deque()  # [tokens, pass, index, cursor]
        self._buffered = 0
        # The shard being read, kept open between its row groups (one open file per stream and worker):
        # (path, stream from `storage.open_read`, the ParquetFile reading through it).
        self._file: tuple[str, IO[bytes], pq.ParquetFile] | None = None

    def _unit(self, pass_: int, index: int) -> _Unit:
        if pass_ not in self._orders:
            # A fresh deterministic order every pass, so repeated epochs do not replay the same sequence.
            order = list(range(len(self.units)))
            random.Random(f"{self.shuffle_key}:{pass_}").shuffle(order)
            self._orders = {p: o for p, o in self._orders.items() if p == pass_ - 1}
            self._orders[pass_] = order
        return self.units[self._orders[pass_][index]]

    def _read(self, unit: _Unit) -> np.ndarray:
        if self._file is None or self._file[0] != unit.path:
            self.close()
            stream = storage.open_read(unit.path)
            self._file = (unit.path, stream, pq.ParquetFile(stream))
        columns = ["tokens"] if self.holdout is None else ["doc_id", "tokens"]
        table = self._file[2].read_row_group(unit.row_group, columns=columns)
        if self.stride is not None:
            n_workers, worker = self.stride
            first = (worker - unit.first_row) % n_workers
            table = table.take(pa.array(np.arange(first, len(table), n_workers, dtype=np.int64)))
        if self.holdout is not None:
            fraction, split = self.holdout
            held_out = [is_held_out(doc_id, fraction) for doc_id in table.column("doc_id").to_pylist()]
            table = table.filter(pa.array(held_out if split == "heldout" else [not h for h in held_out]))
        column = table.column("tokens")
        if len(column) == 0:
            return np.empty(0, dtype=np.int64)
        tokens = pc.list_flatten(column).to_numpy()
        # A cheap guard against shards of another tokenizer, which would otherwise fail deep in the model.
        if len(tokens) and int(tokens.max()) >= self.vocab_size:
            raise ValueError(
                f"{unit.path} row group {unit.row_group} has token id {int(tokens.max())} >= vocab_size "
                f"{self.vocab_size} of the manifest's tokenizer"
            )
        return tokens

    def close(self) -> None:
        """Close the shard held open (reading again reopens it)."""
        if self._file is not None:
            self._file[1].close()
            self._file = None

    def _advance(self) -> None:
        pass_, index = self._next
        self._next = (pass_ + 1, 0) if index + 1 == len(self.units) else (pass_, index + 1)

    def _fill(self, length: int) -> None:
        empty_reads = 0
        while self._buffered < length:
            pass_, index = self._next
            tokens = self._read(self._unit(pass_, index))
            self._advance()
            if len(tokens):
                self._segments.append([tokens, pass_, index, 0])
                self._buffered += len(tokens)
                empty_reads = 0
            else:
                empty_reads += 1
                if empty_reads > len(self.units):
                    split = f" ({self.holdout[1]} split)" if self.holdout else ""
                    raise ValueError(
                        f"source {self.name} has no tokens{split} in the shards given to this worker"
                    )

    def take(self, length: int) -> np.ndarray:
        self._fill(length)
        window = np.empty(length, dtype=np.int64)
        filled = 0
        while filled < length:
            segment = self._segments[0]
            tokens, cursor = segment[0], segment[3]
            n = min(length - filled, len(tokens) - cursor)
            window[filled : filled + n] = tokens[cursor : cursor + n]
            segment[3] += n
            filled += n
            if segment[3] == len(tokens):
                self._segments.popleft()
        self._buffered -= length
        return window

    def position(self) -> dict:
        if self._segments:
            _, pass_, index, offset = self._segments[0]
        else:
            (pass_, index), offset = self._next, 0
        unit = self._unit(pass_, index)
        # path and row_group are redundant with (pass, index); they make the state readable and let
        # `restore` notice that the shards changed under it.
        return {"pass": pass_, "index": index, "offset": offset,
                "path": storage.basename(unit.path), "row_group": unit.row_group}

    def restore(self, position: dict) -> None:
        pass_, index, offset = position["pass"], position["index"], position["offset"]
        if not 0 <= index < len(self.units):
            raise ValueError(f"loader state for source {self.name} points past its shards: they changed")
        unit = self._unit(pass_, index)
        if (storage.basename(unit.path), unit.row_group) != (position["path"], position["row_group"]):
            raise ValueError(f"loader state for source {self.name} does not match its shards: they changed")
        self._segments.clear()
        self._buffered = 0
        self._next = (pass_, index)
        tokens = self._read(unit)
        self._advance()
        if offset < len(tokens):
            self._segments.append([tokens, pass_, index, offset])
            self._buffered = len(tokens) - offset


# ------------------------------------------------------------------------------------------- the loader


@dataclass
class Batch:
    """One batch: inputs `x` and next-token targets `y`, (batch_size, seq_len) int64; the source of each
    row; and the state of the worker that made it (what `MixtureLoader.state_dict` is built from)."""

    x: torch.Tensor
    y: torch.Tensor
    sources: tuple[str, ...]
    worker: int
    state: dict


def _keep_batch(batch: Batch) -> Batch:
    # DataLoader's default conversion would rebuild the nested RNG-state tuples as lists; keep batches as is.
    return batch


class MixtureLoader(IterableDataset):
    """Endless stream of `Batch`es mixing the manifest's sources by their `share`.

    Iterate it directly (`for batch in loader`), not through your own DataLoader: with `num_workers > 0`
    it runs a DataLoader itself and records which batches were consumed, which is what makes
    `state_dict()` exact. Iterating again continues after the last batch consumed. Each row costs
    `seq_len + 1` tokens of its source's stream; `rank`/`world_size` split the data between DDP ranks;
    `sources` restricts the mixture to some sources (their shares renormalised); with `holdout_fraction`
    > 0, `split` chooses the documents outside ("train") or inside ("heldout") the held-out split."""

    def __init__(
        self,
        manifest_path: str | Path,
        seq_len: int,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        sources: list[str] | None = None,
        validate: bool = True,
        holdout_fraction: float = 0.0,
        split: str = "train",
    ):
        super().__init__()
        if seq_len <= 0 or batch_size <= 0:
            raise ValueError("seq_len and batch_size must be positive")
        if split not in SPLITS or not 0 <= holdout_fraction < 1:
            raise ValueError(f"split must be one of {SPLITS} and holdout_fraction within [0, 1)")
        if split == "heldout" and holdout_fraction == 0:
            raise ValueError("the heldout split needs holdout_fraction > 0")
        if not 0 <= rank < world_size or num_workers < 0:
            raise ValueError(f"bad rank {rank} / world_size {world_size} / num_workers {num_workers}")
        self.manifest_path = str(manifest_path)  # a local path, or s3://... / gs://...
        self.manifest = read_manifest(self.manifest_path)
        if validate:  # existence only: hashing every shard is validate_manifest(check_sha256=True)'s job
            validate_manifest(self.manifest, root=storage.dirname(self.manifest_path), check_sha256=False)
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.holdout = (holdout_fraction, split) if holdout_fraction > 0 else None
        self.shares = source_shares(self.manifest)
        if sources is not None:  # mix only these (e.g. to measure one source's loss); shares renormalise
            unknown = set(sources) - set(self.shares)
            if unknown or not sources:
                raise ValueError(f"sources {sorted(unknown)} have no tokens in the manifest")
            self.shares = {name: self.shares[name] for name in sources}
        self.vocab_size = self.manifest["tokenizer"]["vocab_size"]
        self._worker_states: dict[int, dict] = {}
        self._next_worker = 0  # logical worker whose batch comes next
        self._worker_offset = 0  # set on the copy handed to DataLoader workers

    # -- state

    def state_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "holdout": list(self.holdout) if self.holdout else None,
            "rank": self.rank,
            "world_size": self.world_size,
            "num_workers": self.num_workers,
            "next_worker": self._next_worker,
            "workers": copy.deepcopy(self._worker_states),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"loader state version {state.get('version')!r} is not {STATE_VERSION}")
        # The split of shards over workers depends on these three; a different split would replay or skip.
        for key in ("rank", "world_size", "num_workers"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"loader state was saved with {key}={state[key]}, this loader has {getattr(self, key)}"
                )
        # Positions count tokens of the documents a split keeps: another split would land elsewhere.
        holdout = list(self.holdout) if self.holdout else None
        if state.get("holdout") != holdout:
            raise ValueError(
                f"loader state was saved with holdout {state.get('holdout')}, this loader has {holdout}"
            )
        self._worker_states = copy.deepcopy(state["workers"])
        self._next_worker = state["next_worker"]

    # -- iteration

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        if info is not None:  # inside a DataLoader worker started by the branch below
            logical = (info.id + self._worker_offset) % info.num_workers
            yield from self._worker_batches(logical, self._worker_states.get(logical))
            return
        if self.num_workers == 0:
            batches: Iterator[Batch] = self._worker_batches(0, self._worker_states.get(0))
        else:
            # DataLoader hands out batches round-robin starting at its worker 0; relabel the workers so
            # that the one whose batch comes next (after a resume) is physical worker 0.
            for_workers = copy.copy(self)
            for_workers._worker_states = copy.deepcopy(self._worker_states)
            for_workers._worker_offset = self._next_worker
            batches = iter(
                DataLoader(for_workers, batch_size=None, num_workers=self.num_workers, collate_fn=_keep_batch)
            )
        n_logical = max(1, self.num_workers)
        for batch in batches:
            # Recorded before handing the batch out: a state taken after consuming it then includes it.
            self._worker_states[batch.worker] = batch.state
            self._next_worker = (batch.worker + 1) % n_logical
            yield batch

    def _worker_batches(self, logical: int, state: dict | None) -> Iterator[Batch]:
        n_global = self.world_size * max(1, self.num_workers)
        worker = self.rank * max(1, self.num_workers) + logical
        root = storage.dirname(self.manifest_path)
        streams: dict[str, _SourceStream] = {}
        for name in sorted(self.shares):
            # Shard paths are relative to the manifest's folder (resolved as `validate_manifest` does).
            shards = self.manifest["sources"][name]["shards"]
            paths = [storage.resolve(root, shard["path"]) for shard in shards]
            units, stride = _assign_units(paths, worker, n_global)
            if units:
                streams[name] = _SourceStream(
                    name, units, stride, f"{self.seed}:{name}:{worker}", self.vocab_size, self.holdout
                )
        if not streams:
            raise ValueError(
                f"global worker {worker} of {n_global} got no data: the shards have fewer documents than "
                "there are workers; use fewer ranks or dataloader workers"
            )
        names = list(streams)
        weights = [self.shares[name] for name in names]  # choices() renormalises
        rng = random.Random(f"{self.seed}:{worker}")
        window = self.seq_len + 1
        try:
            if state is not None:
                rng.setstate(state["rng"])
                for name, position in state["sources"].items():
                    if name not in streams:
                        raise ValueError(f"loader state has source {name}, which this manifest no longer has")
                    streams[name].restore(position)
            while True:
                rows = np.empty((self.batch_size, window), dtype=np.int64)
                picked = rng.choices(names, weights, k=self.batch_size)
                for row, name in enumerate(picked):
                    rows[row] = streams[name].take(window)
                tokens = torch.from_numpy(rows)
                yield Batch(
                    x=tokens[:, :-1].contiguous(),
                    y=tokens[:, 1:].contiguous(),
                    sources=tuple(picked),
                    worker=logical,
                    state={"rng": rng.getstate(), "sources": {n: s.position() for n, s in streams.items()}},
                )
        finally:  # the generator closed or collected: release the shards held open
            for stream in streams.values():
                stream.close()

