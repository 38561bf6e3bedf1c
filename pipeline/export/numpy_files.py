"""`llamapipe export numpy SHARDS DIR`: nanoGPT-style flat token files, `DIR/<source>.bin`, the ids of every
document one after the other as `uint16` (nanoGPT's `np.memmap(path, dtype=np.uint16, mode="r")`; `uint32`
only when the vocabulary exceeds 65,536 ids, said in the JSON), documents as the shards store them:
each starts with BOS, which separates it from the one before (and ends with EOS when the run added it).
`DIR/tokens.json` lists per source the file, documents, tokens, the manifest's share and epochs, and the
dtype and special ids, so a training script samples the sources by share as the manifest says.

Streamed as the Megatron export: one row group in memory, written through `storage.open_write`."""

from __future__ import annotations

import numpy as np

from llamapipe.pipeline.export.shards_in import Shards, check_counts, token_batches
from llamapipe.tokenizer.format import storage

SUMMARY_NAME = "tokens.json"


def numpy_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.uint32)


def write_source(shards: Shards, source: str, path: str, dtype: np.dtype) -> dict:
    documents = tokens = 0
    with storage.open_write(path) as out:
        for shard in shards.shard_paths(source):
            for ids, lengths in token_batches(shard):
                out.write(ids.astype(dtype, copy=False).tobytes())
                documents += len(lengths)
                tokens += len(ids)
    check_counts(shards, source, documents, tokens)
    return {"documents": documents, "tokens": tokens}


def export_numpy(shards: Shards, directory: str) -> dict:
    tokenizer = shards.tokenizer
    dtype = numpy_dtype(tokenizer["vocab_size"])
    sources = {}
    for source in shards.sources():
        entry = shards.entry(source)
        sources[source] = {"file": f"{source}.bin",
                           **write_source(shards, source, storage.join(directory, f"{source}.bin"), dtype),
                           "share": entry["share"], "epochs": entry.get("epochs"),
                           "add_eos": shards.add_eos(source)}
    summary = {"format": "flat token ids per source (nanoGPT)", "dtype": dtype.name,
               "vocab_size": tokenizer["vocab_size"], "bos_id": tokenizer.get("bos_id"),
               "eos_id": tokenizer.get("eos_id"), "tokenizer": "tokenizer.model",
               "mixture_mode": shards.manifest.get("mixture_mode"),
               "token_budget": shards.manifest.get("token_budget"),
               "total_tokens": sum(s["tokens"] for s in sources.values()), "sources": sources}
    storage.write_json(storage.join(directory, SUMMARY_NAME), summary)
    return summary
