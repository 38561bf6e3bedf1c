"""The tokenizer is trained with Meta's settings and gives back exactly the text it encoded."""

import hashlib
import random

import pytest
import sentencepiece as spm

from llamapipe.tokenizer.model_proto import parse_model
from llamapipe.tokenizer.train import sample_sentences, train_tokenizer, write_sample

WORDS = ("model data token river stone garden window market winter summer teacher engine harbor forest "
         "def return class import while for if else print value index").split()

HARD_TEXTS = [
    "def f(x):\n\tif x:\n\t\treturn   x  # tabs and runs of spaces\n",
    "  leading and trailing spaces  ",
    "中文的句子。日本語の文章。한국어 문장.",
    "emoji 😀🚀 and symbols ∑∫√ ≤ ≥",
    r"LaTeX: $\int_0^\infty e^{-x^2}\,dx = \frac{\sqrt{\pi}}{2}$ \cite{x}",
    "right-to-left: שלום עולם, مرحبا بالعالم",
    "stray control characters \x01\x07\x1b and a NUL \x00 inside",
    "digits 1234567890 and 3.14159",
    "\n\nblank lines\n\n\n",
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    rng = random.Random(0)
    lines = (" ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 20))) + f" {rng.randrange(10**6)}."
             for _ in range(4000))
    sample = str(folder / "sample.txt")
    write_sample(lines, sample)
    info = train_tokenizer(sample, str(folder / "tokenizer.model"), vocab_size=300)
    return info


def test_behaves_like_metas_trainer_settings(tokenizer):
    sp = spm.SentencePieceProcessor(model_file=tokenizer["path"])
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    assert [sp.id_to_piece(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
    # split_digits: every digit is its own piece
    assert [p for p in sp.encode("2024", out_type=str) if p != "\u2581"] == ["2", "0", "2", "4"]
    # byte_fallback: an unseen character becomes its UTF-8 bytes, never <unk>
    pieces = sp.encode("\u20ac", out_type=str)
    assert "<0xE2>" in pieces and sp.unk_id() not in sp.encode("\u20ac")
    # identity normaliser (no NFKC): the ligature is not turned into "fi"
    assert "fi" not in "".join(sp.encode("\ufb01", out_type=str))
    # add_dummy_prefix: the first word gets the word-boundary marker
    assert sp.encode("model", out_type=str)[0].startswith("\u2581")
    # remove_extra_whitespaces false: runs of spaces survive
    assert sp.decode(sp.encode("a    b")) == "a    b"
    assert max(len(sp.id_to_piece(i)) for i in range(sp.vocab_size())) <= 16


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_decode_gives_back_the_exact_text(tokenizer, text):
    sp = spm.SentencePieceProcessor(model_file=tokenizer["path"])
    assert sp.decode(sp.encode(text)) == text


def test_too_large_vocabulary_falls_back_to_what_the_sample_supports(tmp_path):
    sample = str(tmp_path / "s.txt")
    write_sample(iter(["a small sample with few words."] * 50), sample)
    info = train_tokenizer(sample, str(tmp_path / "t.model"), vocab_size=32000)
    assert info["requested_vocab_size"] == 32000
    assert 259 < info["vocab_size"] < 32000  # bytes + specials + merges the sample allows
    assert spm.SentencePieceProcessor(model_file=info["path"]).vocab_size() == info["vocab_size"]


def test_the_same_sample_in_two_folders_gives_the_same_model_file(tmp_path):
    rng = random.Random(1)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 15))) for _ in range(1500)]
    models = []
    for folder in (tmp_path / "run-a", tmp_path / "elsewhere" / "a-longer-run-folder"):
        folder.mkdir(parents=True)
        write_sample(iter(lines), str(folder / "sample.txt"))
        info = train_tokenizer(str(folder / "sample.txt"), str(folder / "tokenizer.model"), vocab_size=300,
                               num_threads=1)
        models.append((folder / "tokenizer.model").read_bytes())
        assert info["sha256"] == hashlib.sha256(models[-1]).hexdigest()
    # SentencePiece records the training input as given (an absolute path here); only its name stays
    assert models[0] == models[1]
    assert list(parse_model(models[0]).trainer_spec.input) == ["sample.txt"]
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "run-a" / "tokenizer.model"))
    assert sp.decode(sp.encode("river stone garden")) == "river stone garden"


def test_empty_sample_is_a_clear_error(tmp_path):
    sample = str(tmp_path / "empty.txt")
    write_sample(iter([]), sample)
    with pytest.raises(ValueError, match="every document was dropped"):
        train_tokenizer(sample, str(tmp_path / "t.model"))


def test_sample_follows_mixture_shares(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for source in ("c4", "books"):
        (tmp_path / source).mkdir()
        ids = [f"{source}:{i}" for i in range(400)]
        texts = [f"{source} line {i} " + "word " * 20 for i in range(400)]
        pq.write_table(pa.table({"id": ids, "text": texts}), tmp_path / source / "part.parquet")
    chars = {s: 400 * len(f"{s} line 100 " + "word " * 20) for s in ("c4", "books")}
    budget = sum(chars.values()) // 4
    lines = list(sample_sentences(str(tmp_path), {"c4": 0.8, "books": 0.2}, chars, sample_chars=budget))
    from_c4 = sum(1 for line in lines if line.startswith("c4"))
    from_books = len(lines) - from_c4
    assert from_c4 > 2.5 * from_books > 0


def test_the_sample_and_its_order_do_not_depend_on_how_documents_fell_into_files(tmp_path, monkeypatch):
    """Workers and bundles decide which documents share a file; the sample (and so the tokenizer,
    whose sentence sampling depends on the order) must not change with it, nor with bucketing."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from llamapipe.tokenizer import train as train_module

    docs = [(f"c4:{i}", f"document {i} " + "word " * (i % 7 + 3)) for i in range(600)]
    layouts = {"one": [docs], "three": [docs[i::3] for i in range(3)]}
    shuffled = docs[:]
    random.Random(1).shuffle(shuffled)
    layouts["shuffled"] = [shuffled[:250], shuffled[250:]]
    samples = {}
    for name, parts in layouts.items():
        folder = tmp_path / name / "c4"
        folder.mkdir(parents=True)
        for i, part in enumerate(parts):
            pq.write_table(pa.table({"id": [d for d, _ in part], "text": [t for _, t in part]}),
                           folder / f"part-{i}.parquet")
        probes: dict = {}
        lines = list(sample_sentences(str(tmp_path / name), {"c4": 1.0}, {"c4": 20_000}, 8_000,
                                      probes=probes))
        samples[name] = (lines, probes)
    monkeypatch.setattr(train_module, "BUCKET_CHARS", 1_000)  # many bucket files: the same order
    bucketed = sample_sentences(str(tmp_path / "shuffled"), {"c4": 1.0}, {"c4": 20_000}, 8_000)
    samples["buckets"] = (list(bucketed), samples["one"][1])
    first = samples["one"]
    assert 0 < len(first[0]) < len(docs) and first[1]["c4"]
    assert all(sample == first for sample in samples.values())
