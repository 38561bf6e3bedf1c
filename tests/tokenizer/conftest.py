"""A small tokenizer trained with Meta's settings on varied text (prose in six languages, code, LaTeX),
shared by the tokenizer tests."""

from __future__ import annotations

import pytest

from tests.text_samples import train_test_tokenizer


@pytest.fixture(scope="session")
def llama_tokenizer(tmp_path_factory) -> dict:
    """train_tokenizer's summary (path, vocab_size, sha256) of a 2000-piece LLaMA-style BPE model."""
    return train_test_tokenizer(tmp_path_factory.mktemp("llama-tokenizer"))
