"""Encoding that SentencePiece decodes back to exactly the input text, U+2581 included.

With Meta's settings (identity normaliser, byte fallback, no whitespace removal) `decode(encode(x)) == x`
for every string but one kind: SentencePiece writes spaces as U+2581 (LOWER ONE EIGHTH BLOCK, '▁') before
encoding, so a literal '▁' in the text comes back as a space. Such documents are rare (mostly code and
notes about tokenizers), and we keep them exact by escaping: each literal '▁' is encoded as its three
UTF-8 byte pieces `<0xE2><0x96><0x81>`, which every decoder (SentencePiece's, Hugging Face's
`ByteFallback`) turns back into '▁', not into a space. The text between two escapes is encoded by a copy
of the model without the dummy prefix, so no space is invented there. Documents without '▁' (nearly
all) are encoded by one batched `SentencePieceProcessor.encode` call, untouched.
"""

from __future__ import annotations

import sentencepiece as spm

from llamapipe.tokenizer.model_proto import without_dummy_prefix

SPACE_MARK = "\u2581"


class ExactEncoder:
    """`encode(texts)` -> token ids per text (BOS first; EOS if asked); `escaped` counts the texts that
    held a literal '▁'."""

    def __init__(self, model_proto: bytes, num_threads: int = -1):
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self._model_proto = model_proto
        self._continuation: spm.SentencePieceProcessor | None = None
        self._num_threads = num_threads
        self._mark_ids = [self.sp.piece_to_id(f"<0x{b:02X}>") for b in SPACE_MARK.encode("utf-8")]
        if not all(self.sp.is_byte(i) for i in self._mark_ids):
            raise ValueError("the tokenizer has no byte-fallback pieces: a literal '▁' cannot be kept exact")
        self.escaped = 0

    @classmethod
    def from_file(cls, path: str, num_threads: int = -1) -> ExactEncoder:
        with open(path, "rb") as f:
            return cls(f.read(), num_threads)

    def encode(self, texts: list[str], add_bos: bool = True, add_eos: bool = False) -> list[list[int]]:
        encoded = self.sp.encode(texts, add_bos=add_bos, add_eos=add_eos, num_threads=self._num_threads)
        for index, text in enumerate(texts):
            if SPACE_MARK in text:
                encoded[index] = self._encode_escaped(text, add_bos, add_eos)
                self.escaped += 1
        return encoded

    def _encode_escaped(self, text: str, add_bos: bool, add_eos: bool) -> list[int]:
        if self._continuation is None:
            continuation = without_dummy_prefix(self._model_proto)
            self._continuation = spm.SentencePieceProcessor(model_proto=continuation)
        first, *rest = text.split(SPACE_MARK)
        ids = [self.sp.bos_id()] if add_bos else []
        ids += self.sp.encode(first) if first else []
        for segment in rest:
            ids += self._mark_ids
            ids += self._continuation.encode(segment) if segment else []
        if add_eos:
            ids.append(self.sp.eos_id())
        return ids
