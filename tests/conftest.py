"""Shared fixtures. Real-format samples are found at $LLAMAPIPE_REALDATA, else ../shared/realdata
(relative to the repository); tests that need them skip with a clear reason when neither exists."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def realdata_dir() -> Path | None:
    env = os.environ.get("LLAMAPIPE_REALDATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "realdata")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Folder of real dump samples (see its SOURCES.md)."""
    found = realdata_dir()
    if found is None:
        pytest.skip("real-data samples not found: set LLAMAPIPE_REALDATA or provide ../shared/realdata")
    return found
