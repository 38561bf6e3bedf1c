"""The Hugging Face files written beside tokenizer.model load in transformers' LlamaTokenizerFast and
encode and decode like SentencePiece."""

import json
import shutil

import pytest
import sentencepiece as spm

from llamapipe.tokenizer import model_proto
from llamapipe.tokenizer.hf import write_hf_tokenizer
from llamapipe.tokenizer.train import LLAMA_TRAINER_SPEC
from tests.text_samples import HARD_TEXTS, varied_texts

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_folder(llama_tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf")
    shutil.copy(llama_tokenizer["path"], folder / "tokenizer.model")
    written = write_hf_tokenizer(str(folder / "tokenizer.model"))
    assert sorted(p.rsplit("/", 1)[1] for p in written) == [
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    return folder


def parity_texts() -> list[str]:
    return varied_texts(seed=21, count=120) + HARD_TEXTS


def test_llama_tokenizer_fast_encodes_and_decodes_like_sentencepiece(hf_folder):
    sp = spm.SentencePieceProcessor(model_file=str(hf_folder / "tokenizer.model"))
    hf = transformers.LlamaTokenizerFast.from_pretrained(str(hf_folder))
    assert (hf.bos_token_id, hf.eos_token_id, hf.unk_token_id) == (1, 2, 0)
    assert len(hf) == sp.vocab_size()
    texts = parity_texts()
    assert all(not t[:1].isspace() for t in texts)  # see the next test
    for text in texts:
        ids = hf.encode(text)
        assert ids == sp.encode(text, add_bos=True), text
        assert hf.decode(ids, skip_special_tokens=True) == text
    # and AutoTokenizer picks the same class from tokenizer_config.json
    auto = transformers.AutoTokenizer.from_pretrained(str(hf_folder))
    assert auto.encode(texts[0]) == sp.encode(texts[0], add_bos=True)


def test_tokenizer_json_itself_matches_sentencepiece_on_every_text(hf_folder):
    """transformers 5's Llama class rebuilds its pre-tokenizer (Metaspace), which adds no '▁' before a
    text that already starts with a space; tokenizer.json itself (the `tokenizers` library, or
    `PreTrainedTokenizerFast`) keeps SentencePiece's dummy prefix there too."""
    from tokenizers import Tokenizer

    sp = spm.SentencePieceProcessor(model_file=str(hf_folder / "tokenizer.model"))
    tokenizer = Tokenizer.from_file(str(hf_folder / "tokenizer.json"))
    tokenizer.encode_special_tokens = True  # '<s>' in a document is text (transformers: split_special_tokens)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(hf_folder / "tokenizer.json"),
                                                split_special_tokens=True)
    for text in parity_texts() + [" one leading space", "   three", "\ttab first", "\nnewline first"]:
        expected = sp.encode(text, add_bos=True)
        assert tokenizer.encode(text).ids == expected, text
        assert tokenizer.decode(expected) == text
        assert fast.encode(text) == expected, text


def test_config_keeps_the_round_trip_exact(hf_folder):
    config = json.loads((hf_folder / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "LlamaTokenizerFast"
    assert config["clean_up_tokenization_spaces"] is False  # would turn "a ." into "a."
    assert config["split_special_tokens"] is True
    assert (config["add_bos_token"], config["add_eos_token"]) == (True, False)


def test_the_model_proto_is_read_without_sentencepiece_generated_module(llama_tokenizer):
    with open(llama_tokenizer["path"], "rb") as f:
        proto = model_proto.parse_model(f.read())
    trainer, normalizer = proto.trainer_spec, proto.normalizer_spec
    assert trainer.model_type == model_proto.BPE
    assert trainer.byte_fallback and trainer.split_digits
    assert (trainer.unk_id, trainer.bos_id, trainer.eos_id, trainer.pad_id) == (0, 1, 2, -1)
    assert normalizer.name == LLAMA_TRAINER_SPEC["normalization_rule_name"]
    assert normalizer.add_dummy_prefix and not normalizer.remove_extra_whitespaces
    assert len(proto.pieces) == llama_tokenizer["vocab_size"]
    assert [p.type for p in proto.pieces[:4]] == [model_proto.UNKNOWN, model_proto.CONTROL,
                                                  model_proto.CONTROL, model_proto.BYTE]


def test_a_model_hf_cannot_reproduce_is_refused(tmp_path):
    sample = tmp_path / "s.txt"
    sample.write_text("\n".join(varied_texts(seed=3, count=40)))
    spm.SentencePieceTrainer.train(input=str(sample), model_prefix=str(tmp_path / "nfkc"), vocab_size=400,
                                   model_type="bpe", normalization_rule_name="nmt_nfkc", minloglevel=2)
    with pytest.raises(ValueError, match="normaliser 'nmt_nfkc' is not identity"):
        write_hf_tokenizer(str(tmp_path / "nfkc.model"))
