"""The trained SentencePiece model as Hugging Face files: `tokenizer.json` (the `tokenizers` library's
format), `tokenizer_config.json` and `special_tokens_map.json`, next to `tokenizer.model`, so that
`LlamaTokenizerFast.from_pretrained(OUT/tokenizer)` loads it (as it loads Meta's released tokenizer).

The pipeline is the one transformers' `LlamaConverter` builds for Meta's model (its "legacy" form, which
is the one that reproduces SentencePiece exactly): BPE over the SentencePiece vocabulary with merges
ranked by the merged piece's id, byte fallback, a normaliser that prepends '▁' and writes spaces as '▁'
(SentencePiece's dummy prefix and whitespace escaping), and a decoder that undoes both. The model file
is read with our own protobuf declaration (`model_proto`), so this works with the protobuf that Beam pins.
Literal '▁' in text: Hugging Face, like SentencePiece, reads it as a space (see `exact_encoding`).
"""

from __future__ import annotations

import json
import os

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE as HfBPE

from llamapipe.tokenizer import model_proto as mp

SPACE_MARK = "\u2581"


def _check_convertible(proto) -> None:
    """The HF pipeline below reproduces SentencePiece only for Meta's kind of model."""
    trainer, normalizer = proto.trainer_spec, proto.normalizer_spec
    problems = []
    if trainer.model_type != mp.BPE:
        problems.append("model_type is not BPE")
    if not trainer.byte_fallback:
        problems.append("byte_fallback is off")
    if normalizer.name not in ("identity", ""):
        problems.append(f"normaliser {normalizer.name!r} is not identity")
    if normalizer.remove_extra_whitespaces:
        problems.append("remove_extra_whitespaces is on")
    if not normalizer.add_dummy_prefix:
        problems.append("add_dummy_prefix is off")
    if problems:
        raise ValueError("cannot write a LLaMA Hugging Face tokenizer for this model: " + "; ".join(problems))


def merges_from_vocab(vocab: dict[str, int], mergeable: set[str]) -> list[tuple[str, str]]:
    """BPE merges implied by a SentencePiece BPE vocabulary: every split of a piece into two pieces,
    ranked by the merged piece's id (SentencePiece merges the pair whose result scores highest, and its
    BPE scores fall with the id), ties by the ids of the two halves (as transformers' `generate_merges`)."""
    merges = []
    for piece in mergeable:
        splits = [(piece[:i], piece[i:]) for i in range(1, len(piece))]
        for left, right in splits:
            if left in vocab and right in vocab:
                merges.append((vocab[piece], vocab[left], vocab[right], left, right))
    merges.sort()
    return [(left, right) for *_, left, right in merges]


def build_hf_tokenizer(model_bytes: bytes) -> tuple[Tokenizer, dict]:
    """A `tokenizers.Tokenizer` equivalent to the SentencePiece model, and its special tokens."""
    proto = mp.parse_model(model_bytes)
    _check_convertible(proto)
    vocab = {piece.piece: index for index, piece in enumerate(proto.pieces)}
    mergeable = {p.piece for p in proto.pieces if p.type in (mp.NORMAL, mp.USER_DEFINED)}
    special = {
        "unk_token": proto.pieces[proto.trainer_spec.unk_id].piece,
        "bos_token": proto.pieces[proto.trainer_spec.bos_id].piece,
        "eos_token": proto.pieces[proto.trainer_spec.eos_id].piece,
    }
    tokenizer = Tokenizer(HfBPE(vocab=vocab, merges=merges_from_vocab(vocab, mergeable),
                                unk_token=special["unk_token"], fuse_unk=True, byte_fallback=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE_MARK),
                                                 normalizers.Replace(" ", SPACE_MARK)])
    tokenizer.decoder = decoders.Sequence([decoders.Replace(SPACE_MARK, " "), decoders.ByteFallback(),
                                           decoders.Fuse(), decoders.Strip(content=" ", left=1)])
    controls = [p.piece for p in proto.pieces if p.type in (mp.CONTROL, mp.UNKNOWN)]
    tokenizer.add_special_tokens([AddedToken(piece, special=True, normalized=False) for piece in controls])
    bos = special["bos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
        special_tokens=[(bos, proto.trainer_spec.bos_id)],
    )
    return tokenizer, special


def tokenizer_config(special: dict, controls: dict[int, str]) -> dict:
    return {
        "tokenizer_class": "LlamaTokenizerFast",
        **special,
        "pad_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        # exact round trip: no space clean-up after decoding
        "clean_up_tokenization_spaces": False,
        # "<s>" or "</s>" written in a document are text, as in SentencePiece, not control tokens
        "split_special_tokens": True,
        "legacy": True,
        "added_tokens_decoder": {
            str(index): {"content": piece, "special": True, "normalized": False, "lstrip": False,
                         "rstrip": False, "single_word": False}
            for index, piece in controls.items()
        },
    }


def write_hf_tokenizer(model_path: str, out_dir: str | None = None) -> list[str]:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json beside `model_path`
    (or into `out_dir`); returns their paths."""
    with open(model_path, "rb") as f:
        model_bytes = f.read()
    tokenizer, special = build_hf_tokenizer(model_bytes)
    out_dir = out_dir or os.path.dirname(os.path.abspath(model_path))
    os.makedirs(out_dir, exist_ok=True)
    controls = {index: token.content for index, token in tokenizer.get_added_tokens_decoder().items()}
    paths = [os.path.join(out_dir, name)
             for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")]
    tokenizer.save(paths[0] + ".tmp")
    _write_json(tokenizer_config(special, controls), paths[1] + ".tmp")
    _write_json(special, paths[2] + ".tmp")
    for path in paths:
        os.replace(path + ".tmp", path)
    return paths


def _write_json(data: dict, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
