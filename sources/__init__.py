"""One module per LLaMA source. Each exposes `Options` (a dataclass, paper defaults) and `Read`
(a Beam PTransform taking those options and returning {"documents": ..., "dropped": ...})."""

from __future__ import annotations

import importlib
from types import ModuleType

from llamapipe.sources.base import SOURCE_NAMES


def source_module(name: str) -> ModuleType:
    """The module implementing source `name` (imported on first use)."""
    if name not in SOURCE_NAMES:
        raise KeyError(f"unknown source {name!r}; expected one of {', '.join(SOURCE_NAMES)}")
    return importlib.import_module(f"llamapipe.sources.{name}")


__all__ = ["SOURCE_NAMES", "source_module"]
