"""LLaMA's reference classifier: trained in the run on pages cited by Wikipedia against random pages,
it keeps reference-like pages and drops the others; without citations it steps aside and says so."""

from __future__ import annotations

import json
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from llamapipe.pipeline.config import ClassifierConfig
from llamapipe.pipeline.stages.classifier import ReferenceClassifier, url_key
from llamapipe.sources.demo.text import EnglishWriter


def test_url_key_ignores_what_does_not_change_the_page():
    assert url_key("https://www.Example.org/a/b/#top") == url_key("http://example.org/a/b")
    assert url_key("https://example.org:443/a?x=1") == "example.org/a?x=1"
    assert url_key("https://example.org/a") != url_key("https://example.org/b")
    assert url_key("") == "" and url_key("http://[broken") == ""


def pages(register: str, count: int, seed: int, prefix: str) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        writer = EnglishWriter(random.Random(rng.getrandbits(32)), register=register)
        out.append({"id": f"commoncrawl:{prefix}{i}", "source": "commoncrawl", "url": f"https://site{i}.com/{prefix}",
                    "text": "\n".join(writer.paragraphs(4)), "meta": {}})
    return out


@pytest.fixture(scope="module")
def corpus():
    cited = pages("formal", 60, 1, "cited")
    uncited = pages("casual", 90, 2, "random")
    # Citations are written as editors write them: other scheme, www., a fragment.
    refs = [d["url"].replace("https://", "http://www.") + "#cite" for d in cited]
    wikipedia = [{"id": f"wikipedia:en/{i}", "source": "wikipedia", "text": "An article.", "url": "",
                  "meta": {"ref_urls": refs[i::3]}} for i in range(3)]
    c4 = {"id": "c4:x", "source": "c4", "text": "Not classified.", "url": "", "meta": {}}
    return cited, uncited, wikipedia, c4


def run(tmp_path, wikipedia, docs, **options) -> tuple[dict, list, list]:
    config = ClassifierConfig(**{"min_positives": 20, **options})
    kept_file, dropped_file = tmp_path / "kept.json", tmp_path / "dropped.json"
    with TestPipeline() as p:
        out = (p | "Wiki" >> beam.Create(wikipedia or [{"id": "x", "source": "wikipedia", "meta": {}}])
               | "OnlyGiven" >> beam.Filter(lambda d: bool(wikipedia)),
               p | "Docs" >> beam.Create(docs)) | ReferenceClassifier(
                   config, str(tmp_path), str(tmp_path / "work"))
        outputs = (("kept", out["documents"], kept_file), ("dropped", out["dropped"], dropped_file))
        for name, pcoll, path in outputs:
            (pcoll | f"Ids_{name}" >> beam.Map(lambda d: d["id"]) | f"All_{name}" >> beam.combiners.ToList()
             | f"Save_{name}" >> beam.Map(lambda ids, path=path: path.write_text(json.dumps(ids))))
    status = json.loads((tmp_path / "metrics.json").read_text())
    return status, json.loads(kept_file.read_text()), json.loads(dropped_file.read_text())


def test_trains_on_cited_pages_and_separates_them_from_random_ones(tmp_path, corpus):
    cited, uncited, wikipedia, c4 = corpus
    status, kept, dropped = run(tmp_path, wikipedia, cited + uncited + [c4])
    assert status["status"] == "trained" and status["cited_pages_found"] == 60
    assert status["heldout"]["accuracy"] >= 0.9
    assert (tmp_path / "model.bin").exists()
    assert "c4:x" in kept  # other sources pass untouched
    assert sum(d["id"] in kept for d in cited) >= 0.9 * len(cited)
    assert sum(d["id"] in dropped for d in uncited) >= 0.8 * len(uncited)
    assert len(kept) + len(dropped) == len(cited) + len(uncited) + 1

    # The trained model, named in the config, is loaded instead of training a new one.
    loaded_dir = tmp_path / "loaded"
    loaded_dir.mkdir()
    status, kept_again, _ = run(loaded_dir, wikipedia, cited + uncited, model=str(tmp_path / "model.bin"))
    assert status["status"] == "loaded" and status["evaluation"]["accuracy"] >= 0.9
    assert set(kept_again) == set(kept) - {"c4:x"}


def test_without_cited_pages_the_stage_is_skipped_and_keeps_everything(tmp_path, corpus):
    cited, uncited, _, _ = corpus
    status, kept, dropped = run(tmp_path, [], cited[:10] + uncited[:10])
    assert status["status"] == "skipped"
    assert "0 CommonCrawl pages are cited" in status["reason"]
    assert len(kept) == 20 and dropped == []


def test_training_is_reproducible_in_a_process_that_has_run_other_work(tmp_path, corpus):
    """Trained inside a Beam worker that had run other stages, the same sample once gave another
    model (and on a large corpus only NaN); training now runs in a fresh process (fasttext_train.py).
    This test process has run other tests' pipelines, fastText included."""
    cited, uncited, wikipedia, _ = corpus
    outcomes = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        status, kept, dropped = run(folder, wikipedia, cited + uncited)
        outcomes.append(((folder / "model.bin").read_bytes(), sorted(kept), sorted(dropped),
                         status["heldout"], status["training"]))
    assert outcomes[0] == outcomes[1]


def test_when_every_training_attempt_diverges_the_stage_steps_aside_and_keeps_every_page(tmp_path, corpus):
    cited, uncited, wikipedia, _ = corpus
    status, kept, dropped = run(tmp_path, wikipedia, cited + uncited, lr=1e5, epoch=5)
    assert status["status"] == "skipped" and "Encountered NaN" in status["reason"]
    assert sorted(kept) == sorted(d["id"] for d in cited + uncited) and dropped == []
