"""Deterministic sampling: a document's id, hashed, decides whether it is sampled, so a rerun samples
the same documents (the rejects sample, the classifier's training pages and held-out split)."""

from __future__ import annotations

import hashlib


def id_fraction(doc_id: str) -> float:
    """A stable pseudo-random number in [0, 1) from a document id."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
