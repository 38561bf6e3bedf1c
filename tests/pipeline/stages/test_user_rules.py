"""The user's own quality rules, by dotted path in `filters.rules.<source>`: built beside the built-in
rules, applied by the quality stage's DoFn with their reasons, and every mistake in naming one is a
config error naming the key, before any work (`check_rules`), exit 2 without a traceback from the CLI.
The pipeline run with a user rule is tests/pipeline/test_beyond_recipe.py."""

from __future__ import annotations

import pytest
import yaml

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.config import ConfigError, FiltersConfig
from llamapipe.pipeline.plumbing.drops import DROPPED
from llamapipe.pipeline.stages.quality import GopherQuality, QualityFilterDoFn, build_rules, check_rules
from tests.pipeline.stages.user_rules import FewerThan100Words, NoShoutedLines

MODULE = "tests.pipeline.stages.user_rules"


def _run(dofn: QualityFilterDoFn, doc: dict) -> list:
    dofn.setup()
    return list(dofn.process(doc))


def test_built_in_names_and_dotted_paths_build_side_by_side():
    rules = build_rules(["gopher_quality", f"{MODULE}:FewerThan100Words", f"{MODULE}:NoShoutedLines"])
    assert [type(r) for r in rules] == [GopherQuality, FewerThan100Words, NoShoutedLines]


def test_a_user_rule_drops_with_its_reason_and_a_cleaner_rewrites():
    dofn = QualityFilterDoFn({"c4": [f"{MODULE}:NoShoutedLines", f"{MODULE}:FewerThan100Words"]})
    long = "\n".join(["BUY NOW AND SAVE", " ".join(["word"] * 120), "Another plain line."])
    (kept,) = _run(dofn, {"id": "a", "source": "c4", "text": long})
    assert kept["text"] == "\n".join([" ".join(["word"] * 120), "Another plain line."])
    (dropped,) = _run(dofn, {"id": "b", "source": "c4", "text": "A short page.\nSHOUTING HERE"})
    assert dropped.tag == DROPPED
    assert (dropped.value["stage"], dropped.value["reason"]) == ("quality", "user_fewer_than_100_words")
    (emptied,) = _run(dofn, {"id": "c", "source": "c4", "text": "ALL CAPS\nONLY"})
    assert emptied.value["reason"] == "no_shouted_lines_no_lines_left"


def test_an_empty_reason_is_the_class_name_and_a_wrong_shape_fails_loudly():
    (dropped,) = _run(QualityFilterDoFn({"c4": [f"{MODULE}:EmptyReason"]}), {"id": "a", "source": "c4",
                                                                              "text": "x"})
    assert dropped.value["reason"] == "EmptyReason"
    with pytest.raises(TypeError, match=r"ReturnsABool returned True, not \(keep, reason\)"):
        _run(QualityFilterDoFn({"c4": [f"{MODULE}:ReturnsABool"]}), {"id": "a", "source": "c4", "text": "x"})


@pytest.mark.parametrize(("rule", "message"), [
    ("no_such_package_xyz.rules:Rule", "cannot import 'no_such_package_xyz.rules'"),
    (f"{MODULE}:Missing", f"module '{MODULE}' has no class 'Missing'"),
    (f"{MODULE}:NotARule", "follows neither rule protocol"),
    (f"{MODULE}:NeedsArguments", "cannot make it without arguments"),
    ("gopher_qualty", "unknown filter rule 'gopher_qualty'"),
    (f"{MODULE}.FewerThan100Words:", "neither a built-in rule"),
])
def test_a_bad_rule_is_a_config_error_naming_the_key(rule, message):
    with pytest.raises(ConfigError) as error:
        check_rules(FiltersConfig(rules={"c4": ["c4_lines", rule]}))
    assert str(error.value).startswith("filters.rules.c4[1]: ")
    assert message in str(error.value)


def test_the_cli_refuses_a_bad_rule_before_any_work(tmp_path, capsys):
    (tmp_path / "in.json.gz").write_bytes(b"")
    out = tmp_path / "out"
    config = {"output": str(out), "sources": {"c4": {"inputs": [str(tmp_path / "in.json.gz")]}},
              "filters": {"rules": {"c4": [f"{MODULE}:NotARule"]}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "config.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"llamapipe: error: filters.rules.c4[0]: {MODULE}:NotARule: follows neither")
    assert "Traceback" not in err
    assert not out.exists()
