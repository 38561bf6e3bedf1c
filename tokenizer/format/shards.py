"""The token-shard format (version 1): plain Parquet, readable by pyarrow, pandas, polars, DuckDB and
Hugging Face `datasets`.

    OUT/shards/<source>/<source>-SSSSS-of-NNNNN.parquet     zstd, one row per document:
        doc_id      string                  the cleaned document's id; rows sorted by it
        source      string
        tokens      list<uint16>            (list<uint32> when the vocabulary exceeds 65536 ids)
                                            BOS first, then the document's text, then EOS if configured
        num_tokens  int64                   len(tokens)
    footer (key-value metadata): llamapipe.schema_version, .source, .tokenizer_sha256, .vocab_size,
        .bos_id, .eos_id, .add_eos, .shard_index, .num_shards, .shard_by, .escaped_u2581_documents

A document's shard is a function of its id alone (`shard_of`), so shard contents and names do not
depend on how many workers wrote them, and `llamapipe inspect show DOC_ID` opens one file.
This module has no Beam import: the trainer and `inspect` use it too.
"""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.parquet as pq

from llamapipe.tokenizer.format import storage

SCHEMA_VERSION = 1
COLUMNS = ("doc_id", "source", "tokens", "num_tokens")
SHARD_BY = "blake2b-64(doc_id utf-8, little-endian) mod num_shards"
KEY = "llamapipe."  # footer metadata prefix
SHARD_NAME = re.compile(r"(?P<source>.+)-(?P<index>\d{5,})-of-(?P<count>\d{5,})\.parquet$")


def token_type(vocab_size: int) -> pa.DataType:
    return pa.uint16() if vocab_size <= 65536 else pa.uint32()


def shard_of(doc_id: str, num_shards: int) -> int:
    """The shard index of a document: a stable hash of its id (not Python's salted `hash`)."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % num_shards


def shard_name(source: str, index: int, num_shards: int) -> str:
    return f"{source}-{index:05d}-of-{num_shards:05d}.parquet"


def shard_schema(source: str, vocab_size: int, tokenizer_sha256: str, *, bos_id: int = 1, eos_id: int = 2,
                 add_eos: bool = False, shard_index: int = 0, num_shards: int = 1,
                 escaped_u2581_documents: int = 0) -> pa.Schema:
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "tokenizer_sha256": tokenizer_sha256,
        "vocab_size": vocab_size,
        "bos_id": bos_id,
        "eos_id": eos_id,
        "add_eos": str(add_eos).lower(),
        "shard_index": shard_index,
        "num_shards": num_shards,
        "shard_by": SHARD_BY,
        "escaped_u2581_documents": escaped_u2581_documents,
    }
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("tokens", pa.list_(token_type(vocab_size))),
            ("num_tokens", pa.int64()),
        ],
        metadata={KEY + key: str(value) for key, value in metadata.items()},
    )


def footer(path_or_file) -> dict[str, str]:
    """A shard's llamapipe footer metadata (keys without the prefix); {} for a plain Parquet file. A path
    is opened through `storage` (local, s3://, gs://); an open file is read where it is."""
    if isinstance(path_or_file, str):
        with storage.open_read(path_or_file) as f:
            return footer(f)
    metadata = pq.read_schema(path_or_file).metadata or {}
    return {key.decode()[len(KEY):]: value.decode() for key, value in metadata.items()
            if key.startswith(KEY.encode())}


def schema_problems(schema: pa.Schema, vocab_size: int | None = None) -> list[str]:
    """What is wrong with a shard's columns (empty when they are as above)."""
    problems = []
    names = tuple(schema.names)
    if names != COLUMNS:
        problems.append(f"columns {list(names)} are not {list(COLUMNS)}")
        return problems
    expected = {"doc_id": pa.string(), "source": pa.string(), "num_tokens": pa.int64()}
    for name, kind in expected.items():
        if schema.field(name).type != kind:
            problems.append(f"column {name} is {schema.field(name).type}, not {kind}")
    tokens = schema.field("tokens").type
    allowed = [token_type(vocab_size)] if vocab_size else [pa.uint16(), pa.uint32()]
    if not (pa.types.is_list(tokens) and tokens.value_type in allowed):
        problems.append(f"column tokens is {tokens}, not list<{' or '.join(map(str, allowed))}>")
    return problems
