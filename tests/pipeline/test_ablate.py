"""`llamapipe ablate` on a tiny demo corpus (scale 0.05), variants full + raw + no_dedup, 2 seeds, a few
training steps: the fairness rules (one tokenizer file, the same training tokens, evaluation documents
never in any variant's training) and the shared per-file work not redone."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from llamapipe.model.data import is_held_out
from llamapipe.pipeline.ablate.runner import file_eval_set, run_ablation
from llamapipe.pipeline.ablate.variants import available_variants, select_variants
from llamapipe.pipeline.cli import main
from llamapipe.pipeline.config import ConfigError, load_config
from llamapipe.sources.demo import write_demo_corpus
from tests.conftest import demo_config


def tiny_config(tmp_path) -> str:
    corpus = tmp_path / "demo-data"
    write_demo_corpus(corpus, seed=0, scale=0.05)
    data = demo_config(corpus, tmp_path / "unused")
    data["runner"]["options"] = {"direct_running_mode": "in_memory", "direct_num_workers": 1}
    data["tokenizer"]["vocab_size"] = 1000
    data["train"].update(batch_size=4, seq_len=64, warmup_steps=1, holdout_fraction=0.2)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def training_ids(manifest_path, fraction: float) -> set[str]:
    """The documents the trainer's loader trains on: every shard row not held out at `fraction`."""
    manifest = json.loads(open(manifest_path).read())
    root = manifest_path.parent
    ids = set()
    for entry in manifest["sources"].values():
        for shard in entry["shards"]:
            ids |= set(pq.read_table(root / shard["path"], columns=["doc_id"]).column("doc_id").to_pylist())
    return {i for i in ids if not is_held_out(i, fraction)}, ids


@pytest.mark.time_bound(300)
def test_ablation_is_fair_and_reuses_the_shared_per_file_work(tmp_path):
    config = load_config(tiny_config(tmp_path))
    out = tmp_path / "ablate"
    ablation = run_ablation(config, str(out), ["raw", "no_dedup"], seeds=2, tokens=1024, log=lambda *_: None)

    names = [v["name"] for v in ablation["variants"]]
    assert names == ["raw", "full", "no_dedup"]
    variants = {v["name"]: v for v in ablation["variants"]}
    assert variants["raw"]["stages_off"] == ["langid", "quality", "decontamination", "dedup", "line_dedup",
                                             "classifier"]

    # One tokenizer: the same file in every variant, and the manifests say so.
    digests = {name: hashlib.sha256((out / "variants" / name / "tokenizer" / "tokenizer.model").read_bytes())
               .hexdigest() for name in names}
    assert len(set(digests.values())) == 1, digests
    assert {v["tokenizer_sha256"] for v in ablation["variants"]} == set(digests.values())

    # The same training tokens for every variant and seed (1024 tokens = 4 steps of 4 x 64).
    runs = [(v["name"], s) for v in ablation["variants"] for s in v["seeds"]]
    assert {s["train_tokens"] for _, s in runs} == {1024}
    assert [s["seed"] for s in variants["raw"]["seeds"]] == [0, 1]
    assert all(s["eval_loss"] > 0 and s["eval_loss_by_source"] for _, s in runs)
    # Seeds differ: not one run copied
    assert variants["full"]["seeds"][0]["eval_loss"] != variants["full"]["seeds"][1]["eval_loss"]

    # Evaluation documents: never in any variant's training, though present in the variants' shards.
    eval_set = json.loads((out / "eval_set.json").read_text())
    eval_ids = {i for entry in eval_set["sources"].values() for i in entry["ids"]}
    assert eval_ids and set(eval_set["sources"]) <= {"wikipedia", "books", "arxiv"}
    for name in names:
        folder = out / "variants" / name
        for seed in (0, 1):
            checkpoint = torch.load(folder / f"ablate-seed{seed}" / "checkpoint.pt", weights_only=True)
            assert checkpoint["config"]["holdout_fraction"] == ablation["train"]["holdout_fraction"]
            assert checkpoint["tokenizer"]["sha256"] == digests[name]
        fraction = checkpoint["config"]["holdout_fraction"]
        trained, present = training_ids(folder / "shards" / "manifest.json", fraction)
        assert not eval_ids & trained, name
        assert eval_ids & present, f"{name}: the evaluation documents are not in its corpus at all"

    # Shared work: no_dedup reused every per-file record of full, raw did its own (langid, quality off).
    files = {name: json.loads((out / "variants" / name / "run.json").read_text())["files"] for name in names}
    assert files["full"]["processed"] == files["full"]["total"] > 0
    assert files["no_dedup"]["processed"] == 0 and files["no_dedup"]["reused"] == files["full"]["total"]
    assert files["raw"]["processed"] == files["raw"]["total"]
    # raw kept more than full (filters off), no_dedup at least as much as full
    assert variants["raw"]["corpus"]["documents"] > variants["full"]["corpus"]["documents"]
    assert variants["no_dedup"]["corpus"]["documents"] >= variants["full"]["corpus"]["documents"]

    report = (out / "report.html").read_text()
    assert report.count("<svg") == 2 and "no_dedup" in report
    assert json.loads((out / "ablation.json").read_text())["variants"][0]["name"] == "raw"

    # --eval FILE: texts tokenized with the shared tokenizer, BOS first, grouped by their `source`
    manifest = json.loads((out / "variants" / "full" / "shards" / "manifest.json").read_text())
    texts = tmp_path / "eval.jsonl"
    texts.write_text(json.dumps({"text": "The river flows to the sea.", "source": "mine"}) + "\n"
                     + json.dumps({"text": "A second line of text."}) + "\n")
    evaluation = file_eval_set(str(texts), manifest, str(out / "variants" / "full"))
    assert sorted(evaluation["sources"]) == ["eval", "mine"]
    assert evaluation["tokens"]["mine"][0] == manifest["tokenizer"]["bos_id"]
    assert len(evaluation["tokens"]["mine"]) > 5
    texts.write_text("not json\n")
    with pytest.raises(ConfigError, match="eval.jsonl:1"):
        file_eval_set(str(texts), manifest, str(out / "variants" / "full"))

    # A rerun redoes nothing: every variant's pipeline run resumes, the trainings are kept.
    stamp = (out / "variants" / "raw" / "ablate-seed0" / "checkpoint.pt").stat().st_mtime_ns
    again = run_ablation(config, str(out), ["raw", "no_dedup"], seeds=2, tokens=1024, log=lambda *_: None)
    assert (out / "variants" / "raw" / "ablate-seed0" / "checkpoint.pt").stat().st_mtime_ns == stamp
    assert again["variants"][0]["seeds"][0]["eval_loss"] == variants["raw"]["seeds"][0]["eval_loss"]


def test_variants_are_the_stages_on_in_the_config(tmp_path):
    config = load_config(tiny_config(tmp_path))
    names = [v.name for v in available_variants(config)]
    assert names == ["raw", "full", "no_langid", "no_quality", "no_decontamination", "no_dedup",
                     "no_line_dedup", "no_classifier"]  # perplexity (no model), pii, quality_models: off
    assert [v.name for v in select_variants(config, ["no_dedup"])] == ["full", "no_dedup"]
    with pytest.raises(ConfigError, match="no_pii"):
        select_variants(config, ["no_pii"])


def test_an_unknown_variant_is_one_error_naming_it(tmp_path, capsys):
    code = main(["ablate", tiny_config(tmp_path), "--out", str(tmp_path / "a"), "--variants", "full,nodedup"])
    err = capsys.readouterr().err
    assert code == 2 and "'nodedup'" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists()
