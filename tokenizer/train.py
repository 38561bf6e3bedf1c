"""Train the LLaMA SentencePiece BPE tokenizer on a mixture-weighted sample of cleaned documents.

Trainer settings are those of Meta's released tokenizer.model (RECIPE section 4). The sample is
streamed from the cleaned-document Parquet files: each source contributes characters in proportion
to its mixture share, each document is chosen by a seeded hash of its id (so the sample does not
depend on file order or worker count), and SentencePiece caps what it keeps with
`input_sentence_size`, so memory stays bounded however large the corpus is.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import re
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


def _chosen(doc_id: str, probability: float, seed: int) -> bool:
    if probability >= 1:
        return True
    digest = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < probability


def sample_sentences(
    documents_dir: str,
    shares: dict[str, float],
    chars_by_source: dict[str, int],
    sample_chars: int,
    seed: int = 0,
) -> Iterator[str]:
    """Lines of a share-weighted sample of the cleaned documents under `documents_dir/<source>/`."""
    total_share = sum(shares.get(s, 0.0) for s, c in chars_by_source.items() if c > 0) or 1.0
    for source in sorted(chars_by_source):
        available = chars_by_source[source]
        if available <= 0:
            continue
        wanted = sample_chars * shares.get(source, 0.0) / total_share
        probability = wanted / available
        for path in sorted(glob.glob(os.path.join(documents_dir, source, "*.parquet"))):
            parquet = pq.ParquetFile(path)
            for batch in parquet.iter_batches(batch_size=256, columns=["id", "text"]):
                for doc_id, text in zip(batch.column("id").to_pylist(), batch.column("text").to_pylist(),
                                        strict=True):
                    if text and _chosen(doc_id, probability, seed):
                        for line in text.split("\n"):
                            if line.strip():
                                yield line


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
