"""Config errors name the key and stop the run with exit code 2 before any work starts."""

import textwrap

import pytest

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.config import ConfigError, load_config, parse_config

REPO_CONFIGS = ["configs/demo.yaml", "configs/llama.yaml"]


def write(tmp_path, body: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(body))
    return str(path)


@pytest.fixture
def c4_file(tmp_path):
    path = tmp_path / "c4.json"
    path.write_text('{"text": "Hello world.", "url": "u"}\n')
    return str(path)


@pytest.mark.parametrize("config_path", REPO_CONFIGS)
def test_shipped_configs_parse(config_path):
    from tests.conftest import REPO

    config = load_config(str(REPO / config_path), check_files=False)
    assert config.enabled_sources() == [
        "commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange"
    ]
    assert abs(sum(m.share for m in config.mixture.sources.values()) - 1.0) < 1e-9


def test_unknown_key_is_named(tmp_path, c4_file):
    path = write(tmp_path, f"""
        output: {tmp_path}/out
        sources:
          c4: {{inputs: ["{c4_file}"], colour: blue}}
        """)
    with pytest.raises(ConfigError, match=r"^sources\.c4\.colour: unknown key"):
        load_config(path)


def test_wrong_type_is_named(tmp_path, c4_file):
    path = write(tmp_path, f"""
        output: {tmp_path}/out
        sources:
          c4: {{inputs: ["{c4_file}"]}}
        dedup: {{num_perm: lots}}
        """)
    with pytest.raises(ConfigError, match=r"^dedup\.num_perm: expected int, got str 'lots'"):
        load_config(path)


def test_invalid_value_is_named():
    with pytest.raises(ConfigError, match=r"dedup.*scope"):
        parse_config({"output": "o", "sources": {"c4": {"inputs": ["x"]}}, "dedup": {"scope": "everywhere"}})


def test_wikipedia_language_policy_values_are_checked():
    base = {"output": "o", "sources": {"c4": {"inputs": ["x"]}}}

    def policy(**values):
        return parse_config({**base, "langid": {"wikipedia": values}}).langid.wikipedia

    with pytest.raises(ConfigError, match=r"^langid\.wikipedia: other_language_score must be within"):
        policy(other_language_score=1.5)
    with pytest.raises(ConfigError, match=r"^langid\.wikipedia: groups\[1\] must name at least two"):
        policy(groups=[["hr", "sr"], ["hr"]])
    with pytest.raises(ConfigError, match=r"^langid\.wikipedia: groups\[0\]: 'Croatian' is not a lid"):
        policy(groups=[["Croatian", "sr"]])
    chosen = policy(other_language_score=0.8, groups=[["hr", "sr"]])
    assert (chosen.other_language_score, chosen.groups, chosen.enabled) == (0.8, [["hr", "sr"]], True)
    assert ["bs", "hr", "sh", "sl", "sr"] in policy().groups


def test_missing_input_is_named(tmp_path):
    path = write(tmp_path, f"""
        output: {tmp_path}/out
        sources:
          c4: {{inputs: ["{tmp_path}/nothing/*.json.gz"]}}
        """)
    with pytest.raises(ConfigError, match=r"^sources\.c4\.inputs\[0\]: no file matches"):
        load_config(path)


def test_unknown_source_is_named():
    with pytest.raises(ConfigError, match=r"^sources\.redpajama: unknown source"):
        parse_config({"output": "o", "sources": {"redpajama": {"inputs": ["x"]}}})


def test_cli_exits_2_with_the_key_in_the_message(tmp_path, c4_file, capsys):
    path = write(tmp_path, f"""
        output: {tmp_path}/out
        sources:
          c4: {{inputs: ["{c4_file}"]}}
        tokenizer: {{vocab_size: 8000, colour: red}}
        """)
    assert main(["run", path]) == 2
    err = capsys.readouterr().err
    assert "tokenizer.colour: unknown key" in err
    assert not (tmp_path / "out").exists()  # nothing started


