"""`llamapipe export megatron SHARDS DIR`: per source, `DIR/<source>.bin` and `DIR/<source>.idx` in the
format of Megatron-Core's `IndexedDataset` (megatron/core/datasets/indexed_dataset.py, read with
megatron-core 0.16.1), the `--data-path` blend of the manifest's shares in `DIR/blend.txt`, and the
tokenizer.

    <source>.bin   the tokens of every document one after the other, uint16 (int32 when the
                   vocabulary has 65,500 ids or more: `DType.optimal_dtype`, which Megatron-LM's
                   tools/preprocess_data.py applies to the tokenizer's vocab_size)
    <source>.idx   b"MMIDIDX\\x00\\x00", version 1 (<Q), dtype code (<B: uint16 8, int32 4),
                   sequence count (<Q), document count (<Q, = sequences + 1), then the arrays:
                   sequence lengths int32, sequence byte pointers int64, document indices int64

One sequence per document, the tokens as the shards store them (BOS first, EOS last when the run added
it), so document i of the dataset is row i of the source's shards in shard order; the document indices
are then 0, 1, ..., n, as `IndexedDatasetBuilder.add_document` writes them for one-sequence documents.

Memory does not grow with the corpus: the tokens go to `.bin` as they are read, one row group at a time,
and the lengths to a local temporary file (4 bytes a document); `.idx` is written from it after, in
chunks. Megatron's own builder keeps its lengths in Python lists instead (about 40 bytes a document).
Both files are written through `storage.open_write`, so DIR may be on s3:// or gs://, complete or absent.
"""

from __future__ import annotations

import struct
import tempfile

import numpy as np

from llamapipe.pipeline.export.shards_in import Shards, check_counts, token_batches
from llamapipe.tokenizer.format import storage

INDEX_HEADER = b"MMIDIDX\x00\x00"  # indexed_dataset._INDEX_HEADER
INDEX_VERSION = 1
DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}  # indexed_dataset.DType
UINT16_LIMIT = 65500  # DType.optimal_dtype: uint16 when cardinality < 65500
CHUNK = 1 << 20  # lengths per read of the temporary file when writing .idx (4 MB in, 8 MB of pointers out)


def megatron_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size < UINT16_LIMIT else np.dtype(np.int32)


def write_source(shards: Shards, source: str, prefix: str, dtype: np.dtype) -> dict:
    """`prefix.bin` and `prefix.idx` of one source; its documents and tokens."""
    documents = tokens = 0
    with tempfile.TemporaryFile(prefix="llamapipe-lengths-") as lengths:
        with storage.open_write(prefix + ".bin") as out:
            for path in shards.shard_paths(source):
                for ids, doc_lengths in token_batches(path):
                    out.write(ids.astype(dtype, copy=False).tobytes())
                    lengths.write(doc_lengths.astype(np.int32).tobytes())
                    documents += len(doc_lengths)
                    tokens += len(ids)
        check_counts(shards, source, documents, tokens)
        write_index(prefix + ".idx", dtype, lengths, documents)
    return {"documents": documents, "tokens": tokens}


def write_index(path: str, dtype: np.dtype, lengths, count: int) -> None:
    """The `.idx` of `count` one-sequence documents whose int32 lengths are in the open file `lengths`."""
    itemsize = dtype.itemsize
    with storage.open_write(path) as out:
        out.write(INDEX_HEADER)
        out.write(struct.pack("<Q", INDEX_VERSION))
        out.write(struct.pack("<B", DTYPE_CODES[dtype]))
        out.write(struct.pack("<Q", count))  # sequences
        out.write(struct.pack("<Q", count + 1))  # document indices: 0, then the end of each document
        for chunk in _chunks(lengths):
            out.write(chunk.tobytes())
        offset = 0  # the byte pointer of each sequence in .bin
        for chunk in _chunks(lengths):
            ends = offset + np.cumsum(chunk, dtype=np.int64) * itemsize
            out.write((ends - chunk.astype(np.int64) * itemsize).tobytes())
            offset = int(ends[-1])
        for start in range(0, count + 1, CHUNK):
            out.write(np.arange(start, min(count + 1, start + CHUNK), dtype=np.int64).tobytes())


def _chunks(lengths):
    lengths.seek(0)
    while block := lengths.read(CHUNK * 4):
        yield np.frombuffer(block, dtype=np.int32)


def blend(shards: Shards, directory: str) -> list[str]:
    """Megatron's `--data-path` list: weight then prefix per source, the weight being the manifest's share
    (the share of trained tokens each source gets, epochs included). Megatron normalises the weights
    (`megatron.core.datasets.utils.get_blend_from_list`, then `normalize`)."""
    words = []
    for source in shards.sources():
        words += [repr(float(shards.entry(source)["share"])), storage.join(directory, source)]
    return words


def export_megatron(shards: Shards, directory: str) -> dict:
    dtype = megatron_dtype(shards.tokenizer["vocab_size"])
    written = {}
    for source in shards.sources():
        written[source] = write_source(shards, source, storage.join(directory, source), dtype)
        written[source].update(share=shards.entry(source)["share"], epochs=shards.entry(source).get("epochs"),
                               add_eos=shards.add_eos(source))
    words = blend(shards, directory)
    storage.write_text(storage.join(directory, "blend.txt"), " ".join(words) + "\n")
    return {"dtype": dtype.name, "sources": written, "blend": words}
