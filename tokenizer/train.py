"""Train the LLaMA SentencePiece BPE tokenizer on a mixture-weighted sample of cleaned documents.

Trainer settings are those of Meta's released tokenizer.model (RECIPE section 4). The sample is
streamed from the cleaned-document Parquet files: each source contributes characters in proportion
to its mixture share, each document is chosen by a seeded hash of its id, and the chosen documents
are written in the order of that hash (through bucket files, each sorted in memory), so neither the
sample nor its order depends on how the documents fell into files (that varies with workers and
bundles; SentencePiece's sampling of `input_sentence_size` sentences depends on the order). Memory
stays bounded however large the corpus is: one bucket (`BUCKET_CHARS`) at a time.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator

import pyarrow.parquet as pq
import sentencepiece as spm

from llamapipe.tokenizer.model_proto import with_training_input

# Meta's tokenizer.model trainer spec (LLaMA 1 and 2).
LLAMA_TRAINER_SPEC = dict(
    model_type="bpe",
    split_digits=True,
    byte_fallback=True,
    character_coverage=0.99995,
    normalization_rule_name="identity",
    add_dummy_prefix=True,
    remove_extra_whitespaces=False,
    allow_whitespace_only_pieces=True,
    max_sentencepiece_length=16,
    unk_id=0,
    bos_id=1,
    eos_id=2,
    pad_id=-1,
    unk_piece="<unk>",
    bos_piece="<s>",
    eos_piece="</s>",
)


BUCKET_CHARS = 64_000_000  # characters of chosen documents sorted in memory at once
PROBE_CHARS = 200_000  # characters per source kept to measure its characters per token


def _position(doc_id: str, seed: int) -> float:
    """Where a document falls in [0, 1) by a seeded hash of its id: chosen when under the probability,
    sampled in this order."""
    digest = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


class LocalFiles:
    """How the sample finds and opens the documents' files: on a local disk. The pipeline passes its
    storage layer instead (the same two calls, for s3:// and gs:// too)."""

    @staticmethod
    def join(*parts: str) -> str:
        return os.path.join(*parts)

    @staticmethod
    def glob(pattern: str) -> list[str]:
        return sorted(glob.glob(pattern))

    @staticmethod
    def open_read(path: str):
        return open(path, "rb")


def sample_sentences(
    documents_dir: str,
    shares: dict[str, float],
    chars_by_source: dict[str, int],
    sample_chars: int,
    seed: int = 0,
    probes: dict[str, list[str]] | None = None,
    files=LocalFiles,
) -> Iterator[str]:
    """Lines of a share-weighted sample of the cleaned documents under `documents_dir/<source>/`,
    source by source, each source's documents in the order of their seeded id hash. With `probes`,
    the first `PROBE_CHARS` of each source's sampled texts (in that order) are collected there.
    `files` lists and opens them (`LocalFiles`, or any object with the same `join`, `glob` and
    `open_read`)."""
    total_share = sum(shares.get(s, 0.0) for s, c in chars_by_source.items() if c > 0) or 1.0
    for source in sorted(chars_by_source):
        available = chars_by_source[source]
        if available <= 0:
            continue
        wanted = sample_chars * shares.get(source, 0.0) / total_share
        probe = probes.setdefault(source, []) if probes is not None else None
        probe_chars = 0
        chosen = _in_hash_order(documents_dir, source, wanted / available, seed, min(wanted, available),
                                files)
        for text in chosen:
            if probe is not None and probe_chars < PROBE_CHARS:
                probe.append(text)
                probe_chars += len(text)
            for line in text.split("\n"):
                if line.strip():
                    yield line


def _in_hash_order(documents_dir: str, source: str, probability: float, seed: int,
                   expected_chars: float, files=LocalFiles) -> Iterator[str]:
    """Texts of the chosen documents of a source, by hash position: spread over bucket files by
    position range, each bucket sorted in memory."""
    share = min(probability, 1.0)
    buckets = max(1, math.ceil(expected_chars / BUCKET_CHARS))
    with tempfile.TemporaryDirectory(prefix="llamapipe-sample-") as folder:
        bucket_files = [open(os.path.join(folder, f"{i}.jsonl"), "w+", encoding="utf-8")
                        for i in range(buckets)]
        try:
            for path in files.glob(files.join(documents_dir, source, "*.parquet")):
                with files.open_read(path) as stream:
                    for batch in pq.ParquetFile(stream).iter_batches(batch_size=256, columns=["id", "text"]):
                        for doc_id, text in zip(batch.column("id").to_pylist(),
                                                batch.column("text").to_pylist(), strict=True):
                            position = _position(doc_id, seed)
                            if text and position < share:
                                bucket = min(buckets - 1, int(position / share * buckets))
                                row = json.dumps([position, doc_id, text], ensure_ascii=False)
                                bucket_files[bucket].write(row + "\n")
            for bucket in bucket_files:
                bucket.seek(0)
                for _, _, text in sorted(json.loads(line) for line in bucket):
                    yield text
        finally:
            for bucket in bucket_files:
                bucket.close()


_TOO_HIGH = re.compile(r"Vocabulary size (?:is )?too high.*?<= (\d+)", re.DOTALL)


def write_sample(sentences: Iterator[str], path: str) -> int:
    """Stream sentences to a text file (one per line) for the trainer; returns the line count."""
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for sentence in sentences:
            f.write(sentence.replace("\r", " ") + "\n")
            count += 1
    return count


def train_tokenizer(
    sample_path: str,
    model_path: str,
    vocab_size: int = 32000,
    input_sentence_size: int = 10_000_000,
    max_sentence_length: int = 16384,
    num_threads: int = 0,
) -> dict:
    """Train on the sample file and write `model_path`. If the sample is too small for `vocab_size`
    (demo scale), SentencePiece says so and the largest vocabulary it allows is used instead."""
    if not os.path.exists(sample_path) or os.path.getsize(sample_path) == 0:
        raise ValueError("no text to train the tokenizer on: every document was dropped")
    requested = vocab_size
    threads = num_threads or os.cpu_count() or 1
    while True:
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                input=sample_path,
                model_writer=model,
                vocab_size=vocab_size,
                input_sentence_size=input_sentence_size,
                shuffle_input_sentence=True,
                max_sentence_length=max_sentence_length,
                num_threads=threads,
                minloglevel=2,
                **LLAMA_TRAINER_SPEC,
            )
            break
        except RuntimeError as exc:
            match = _TOO_HIGH.search(str(exc))
            if not match or int(match.group(1)) >= vocab_size:
                raise
            vocab_size = int(match.group(1))
    # The model records its training input's path; keep only the file name, so that the same sample
    # trained in another output folder gives the same tokenizer.model (and sha256 in the manifest).
    model_bytes = with_training_input(model.getvalue(), [os.path.basename(sample_path)])
    os.makedirs(os.path.dirname(os.path.abspath(model_path)), exist_ok=True)
    tmp = model_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model_bytes)
    os.replace(tmp, model_path)
    return {
        "path": model_path,
        "vocab_size": vocab_size,
        "requested_vocab_size": requested,
        "sha256": file_sha256(model_path),
    }


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
