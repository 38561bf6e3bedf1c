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
