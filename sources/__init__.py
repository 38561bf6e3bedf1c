"""One module per LLaMA source. Each exposes `Options` (a dataclass, paper defaults) and `Read`
(a Beam PTransform taking those options and returning {"documents": ..., "dropped": ...}).

A run does a source's work in two parts (`pipeline/file_work.py`): what it does to each input file
on its own, `file_reader(options)` (a `ReadFileDoFn`: one split in, documents and drops out), recorded
per file; and what needs every file, `corpus_step(options, work_folder)` (a PTransform over
{"documents": ..., <the reader's extra outputs>} returning {"documents", "dropped"}), or None. `Read`
is the two in one Beam transform."""

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
    module = source_module(name)
    make = getattr(module, "file_reader", None)
    return make(options) if make else module.Read.file_reader(options)


def corpus_step(name: str, options, work_folder: str | None = None):
    """The source's step across all its files (GitHub's exact dedup, Stack Exchange's largest sites),
    or None."""
    make = getattr(source_module(name), "corpus_step", None)
    return make(options, work_folder) if make else None


__all__ = ["SOURCE_NAMES", "corpus_step", "file_reader", "source_module"]
