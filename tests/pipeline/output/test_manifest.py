"""The manifest: real counts and checksums of the shards, shares and epochs as RECIPE section 1 says,
and a trainer that refuses shards made by another tokenizer."""

from __future__ import annotations

import hashlib
import json
import shutil

import pyarrow.parquet as pq
import pytest

from llamapipe.model.data import MixtureLoader
from llamapipe.pipeline.config import LLAMA_MIXTURE, MixtureConfig, SourceShare
from llamapipe.pipeline.output.manifest import build_manifest, mixture_weights
from llamapipe.tokenizer.format.manifest import validate_manifest
from tests.pipeline.token_shards import c4_and_github_docs, make_run, replace_with_other_tokenizers_shard
from tests.text_samples import train_test_tokenizer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("out")
    (root / "tokenizer").mkdir()
    tokenizer = train_test_tokenizer(root / "tokenizer")
    mixture = MixtureConfig(token_budget=50_000, sources={"c4": SourceShare(0.6, 1.0),
                                                          "github": SourceShare(0.2, 1.0),
                                                          "arxiv": SourceShare(0.2, 1.0)})
    manifest_path = make_run(str(root), tokenizer, c4_and_github_docs(), {"c4": 2, "github": 1}, mixture)
    return {"root": root, "tokenizer": tokenizer, "manifest_path": manifest_path}


def test_manifest_records_the_real_counts_and_checksums(run):
    manifest = json.loads(open(run["manifest_path"]).read())
    shards_dir = run["root"] / "shards"
    assert manifest["tokenizer"]["sha256"] == run["tokenizer"]["sha256"]
    assert manifest["tokenizer"]["vocab_size"] == run["tokenizer"]["vocab_size"]
    assert (shards_dir / manifest["tokenizer"]["path"]).resolve() == (run["root"] / "tokenizer" /
                                                                       "tokenizer.model").resolve()
    docs = c4_and_github_docs()
    assert set(manifest["sources"]) == {"c4", "github"}
    for source, entry in manifest["sources"].items():
        assert entry["num_shards"] == len(entry["shards"]) == {"c4": 2, "github": 1}[source]
        tokens = documents = 0
        for shard in entry["shards"]:
            path = shards_dir / shard["path"]
            assert shard["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            table = pq.read_table(path)
            assert shard["documents"] == table.num_rows
            assert shard["tokens"] == sum(len(t) for t in table.column("tokens").to_pylist())
            tokens, documents = tokens + shard["tokens"], documents + shard["documents"]
        assert (entry["tokens"], entry["documents"]) == (tokens, documents)
        assert documents == len(docs[source])
    assert manifest["sources"]["c4"]["escaped_u2581_documents"] == 5
    assert manifest["total_tokens"] == sum(e["tokens"] for e in manifest["sources"].values())


def test_with_a_token_budget_shares_are_the_target_and_epochs_follow(run):
    manifest = json.loads(open(run["manifest_path"]).read())
    assert manifest["mixture_mode"] == "token_budget" and manifest["token_budget"] == 50_000
    c4, github = manifest["sources"]["c4"], manifest["sources"]["github"]
    # arxiv has no tokens: c4 and github share everything, 0.6 : 0.2
    assert c4["share"] == pytest.approx(0.75, abs=1e-6) and github["share"] == pytest.approx(0.25, abs=1e-6)
    assert c4["epochs"] == pytest.approx(0.75 * 50_000 / c4["tokens"], rel=1e-5)
    assert github["epochs"] == pytest.approx(0.25 * 50_000 / github["tokens"], rel=1e-5)
    assert c4["configured_share"] == 0.6


def test_the_paper_table_is_reproduced_from_unique_token_counts():
    """LLaMA table 1: unique tokens per source implied by share and epochs at 1.4T trained tokens. Given
    those counts, the epochs give back the shares, and the shares with the budget give back the epochs."""
    trained = 1_400_000_000_000
    tokens = {s: round(trained * share / epochs) for s, (share, epochs) in LLAMA_MIXTURE.items()}
    by_epochs = MixtureConfig()
    shares, epochs, budget = mixture_weights(tokens, by_epochs)
    assert budget == pytest.approx(trained, rel=1e-6)
    for source, (share, _) in LLAMA_MIXTURE.items():
        assert shares[source] == pytest.approx(share / sum(s for s, _ in LLAMA_MIXTURE.values()), abs=1e-6)
    by_shares = MixtureConfig(token_budget=trained)
    shares, epochs, _ = mixture_weights(tokens, by_shares)
    total_share = sum(s for s, _ in LLAMA_MIXTURE.values())
    for source, (_, paper_epochs) in LLAMA_MIXTURE.items():
        assert epochs[source] == pytest.approx(paper_epochs / total_share, rel=1e-4)


def test_without_a_budget_epochs_are_the_target_and_shares_follow():
    mixture = MixtureConfig(sources={"c4": SourceShare(0.5, 1.0), "wikipedia": SourceShare(0.5, 3.0)})
    shares, epochs, budget = mixture_weights({"c4": 1000, "wikipedia": 500, "books": 0}, mixture)
    assert budget == 2500 and epochs == {"c4": 1.0, "wikipedia": 3.0}
    assert shares == pytest.approx({"c4": 0.4, "wikipedia": 0.6})


def test_a_trainer_refuses_shards_made_by_another_tokenizer(run, tmp_path):
    root = tmp_path / "out"
    shutil.copytree(run["root"], root)
    validate_manifest(root / "shards" / "manifest.json", root / "tokenizer" / "tokenizer.model")
    (tmp_path / "other").mkdir()
    other = train_test_tokenizer(tmp_path / "other", seed=200, vocab_size=1500)
    # the manifest itself names another tokenizer than the one at hand
    with pytest.raises(ValueError, match="shards were tokenized with sha256"):
        validate_manifest(root / "shards" / "manifest.json", other["path"])
    # one shard was made by another tokenizer, and its checksum copied into the manifest: the footer tells
    replace_with_other_tokenizers_shard(str(root), other, c4_and_github_docs()["c4"], num_shards=2)
    validate_manifest(root / "shards" / "manifest.json", check_footers=False)  # checksums alone agree
    with pytest.raises(ValueError, match="was tokenized by another tokenizer"):
        validate_manifest(root / "shards" / "manifest.json")
    with pytest.raises(ValueError, match="was tokenized by another tokenizer"):
        MixtureLoader(root / "shards" / "manifest.json", seq_len=8, batch_size=2)
    with pytest.raises(ValueError, match="tokenized by tokenizer"):
        build_manifest(str(root / "shards"), str(root / "tokenizer" / "tokenizer.model"),
                       run["tokenizer"]["vocab_size"], MixtureConfig())
