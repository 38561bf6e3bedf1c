"""`llamapipe inspect`: summary, head, show, stats and verify on a shard folder or file, as a user runs
them; verify exits 1 on a corrupted shard, a shard from another tokenizer, ids beyond the vocabulary and
shards missing from or absent in the manifest."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.config import MixtureConfig, SourceShare
from llamapipe.tokenizer.train import file_sha256
from tests.pipeline.token_shards import (
    c4_and_github_docs,
    make_run,
    replace_with_other_tokenizers_shard,
    shard_paths,
)
from tests.text_samples import train_test_tokenizer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("out")
    (root / "tokenizer").mkdir()
    tokenizer = train_test_tokenizer(root / "tokenizer")
    mixture = MixtureConfig(sources={"c4": SourceShare(0.7, 1.0), "github": SourceShare(0.3, 2.0)})
    make_run(str(root), tokenizer, c4_and_github_docs(), {"c4": 2, "github": 1}, mixture)
    return {"root": root, "tokenizer": tokenizer}


@pytest.fixture
def copy(run, tmp_path):
    """A copy of the run that a test may damage."""
    shutil.copytree(run["root"], tmp_path / "out")
    return tmp_path / "out"


def inspect(capsys, *args) -> tuple[int, str]:
    code = main(["inspect", *map(str, args)])
    return code, capsys.readouterr().out


def test_summary_per_source_against_the_manifest(run, capsys):
    shards = run["root"] / "shards"
    code, printed = inspect(capsys, shards)
    assert code == 0
    assert inspect(capsys, "summary", shards) == (0, printed)
    assert inspect(capsys, run["root"]) == (0, printed)  # the run's folder stands for its shards
    manifest = json.loads((shards / "manifest.json").read_text())
    for source, entry in manifest["sources"].items():
        line = next(line.split() for line in printed.splitlines() if line.startswith(source + " "))
        assert line[1:4] == [str(entry["num_shards"]), str(entry["documents"]), str(entry["tokens"])]
        stored = entry["tokens"] / manifest["total_tokens"]
        assert [float(x) for x in line[4:8]] == pytest.approx(
            [stored, entry["share"], entry["configured_share"], entry["epochs"]], abs=0.006)
    code, printed = inspect(capsys, shards / "github", "--json")
    assert json.loads(printed)["sources"].keys() == {"github"}


def test_head_and_decode_print_the_documents_text(run, capsys):
    texts = {d["id"]: d["text"] for docs in c4_and_github_docs().values() for d in docs}
    code, printed = inspect(capsys, "head", run["root"] / "shards" / "github", 2, "--max-chars", 0)
    assert code == 0
    blocks = printed.split("\n=== ")[1:]
    assert len(blocks) == 2
    for block in blocks:
        header, text = block.split(" ===\n", 1)
        doc_id = header.split(" ")[0]
        assert text.rstrip("\n") == texts[doc_id].rstrip("\n")
    code, printed = inspect(capsys, run["root"] / "shards" / "github", "--decode", 1)
    assert code == 0 and printed.count("\n=== github:") == 1


def test_show_finds_a_document_in_its_shard(run, capsys):
    docs = c4_and_github_docs()["c4"]
    for doc in (docs[0], docs[-1], docs[len(docs) // 2]):
        code, printed = inspect(capsys, "show", run["root"] / "shards", doc["id"])
        assert code == 0
        assert printed.split("--- text ---\n", 1)[1] == doc["text"] + "\n"
        assert f"doc_id:     {doc['id']}" in printed and "pieces:     <s>" in printed
    assert main(["inspect", "show", str(run["root"] / "shards"), "c4:no-such-id"]) == 1


def test_stats_give_the_length_distribution(run, capsys):
    code, printed = inspect(capsys, "stats", run["root"] / "shards", "--json")
    assert code == 0
    stats = json.loads(printed)
    for source in ("c4", "github"):
        lengths = np.concatenate([pq.read_table(p).column("num_tokens").to_numpy()
                                  for p in shard_paths(str(run["root"] / "shards"), source)])
        assert stats[source]["documents"] == len(lengths) and stats[source]["max"] == lengths.max()
        assert stats[source]["p50"] == pytest.approx(np.percentile(lengths, 50))
        assert sum(stats[source]["histogram"].values()) == len(lengths)
    code, printed = inspect(capsys, "stats", run["root"] / "shards")
    assert "p99" in printed and "#" in printed


def test_verify_passes_on_the_run_a_folder_and_a_file(run, capsys):
    shards = run["root"] / "shards"
    for path in (shards, shards / "c4", shard_paths(str(shards), "github")[0]):
        code, printed = inspect(capsys, "verify", path)
        assert code == 0, printed
        assert printed.splitlines()[-1].startswith("OK")


def test_verify_catches_a_corrupted_shard(copy, capsys):
    path = shard_paths(str(copy / "shards"), "c4")[1]
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    code, printed = inspect(capsys, "verify", copy / "shards")
    assert code == 1
    assert "sha256 differs" in printed or "unreadable" in printed


def test_verify_catches_a_shard_from_another_tokenizer(copy, tmp_path, capsys):
    (tmp_path / "other").mkdir()
    other = train_test_tokenizer(tmp_path / "other", seed=300, vocab_size=1500)
    path = replace_with_other_tokenizers_shard(str(copy), other, c4_and_github_docs()["c4"], num_shards=2)
    code, printed = inspect(capsys, "verify", copy / "shards")
    assert code == 1
    assert f"{path}: made by another tokenizer" in printed
    mismatches = [line for line in printed.splitlines() if line.startswith("MISMATCH")]
    assert all(f"{path}:" in line for line in mismatches), printed  # only that shard is reported


def test_verify_catches_token_ids_beyond_the_vocabulary(copy, run, capsys):
    path = shard_paths(str(copy / "shards"), "github")[0]
    table = pq.read_table(path)
    tokens = table.column("tokens").to_pylist()
    tokens[3][5] = run["tokenizer"]["vocab_size"]  # one id past the end
    field = table.schema.field("tokens")
    table = table.set_column(2, field, pa.array(tokens, field.type))
    pq.write_table(table, path, compression="zstd")  # the schema carries the footer metadata along
    manifest_path = copy / "shards" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sources"]["github"]["shards"][0]["sha256"] = file_sha256(path)
    manifest_path.write_text(json.dumps(manifest))
    code, printed = inspect(capsys, "verify", copy / "shards")
    assert code == 1
    assert f"token id {run['tokenizer']['vocab_size']} >= vocab size" in printed


def test_verify_catches_shards_missing_from_or_absent_in_the_manifest(copy, capsys):
    shards = copy / "shards"
    first, second = shard_paths(str(shards), "c4")
    shutil.copy(first, shards / "c4" / "c4-extra.parquet")
    code, printed = inspect(capsys, "verify", shards)
    assert code == 1 and "c4-extra.parquet: not listed in the manifest" in printed
    (shards / "c4" / "c4-extra.parquet").unlink()
    (shards / "c4" / second.rsplit("/", 1)[1]).unlink()
    code, printed = inspect(capsys, "verify", shards / "c4")
    assert code == 1 and "listed in the manifest is missing" in printed
    assert inspect(capsys, "verify", shards / "github")[0] == 0  # only the folder asked about


def test_usage_errors_exit_with_2(run, capsys):
    assert main(["inspect", "explode", str(run["root"] / "shards")]) == 2
    assert main(["inspect", "show", str(run["root"] / "shards")]) == 2
    assert main(["inspect", "head", str(run["root"] / "shards"), "many"]) == 2
    assert main(["inspect", str(run["root"] / "nowhere")]) == 2