def test_output_folder_holding_something_else_is_refused(tmp_path, c4_file, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    path = write(tmp_path, f"""
        output: {out}
        sources:
          c4: {{inputs: ["{c4_file}"]}}
        """)
    assert main(["run", path]) == 2
    assert "does not hold a llamapipe run" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "keep me"


def test_unreadable_input_is_named_with_exit_2(tmp_path, c4_file, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading the file")
    locked = tmp_path / "locked.json"
    locked.write_text('{"text": "secret"}\n')
    locked.chmod(0)
    path = write(tmp_path, f"""
        output: {tmp_path}/out
        sources:
          c4: {{inputs: ["{c4_file}", "{locked}"]}}
        """)
    assert main(["run", path]) == 2
    err = capsys.readouterr().err
    assert f"sources.c4.inputs[1]: cannot read '{locked}'" in err
    assert not (tmp_path / "out").exists()


def test_output_folder_holding_a_run_of_a_different_config_is_refused(tmp_path, c4_file, capsys):
    import json

    from llamapipe.pipeline.config import config_as_dict
    from llamapipe.pipeline.run import prepare_output

    out = tmp_path / "out"
    body = """
        output: {out}
        sources:
          c4: {{inputs: ["{input}"]}}
        langid: {{threshold: {threshold}}}
        """
    earlier = load_config(write(tmp_path, body.format(out=out, input=c4_file, threshold=0.6)))
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"config": config_as_dict(earlier), "stages": {}}))
    (out / "shards").mkdir()
    (out / "shards" / "manifest.json").write_text("{}")

    # (a config that differs only by its input files is an incremental run: tests/pipeline/test_file_work.py)
    path = write(tmp_path, body.format(out=out, input=c4_file, threshold=0.5))
    assert main(["run", path]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    assert f"output: '{out}' holds a run of a different config (langid.threshold differs)" in err
    assert (out / "shards" / "manifest.json").read_text() == "{}"  # the earlier run is untouched

    # The same config may run again into its own folder (its results are replaced).
    prepare_output(str(out), json.loads(json.dumps(config_as_dict(earlier))))
    assert not (out / "shards").exists() and (out / "run.json").exists()


def test_a_run_recorded_before_a_section_existed_resumes_at_its_default(tmp_path, c4_file):
    """A run.json written by an earlier llamapipe lacks the sections added since (decontamination, pii,
    quality_models): the same config resumes into it; one that sets such a section differently is refused."""
    import json

    from llamapipe.pipeline.config import ConfigError, config_as_dict, config_defaults
    from llamapipe.pipeline.run import prepare_output

    out = tmp_path / "out"
    body = f"""
        output: {out}
        sources:
          c4: {{inputs: ["{c4_file}"]}}
        """
    config = load_config(write(tmp_path, body))
    recorded = json.loads(json.dumps(config_as_dict(config)))
    for added in ("decontamination", "pii", "quality_models"):
        del recorded[added]
    del recorded["dedup"]["threshold"]  # an option added to a section that existed
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"config": recorded, "stages": {}}))
    defaults = config_defaults(config)

    now = json.loads(json.dumps(config_as_dict(config)))
    prepare_output(str(out), now, fresh=False, defaults=defaults)  # accepted

    (out / "run.json").write_text(json.dumps({"config": recorded, "stages": {}}))
    changed = json.loads(json.dumps(now))
    changed["pii"]["enabled"] = True
    with pytest.raises(ConfigError, match=r"\(pii.enabled differs\)"):
        prepare_output(str(out), changed, fresh=False, defaults=defaults)
    changed = json.loads(json.dumps(now))
    changed["dedup"]["threshold"] = 0.5
    with pytest.raises(ConfigError, match=r"\(dedup.threshold differs\)"):
        prepare_output(str(out), changed, fresh=False, defaults=defaults)


def test_a_mapping_of_the_users_keys_is_compared_as_written(tmp_path, c4_file):
    """`filters.rules: {c4: [...]}` replaces the default rules (commoncrawl's and c4's) whole, and a
    mixture of the config's one source replaces the seven of the default mixture: a rerun into its own
    folder resumes, it is not completed with the default's other keys and refused."""
    import json

    from llamapipe.pipeline.config import config_as_dict, config_defaults
    from llamapipe.pipeline.run import prepare_output

    out = tmp_path / "out"
    body = f"""
        output: {out}
        sources:
          c4: {{inputs: ["{c4_file}"]}}
        filters: {{rules: {{c4: [c4_lines]}}}}
        mixture: {{sources: {{c4: {{share: 1.0, epochs: 1.0}}}}}}
        """
    config = load_config(write(tmp_path, body))
    now = json.loads(json.dumps(config_as_dict(config)))
    assert list(now["mixture"]["sources"]) == ["c4"]
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"config": now, "stages": {}}))
    prepare_output(str(out), now, fresh=False, defaults=config_defaults(config))  # accepted


def test_loading_a_config_does_not_import_torch():
    """`llamapipe run` validates the whole config, the trainer's model preset included, without paying
    for torch's import (seconds at every start)."""
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys; from llamapipe.pipeline.config import load_config; "
            f"load_config({str(REPO / 'configs/demo.yaml')!r}, check_files=False); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
