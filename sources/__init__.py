"""One module per LLaMA source. Each exposes `Options` (a dataclass, paper defaults) and `Read`
(a Beam PTransform taking those options and returning {"documents": ..., "dropped": ...}).

A run does a source's work in two parts: what it does to each input file on its own,
`Read.file_reader(options)` (a `ReadFileDoFn`: one split in, documents and drops out), recorded per
file (`pipeline/file_work.py`); and what needs every file, `Read.corpus_step(options, work_folder)`
(`sources/reading.ReadSourceFiles`), or None. `Read` itself is the two in one Beam transform."""

from __future__ import annotations

import importlib
from types import ModuleType

from llamapipe.sources.reading import SOURCE_NAMES


def source_module(name: str) -> ModuleType:
    """The module implementing source `name` (imported on first use)."""
    if name not in SOURCE_NAMES:
        raise KeyError(f"unknown source {name!r}; expected one of {', '.join(SOURCE_NAMES)}")
    return importlib.import_module(f"llamapipe.sources.{name}")


def file_reader(name: str, options):
    """The source's per-file work: a `ReadFileDoFn` for one split of one input file."""
    return source_module(name).Read.file_reader(options)


def corpus_step(name: str, options, work_folder: str | None = None):
    """The source's step across all its files (GitHub's exact dedup, Stack Exchange's largest sites),
    or None."""
    return source_module(name).Read.corpus_step(options, work_folder)


__all__ = ["SOURCE_NAMES", "corpus_step", "file_reader", "source_module"]
