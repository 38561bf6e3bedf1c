"""Fixtures of the model tests: tiny token shards in the pipeline's format (see llamapipe.model.data),
written with pyarrow. Helpers are fixtures, not importable modules, so the tests work in any import mode."""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm

from llamapipe.tokenizer.train import LLAMA_TRAINER_SPEC


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_shards(
    root: Path,
    sources: dict[str, list[list[list[int]]]],
    shares: dict[str, float] | None = None,
    *,
    vocab_size: int = 8000,
    row_group_size: int = 4,
    tokenizer_bytes: bytes | None = None,
) -> Path:
    """sources: name -> shards -> documents -> token ids (each should start with BOS 1).
    Writes OUT/tokenizer/tokenizer.model (`tokenizer_bytes`, else placeholder bytes),
    OUT/shards/<source>/*.parquet and the manifest; returns the manifest's path."""
    tokenizer = root / "tokenizer" / "tokenizer.model"
    tokenizer.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.write_bytes(tokenizer_bytes or b"not a real sentencepiece model, only its digest matters here")
    token_type = pa.uint16() if vocab_size <= 65536 else pa.uint32()
    schema = pa.schema([("doc_id", pa.string()), ("source", pa.string()), ("tokens", pa.list_(token_type)),
                        ("num_tokens", pa.int64())])
    shards_dir = root / "shards"
    manifest_sources = {}
    for name, shards in sources.items():
        entries = []
        for index, docs in enumerate(shards):
            path = shards_dir / name / f"{name}-{index:05d}-of-{len(shards):05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            table = pa.table(
                {"doc_id": [f"{name}:{index}:{i}" for i in range(len(docs))], "source": [name] * len(docs),
                 "tokens": docs, "num_tokens": [len(d) for d in docs]},
                schema=schema,
            )
            pq.write_table(table, path, row_group_size=row_group_size)
            entries.append({"path": f"{name}/{path.name}", "sha256": _sha256(path),
                            "tokens": sum(map(len, docs)), "documents": len(docs)})
        tokens = sum(e["tokens"] for e in entries)
        manifest_sources[name] = {
            "documents": sum(e["documents"] for e in entries), "tokens": tokens,
            "share": (shares or {}).get(name, 1.0), "epochs": 1.0, "shards": entries,
        }
    manifest = {
        "schema_version": 1,
        "tokenizer": {"path": "../tokenizer/tokenizer.model", "sha256": _sha256(tokenizer),
                      "vocab_size": vocab_size, "bos_id": 1, "eos_id": 2},
        "sources": manifest_sources,
        "total_tokens": sum(s["tokens"] for s in manifest_sources.values()),
        "token_budget": 0,
    }
    path = shards_dir / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1))
    return path


@pytest.fixture
def shards_factory(tmp_path):
    """`make(sources, shares=None, vocab_size=8000, row_group_size=4) -> manifest path`, written under
    tmp_path/out."""

    def make(sources, shares=None, **kwargs):
        return write_shards(tmp_path / "out", sources, shares, **kwargs)

    return make


WORDS = ("the river ran past a mill where seven bakers sold bread and 42 apples to travellers "
         "who came over the hills in winter").split()


@pytest.fixture(scope="session")
def spm_model() -> bytes:
    """A small real SentencePiece BPE model with Meta's trainer settings (byte fallback, split digits),
    trained on seeded word salad; 380 pieces."""
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(2000)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, vocab_size=380,
                                   minloglevel=2, **LLAMA_TRAINER_SPEC)
    return model.getvalue()
