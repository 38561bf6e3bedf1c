"""`llamapipe generate`: a trained checkpoint continues text with the shards' own tokenizer."""

from __future__ import annotations

import pytest
import sentencepiece as spm
import torch

from llamapipe.model.generate import generate
from llamapipe.model.llama import ModelArgs, Transformer
from llamapipe.model.train import TrainConfig, train
from llamapipe.pipeline.cli import main

SENTENCE = "the river ran past a mill where seven bakers sold bread"


@pytest.fixture
def trained_run(shards_factory, spm_model, tmp_path):
    """A tiny model trained until it knows one sentence, on shards tokenized by a real SentencePiece."""
    processor = spm.SentencePieceProcessor(model_proto=spm_model)
    docs = [[1] + processor.encode(SENTENCE) for _ in range(60)]
    manifest = shards_factory({"books": [docs]}, vocab_size=processor.get_piece_size(),
                              tokenizer_bytes=spm_model, row_group_size=20)
    cfg = TrainConfig(model="tiny", n_layers=2, seq_len=32, batch_size=8, steps=60, lr=3e-3, warmup_steps=5,
                      log_every=60, checkpoint_every=0, threads=1)
    train(str(manifest), str(tmp_path / "run"), cfg, progress=False)
    return tmp_path / "run", manifest


def test_greedy_sample_continues_the_learnt_sentence(trained_run, capsys):
    run, _ = trained_run
    args = ["generate", str(run), "--prompt", "the river ran past", "--temperature", "0",
            "--max-new-tokens", "30"]
    assert main(args) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(SENTENCE)  # the prompt, then the rest of the sentence it was trained on


def test_sampling_is_seeded_and_a_changed_tokenizer_is_refused(trained_run, capsys):
    run, manifest = trained_run
    args = ["generate", str(run / "checkpoint.pt"), "--prompt", "the", "--temperature", "1.5",
            "--max-new-tokens", "20"]
    outputs = []
    for seed in ("1", "1"):
        assert main([*args, "--seed", seed]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]

    (manifest.parent.parent / "tokenizer" / "tokenizer.model").write_bytes(b"retrained")
    assert main(args) == 2
    assert "changed since training" in capsys.readouterr().err


def test_generation_stops_at_the_end_of_the_document_and_crops_long_contexts():
    torch.manual_seed(0)
    model = Transformer(ModelArgs(dim=32, n_layers=1, n_heads=2, vocab_size=20, multiple_of=8, max_seq_len=8))
    model.eval()
    prompt = [1, 3, 4, 6, 7, 8, 9, 10, 11, 12]  # longer than max_seq_len: the oldest tokens are cut
    greedy = generate(model, prompt, 12, temperature=0)
    assert len(greedy) == 12
    assert generate(model, prompt, 12, temperature=0, stop_ids=(greedy[0],)) == []
    assert greedy[:3] == generate(model, prompt[2:], 3, temperature=0)  # only the last 8 tokens matter
    generator = torch.Generator().manual_seed(0)
    sampled = generate(model, prompt, 12, temperature=0.7, top_k=1, generator=generator)
    assert sampled == greedy  # top-k 1 is greedy whatever the temperature
    with pytest.raises(ValueError, match="BOS"):
        generate(model, [], 3)


def test_generate_without_a_tokenizer_says_so(shards_factory, tmp_path, capsys):
    manifest = shards_factory({"c4": [[[1, 5, 6, 7] * 10] * 8]}, vocab_size=64)  # placeholder tokenizer
    cfg = TrainConfig(model="tiny", n_layers=1, seq_len=8, batch_size=2, steps=1, warmup_steps=1,
                      checkpoint_every=0)
    train(str(manifest), str(tmp_path / "run"), cfg, progress=False)
    (manifest.parent.parent / "tokenizer" / "tokenizer.model").unlink()
    assert main(["generate", str(tmp_path / "run"), "--prompt", "x"]) == 2
    assert "no tokenizer found" in capsys.readouterr().err
