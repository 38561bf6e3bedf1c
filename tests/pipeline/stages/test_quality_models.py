"""Quality scores from a fastText model of the user's (pipeline/stages/quality_models.py), with a model this
test trains on real sentences against spam (junk_model.py): the score of the label in `meta`, the threshold
dropping with `low_<name>_score`, score-only models, sources, the histogram events, and the config's
errors (a missing model path, a label the model does not have) naming the key, exit 2 from the CLI.
The stage in a whole run (ledger, report) is tests/pipeline/test_beyond_recipe.py."""

from __future__ import annotations

import random

import apache_beam as beam
import fasttext
import pytest
import yaml

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.config import ConfigError, QualityModelConfig, parse_config
from llamapipe.pipeline.plumbing.drops import DROPPED, LEDGER_ROWS
from llamapipe.pipeline.stages.quality_models import QualityModelsDoFn, check_quality_models, score_bucket
from llamapipe.pipeline.stages.registry import QUALITY_SCORE
from tests.conftest import require_realdata
from tests.pipeline.stages.junk_model import spam_text, train_junk_model
from tests.pipeline.stages.real_texts import c4_pages


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return train_junk_model(require_realdata(), tmp_path_factory.mktemp("junk_model"))


def _outputs(dofn, doc):
    kept, drops, events = [], [], []
    for out in dofn.process(doc):
        if isinstance(out, beam.pvalue.TaggedOutput):
            (drops if out.tag == DROPPED else events).append(out.value)
            assert out.tag in (DROPPED, LEDGER_ROWS)
        else:
            kept.append(out)
    return kept, drops, events


def test_scores_in_meta_and_the_threshold_drops_with_its_reason(model_path):
    realdata = require_realdata()
    rng = random.Random(1)
    docs = [{"id": p.id, "source": "c4", "text": p.text, "meta": {"url_host": "x"}}
            for p in c4_pages(realdata)]
    docs += [{"id": f"spam{i}", "source": "c4", "text": spam_text(rng, 150), "meta": {}} for i in range(5)]
    model = fasttext.load_model(str(model_path))
    dofn = QualityModelsDoFn([QualityModelConfig("junk", str(model_path), "hq", threshold=0.5),
                              QualityModelConfig("hq_only", str(model_path), "__label__hq")])
    dofn.setup()
    kept_ids, dropped_ids = set(), set()
    for doc in docs:
        labels, probabilities = model.predict(doc["text"].replace("\n", " "), k=-1)
        expected = round(float(dict(zip(labels, probabilities, strict=True))["__label__hq"]), 6)
        kept, drops, events = _outputs(dofn, doc)
        if expected < 0.5:
            assert not kept and [d["reason"] for d in drops] == ["low_junk_score"]
            assert drops[0]["stage"] == "quality_models" and drops[0]["detail"] == f"junk {expected} < 0.5"
            assert events == [(("c4", QUALITY_SCORE, f"junk:{score_bucket(expected)}"), (1, 0, 0))]
            dropped_ids.add(doc["id"])
        else:
            (out,) = kept
            assert out["meta"] == {**doc["meta"], "quality_scores": {"junk": expected, "hq_only": expected}}
            assert out["text"] == doc["text"]
            assert [e[0][2] for e in events] == [f"junk:{score_bucket(expected)}",
                                                 f"hq_only:{score_bucket(expected)}"]
            kept_ids.add(doc["id"])
    # The model tells real pages from spam: every spam page dropped, (nearly) every real one kept.
    assert {f"spam{i}" for i in range(5)} <= dropped_ids
    assert len(kept_ids) >= 18


def test_sources_and_score_only(model_path):
    dofn = QualityModelsDoFn([QualityModelConfig("junk", str(model_path), "hq", threshold=0.99,
                                                 sources=["commoncrawl"])])
    dofn.setup()
    doc = {"id": "1", "source": "c4", "text": spam_text(random.Random(2), 50)}
    assert _outputs(dofn, doc) == ([doc], [], [])  # not a source of the model: untouched


def test_score_buckets():
    assert [score_bucket(s) for s in (0.0, 0.049, 0.05, 0.5, 0.999, 1.0)] == [
        "0.00", "0.00", "0.05", "0.50", "0.95", "0.95"]


def test_config_checks(model_path, tmp_path):
    base = {"output": "o", "sources": {"c4": {"inputs": ["x"]}}}
    with pytest.raises(ConfigError, match=r"quality_models\[0\]: threshold must be within"):
        parse_config({**base, "quality_models": [{"name": "a", "path": "m", "label": "x", "threshold": 2}]})
    with pytest.raises(ConfigError, match=r"quality_models\[0\]: name must be lowercase"):
        parse_config({**base, "quality_models": [{"name": "Bad Name", "path": "m", "label": "x"}]})
    with pytest.raises(ConfigError, match=r"quality_models\[0\].label: required key is missing"):
        parse_config({**base, "quality_models": [{"name": "a", "path": "m"}]})
    with pytest.raises(ConfigError, match="the name 'a' is given twice"):
        parse_config({**base, "quality_models": [{"name": "a", "path": "m", "label": "x"}] * 2})
    with pytest.raises(ConfigError, match=r"quality_models\[0\].label: 'good' is not a label of this model "
                                          r"\(its labels: __label__"):
        check_quality_models([QualityModelConfig("a", str(model_path), "good")])
    not_a_model = tmp_path / "not-a-model.bin"
    not_a_model.write_bytes(b"hello")
    with pytest.raises(ConfigError, match=r"quality_models\[0\].path: not a fastText model"):
        check_quality_models([QualityModelConfig("a", str(not_a_model), "hq")])


def test_a_missing_model_is_a_config_error_exit_2(tmp_path, capsys):
    (tmp_path / "in.json.gz").write_bytes(b"")
    config = {"output": str(tmp_path / "out"), "sources": {"c4": {"inputs": [str(tmp_path / "in.json.gz")]}},
              "quality_models": [{"name": "dclm", "path": "models/nowhere.bin", "label": "__label__hq"}]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "config.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llamapipe: error: quality_models[0].path: no fastText model at ")
    assert "nowhere.bin" in err and "Traceback" not in err
