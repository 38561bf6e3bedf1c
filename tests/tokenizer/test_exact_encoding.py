"""Every document decodes back to exactly its text, including the one character SentencePiece alone
would turn into a space (a literal U+2581)."""

import sentencepiece as spm

from llamapipe.tokenizer.exact_encoding import ExactEncoder
from tests.text_samples import HARD_TEXTS, SPACE_MARK_TEXTS, varied_texts


def test_every_kind_of_text_decodes_back_exactly(llama_tokenizer):
    encoder = ExactEncoder.from_file(llama_tokenizer["path"])
    texts = varied_texts(seed=7, count=80) + HARD_TEXTS + SPACE_MARK_TEXTS
    for text, ids in zip(texts, encoder.encode(texts), strict=True):
        assert ids[0] == encoder.sp.bos_id()
        assert encoder.sp.decode(ids) == text
    assert encoder.escaped == len(SPACE_MARK_TEXTS)


def test_plain_sentencepiece_loses_the_mark_and_the_escape_keeps_it(llama_tokenizer):
    sp = spm.SentencePieceProcessor(model_file=llama_tokenizer["path"])
    text = "a\u2581b"
    assert sp.decode(sp.encode(text)) == "a b"  # why the escape exists
    ids = ExactEncoder.from_file(llama_tokenizer["path"]).encode([text], add_bos=False)[0]
    assert [sp.id_to_piece(i) for i in ids[-4:-1]] == ["<0xE2>", "<0x96>", "<0x81>"]
    assert sp.decode(ids) == text


def test_documents_without_the_mark_are_encoded_exactly_as_sentencepiece_does(llama_tokenizer):
    sp = spm.SentencePieceProcessor(model_file=llama_tokenizer["path"])
    encoder = ExactEncoder.from_file(llama_tokenizer["path"])
    texts = varied_texts(seed=8, count=40) + HARD_TEXTS
    assert encoder.encode(texts, add_bos=True, add_eos=True) == sp.encode(texts, add_bos=True, add_eos=True)
    assert encoder.escaped == 0


def test_eos_ends_an_escaped_document_too(llama_tokenizer):
    encoder = ExactEncoder.from_file(llama_tokenizer["path"])
    (ids,) = encoder.encode(["x\u2581y"], add_bos=True, add_eos=True)
    assert (ids[0], ids[-1]) == (encoder.sp.bos_id(), encoder.sp.eos_id())
    assert encoder.sp.decode(ids) == "x\u2581y"
