"""A small tokenizer trained with Meta's settings on varied text (prose in six languages, code, LaTeX),
shared by the tokenizer tests."""

from __future__ import annotations

import pytest

from llamapipe.tokenizer.train import train_tokenizer, write_sample
from tests.text_samples import varied_texts


@pytest.fixture(scope="session")
def llama_tokenizer(tmp_path_factory) -> dict:
    """train_tokenizer's summary (path, vocab_size, sha256) of a 2000-piece LLaMA-style BPE model."""
    folder = tmp_path_factory.mktemp("llama-tokenizer")
    lines = (line for text in varied_texts(seed=100, count=600) for line in text.split("\n") if line.strip())
    write_sample(lines, str(folder / "sample.txt"))
    return train_tokenizer(str(folder / "sample.txt"), str(folder / "tokenizer.model"), vocab_size=2000)
