"""Resuming a run: a rerun of the same command after a crash skips the stages that finished.

Within `clean`, the per-file work is recorded per input file as it is done (`file_work.py`, under
`OUT/_work/files`, which is not one of the stage's outputs below: it survives an unfinished `clean`, and
an incremental run, and goes only with `--fresh`).

A run is three stages with outputs on disk: `clean` (two Beam pipelines: documents, drops, ledger...),
`tokenizer` (SentencePiece trained on a sample of the documents) and `tokenize` (one Beam pipeline:
token shards per source). The manifest is rebuilt from the shards every time (it reads footers only).

A stage is recorded in `OUT/_work/completed.json` only once all its outputs are in place (Beam's file
sinks write to a temporary folder and rename; shards are written under a hidden name and renamed), and
the record is replaced atomically, so a kill at any instant leaves either the stage recorded with its
outputs complete, or not recorded. A stage that is not recorded runs again, after its outputs and those
of every later stage are deleted: what a half-finished stage wrote is never read.

Token shards are finer-grained: each source's folder is complete when it holds the whole
`<source>-SSSSS-of-NNNNN.parquet` set (every shard index is written, empty or not), and a complete source
is not tokenized again. Only a run of the same config resumes (`prepare_output` refuses a different
one); `llamapipe run --fresh` starts over.
"""

from __future__ import annotations

from llamapipe.pipeline.output.layout import RUN_STEPS, SHARDS, TOKENIZER_STEP, OutputLayout
from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.shards import SHARD_NAME

# A run's stages, in order, and what each writes: `output/layout.py` (RUN_STEPS, STEP_OUTPUTS). The
# per-file work's records (`OutputLayout.files`) are not among them: kept when `clean` is not finished.


class CompletedStages:
    """The stages of this output folder that finished, with what later stages need of them (the
    tokenizer's summary, for one)."""

    def __init__(self, out: str):
        self._layout = OutputLayout(out)
        self._path = self._layout.completed
        self._done: dict[str, dict] = {}
        if storage.is_file(self._path):
            try:
                loaded = storage.read_json(self._path)
                self._done = {k: v for k, v in loaded.items() if k in RUN_STEPS and isinstance(v, dict)}
            except (OSError, ValueError):
                self._done = {}  # unreadable: nothing is trusted, everything runs again
        # A stage counts only when every earlier one does (a later one was built on their outputs).
        for i, stage in enumerate(RUN_STEPS):
            if stage not in self._done:
                for later in RUN_STEPS[i:]:
                    self._done.pop(later, None)
                break

    def done(self, stage: str) -> bool:
        return stage in self._done

    def info(self, stage: str) -> dict:
        return self._done[stage]

    def names(self) -> list[str]:
        return [s for s in RUN_STEPS if s in self._done]

    def mark(self, stage: str, info: dict | None = None) -> None:
        self._done[stage] = dict(info or {})
        storage.write_json(self._path, self._done)  # complete or absent, on any filesystem

    def clear_unfinished(self) -> None:
        """Delete the outputs of every stage not recorded (a half-finished one's included). The
        shards of complete sources stay when `clean` and `tokenizer`
        are recorded (`complete_shard_sources` decides)."""
        pending = [s for s in RUN_STEPS if s not in self._done]
        for stage in pending:
            for relative, path in self._layout.step_outputs(stage):
                if relative == SHARDS and TOKENIZER_STEP in self._done:
                    remove_incomplete_shards(path)
                else:
                    remove_path(path)

    def forget_stages(self) -> None:
        """Every stage runs again; the per-file work's records stay (an incremental run reuses them)."""
        self._done = {}
        remove_path(self._path)

    def forget(self) -> None:
        """Start over (`--fresh`): no stage counts as done, no file's work is recorded."""
        self.forget_stages()
        remove_path(self._layout.files)


def complete_shard_sources(shards_dir: str) -> set[str]:
    """Sources whose folder holds one whole `-of-NNNNN` set of shard files."""
    complete = set()
    for source in storage.list_names(shards_dir):
        folder = storage.join(shards_dir, source)
        if storage.is_dir(folder) and _is_complete_set(folder, source):
            complete.add(source)
    return complete


def remove_incomplete_shards(shards_dir: str) -> None:
    """Keep the folders of complete sources; delete every other entry (partial sources, temporary
    files, the manifest, which is rebuilt)."""
    keep = complete_shard_sources(shards_dir)
    for entry in storage.list_names(shards_dir):
        path = storage.join(shards_dir, entry)
        if entry not in keep:
            remove_path(path)
            continue
        for name in storage.list_names(path):  # a complete source's hidden leftovers
            if name.startswith("."):
                remove_path(storage.join(path, name))


def _is_complete_set(folder: str, source: str) -> bool:
    indices, counts = set(), set()
    for name in storage.list_names(folder):
        if name.startswith("."):
            continue  # temporary names of shards being written
        match = SHARD_NAME.fullmatch(name)
        if not match or match["source"] != source:
            return False
        indices.add(int(match["index"]))
        counts.add(int(match["count"]))
    return len(counts) == 1 and indices == set(range(counts.pop()))


remove_path = storage.remove
