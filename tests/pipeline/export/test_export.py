"""`llamapipe export megatron|numpy|hf` as a user runs it, on shards written by the real shard writer
(several shards and row groups per source): every document of the Megatron files read back by
Megatron-Core's own `IndexedDataset` (megatron-core, test-only) equals its row of the Parquet shards, the
blend parses with Megatron's `get_blend_from_list` into the manifest's shares; the numpy files read with
`np.memmap` equal the shards; `datasets.load_dataset` reads the shards as they are and through the card's
configs. A vocabulary of 65,500 ids or more gives int32 (Megatron) and uint32 (numpy) files. Bad input is
one message, exit 2."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.config import MixtureConfig, SourceShare
from llamapipe.pipeline.output.manifest import build_manifest, write_manifest
from tests.object_stores import no_aws_environment, s3_server  # noqa: F401 (the fixture)
from tests.pipeline.token_shards import c4_and_github_docs, shard_paths, tokenize
from tests.text_samples import train_test_tokenizer

with warnings.catch_warnings():  # "Transformer Engine and Apex are not installed": CPU-only, as expected
    warnings.simplefilter("ignore")
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from megatron.core.datasets.utils import get_blend_from_list

SHARDS = {"c4": 2, "github": 1}


def make_shards(root, vocab_size: int | None = None, add_eos: bool = False) -> str:
    """root/shards (c4 in 2 shards, github in 1; row groups of 7 documents) and its manifest."""
    (root / "tokenizer").mkdir()
    tokenizer = train_test_tokenizer(root / "tokenizer")
    shards = root / "shards"
    for source, docs in c4_and_github_docs().items():
        tokenize(docs, source, str(shards), tokenizer, SHARDS[source], add_eos=add_eos, row_group_documents=7,
                 vocab_size=vocab_size)
    mixture = MixtureConfig(sources={"c4": SourceShare(0.7, 1.0), "github": SourceShare(0.3, 2.0)})
    manifest = build_manifest(str(shards), tokenizer["path"], vocab_size or tokenizer["vocab_size"], mixture)
    write_manifest(manifest, str(shards / "manifest.json"))
    return str(shards)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    return make_shards(tmp_path_factory.mktemp("run"), add_eos=True)


@pytest.fixture(scope="module")
def wide_shards(tmp_path_factory) -> str:
    """A vocabulary declared at 70,000 ids: list<uint32> shards (the ids themselves stay small)."""
    return make_shards(tmp_path_factory.mktemp("wide"), vocab_size=70000)


def rows(shards: str, source: str) -> list[list[int]]:
    """The source's documents as the shards hold them, in shard order then row order."""
    paths = shard_paths(shards, source)
    assert len(paths) == SHARDS[source] and all(pq.ParquetFile(p).num_row_groups > 1 for p in paths[:1])
    return [r for path in paths for r in pq.read_table(path, columns=["tokens"]).column(0).to_pylist()]


def export(capsys, *args) -> tuple[int, str, str]:
    code = main(["export", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def manifest_of(shards: str) -> dict:
    return json.loads(open(os.path.join(shards, "manifest.json")).read())


@pytest.mark.parametrize("which, dtype", [("shards", np.uint16), ("wide_shards", np.int32)])
def test_megatron_files_read_by_megatron_core_equal_the_shards(request, which, dtype, tmp_path, capsys):
    shards = request.getfixturevalue(which)
    out = tmp_path / "megatron"
    code, printed, error = export(capsys, "megatron", shards, out)
    assert code == 0, error
    manifest = manifest_of(shards)
    for source in SHARDS:
        dataset = IndexedDataset(str(out / source))
        expected = rows(shards, source)
        assert len(dataset) == len(expected) == manifest["sources"][source]["documents"]
        assert dataset.index.dtype == dtype
        np.testing.assert_array_equal(dataset.document_indices, np.arange(len(expected) + 1))
        for i, document in enumerate(expected):
            assert dataset[i].dtype == dtype and dataset[i].tolist() == document, (source, i)
        assert sum(dataset.sequence_lengths) == manifest["sources"][source]["tokens"]
    # The blend, printed and in blend.txt, is Megatron's --data-path: weight then prefix (manifest shares)
    line = next(line for line in printed.splitlines() if line.startswith("--data-path "))
    words = line.split()[1:]
    assert (out / "blend.txt").read_text().split() == words
    prefixes, weights = get_blend_from_list(words)
    assert prefixes == [str(out / s) for s in manifest["sources"]]
    assert weights == [manifest["sources"][s]["share"] for s in manifest["sources"]]
    tokenizer = os.path.join(shards, manifest["tokenizer"]["path"])
    assert (out / "tokenizer.model").read_bytes() == open(tokenizer, "rb").read()


def test_megatron_documents_keep_bos_and_eos_as_the_shards_store_them(shards, tmp_path, capsys):
    assert export(capsys, "megatron", shards, tmp_path / "m")[0] == 0
    tokenizer = manifest_of(shards)["tokenizer"]
    dataset = IndexedDataset(str(tmp_path / "m" / "github"))
    assert all(dataset[i][0] == tokenizer["bos_id"] and dataset[i][-1] == tokenizer["eos_id"]
               for i in range(len(dataset)))


@pytest.mark.parametrize("which, dtype", [("shards", np.uint16), ("wide_shards", np.uint32)])
def test_numpy_files_equal_the_shards(request, which, dtype, tmp_path, capsys):
    shards = request.getfixturevalue(which)
    out = tmp_path / "nanogpt"
    code, printed, error = export(capsys, "numpy", shards, out)
    assert code == 0, error
    manifest = manifest_of(shards)
    summary = json.loads((out / "tokens.json").read_text())
    assert summary["dtype"] == np.dtype(dtype).name and summary["total_tokens"] == manifest["total_tokens"]
    for source in SHARDS:
        expected = rows(shards, source)
        ids = np.memmap(out / f"{source}.bin", dtype=dtype, mode="r")
        np.testing.assert_array_equal(ids, np.concatenate([np.array(r, dtype=dtype) for r in expected]))
        entry = summary["sources"][source]
        assert (entry["documents"], entry["tokens"]) == (len(expected), len(ids))
        assert entry["share"] == manifest["sources"][source]["share"]
        # documents start at each BOS, as the shards store them
        starts = np.flatnonzero(ids == manifest["tokenizer"]["bos_id"])
        np.testing.assert_array_equal(starts, np.cumsum([0] + [len(r) for r in expected[:-1]]))


@pytest.fixture
def hf_offline(monkeypatch, tmp_path):
    """datasets with its cache in tmp_path and no network (the parquet builder ships with it)."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    return datasets, str(tmp_path / "hf-cache")


def test_hugging_face_loads_the_shards_as_they_are_and_by_the_cards_configs(shards, capsys, hf_offline):
    datasets, cache = hf_offline
    manifest = manifest_of(shards)
    plain = datasets.load_dataset("parquet", data_files=os.path.join(shards, "c4", "*.parquet"),
                                  split="train", cache_dir=cache)
    assert plain["tokens"] == rows(shards, "c4") and plain.column_names == ["doc_id", "source", "tokens",
                                                                           "num_tokens"]
    code, printed, error = export(capsys, "hf", shards)
    assert code == 0, error
    card = open(os.path.join(shards, "README.md")).read()
    header = yaml.safe_load(card.split("---\n")[1])
    assert [c["config_name"] for c in header["configs"]] == ["default", "c4", "github"]
    for source in SHARDS:  # the card's configs, read by load_dataset on the folder
        loaded = datasets.load_dataset(shards, source, split="train", cache_dir=cache)
        assert loaded["tokens"] == rows(shards, source)
    everything = datasets.load_dataset(shards, split="train", cache_dir=cache)
    assert len(everything) == sum(e["documents"] for e in manifest["sources"].values())
    for source, entry in manifest["sources"].items():  # the mixture table
        line = next(line for line in card.splitlines() if line.startswith(f"| {source} |"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[2:4] == [f"{entry['documents']:,}", f"{entry['tokens']:,}"]
        assert float(cells[5]) == pytest.approx(entry["share"], abs=5e-4)


def test_card_of_a_run_has_the_recipe_and_the_ledger(tmp_path, shards, capsys):
    """OUT/run.json and OUT/ledger.json next to the shards go into the card (their numbers, not ours)."""
    out = os.path.dirname(shards)
    ledger = {"sources": {"c4": {"in": 90, "kept": 84, "dropped": 6, "dropped_by_stage": {
        "quality": {"c4_curly_bracket": 4}, "dedup": {"exact_duplicate": 2}}}},
        "totals": {"in": 1234, "kept": 1000, "dropped": 234}}
    run = {"config": {"output": "/secret/path", "sources": {"c4": {"inputs": ["/secret/in"]}},
                      "dedup": {"threshold": 0.8, "num_perm": 128}}}
    with open(os.path.join(out, "ledger.json"), "w") as f:
        json.dump(ledger, f)
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump(run, f)
    try:
        card_dir = tmp_path / "card"
        assert export(capsys, "hf", out, card_dir)[0] == 0  # OUT stands for OUT/shards
        card = (card_dir / "README.md").read_text()
    finally:
        os.remove(os.path.join(out, "ledger.json"))
        os.remove(os.path.join(out, "run.json"))
    assert "| c4 | 90 | 84 | 6 | quality/c4_curly_bracket 4, dedup/exact_duplicate 2 |" in card
    assert "| **total** | 1,234 | 1,000 | 234 | |" in card
    assert "threshold: 0.8" in card and "/secret" not in card
    header = yaml.safe_load(card.split("---\n")[1])  # paths relative to the card's folder
    assert header["configs"][1]["data_files"][0]["path"] == os.path.relpath(os.path.join(shards, "c4"),
                                                                             card_dir) + "/*.parquet"


def test_bad_input_is_one_message_and_exit_2(shards, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, error = export(capsys, "megatron", empty, tmp_path / "out")
    assert code == 2 and str(empty) in error and "manifest.json" in error and "Traceback" not in error
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, error = export(capsys, "numpy", shards, blocker / "out")
    assert code == 2 and str(blocker / "out") in error and len(error.strip().splitlines()) == 1
    code, _, error = export(capsys, "tfrecord", shards, tmp_path / "out")
    assert code == 2 and "tfrecord" in error and "megatron, numpy, hf" in error
    code, _, error = export(capsys, "megatron", shards)
    assert code == 2 and "DIR" in error


def test_shards_that_differ_from_their_manifest_are_refused(shards, tmp_path, capsys):
    """A manifest whose counts were edited consistently (it still validates) but the shards hold one
    document fewer: exit 2 naming the source, no blend written."""
    import shutil

    copy = tmp_path / "out"
    shutil.copytree(os.path.dirname(shards), copy)
    manifest = manifest_of(str(copy / "shards"))
    entry = manifest["sources"]["github"]
    entry["documents"] += 1
    entry["shards"][0]["documents"] += 1
    (copy / "shards" / "manifest.json").write_text(json.dumps(manifest))
    code, _, error = export(capsys, "megatron", copy / "shards", tmp_path / "m")
    assert code == 2 and "github" in error and "inspect verify" in error
    assert not (tmp_path / "m" / "blend.txt").exists()


# ------------------------------------------------------------------------------------- object stores

BUCKET = "llamapipe-export"


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path):  # noqa: F811
    """boto3's environment pointing at moto's server (nothing of this machine's AWS settings); Beam's
    process-wide FileSystems options unset before and after, so that storage sets empty ones."""
    from apache_beam.io.filesystems import FileSystems

    for key, value in {**no_aws_environment(tmp_path), **s3_server.env}.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    if BUCKET not in [b["Name"] for b in s3_server.client().list_buckets()["Buckets"]]:
        s3_server.create_bucket(BUCKET)
    FileSystems._pipeline_options = None
    yield s3_server
    FileSystems._pipeline_options = None


def s3_files(server, prefix: str) -> dict[str, bytes]:
    client = server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/").get("Contents", [])]
    return {key[len(prefix) + 1:]: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


@pytest.mark.time_bound(120)
def test_megatron_and_numpy_from_and_to_s3_equal_the_local_export(shards, tmp_path, capsys, s3):
    """The shards copied to S3 (boto3), exported from s3:// to s3:// through Beam's S3 filesystem: the
    same bytes as the local export (blend paths apart), and Megatron's reader reads the downloaded files."""
    root = os.path.dirname(shards)
    for parent, _, names in os.walk(root):
        for name in names:
            path = os.path.join(parent, name)
            s3.client().upload_file(path, BUCKET, "out/" + os.path.relpath(path, root))
    for kind in ("megatron", "numpy"):
        local = tmp_path / kind
        assert export(capsys, kind, shards, local)[0] == 0
        code, printed, error = export(capsys, kind, f"s3://{BUCKET}/out", f"s3://{BUCKET}/{kind}")
        assert code == 0, error
        remote = s3_files(s3, kind)
        expected = {p.name: p.read_bytes() for p in local.iterdir()}
        if kind == "megatron":
            assert remote.pop("blend.txt").decode() == expected.pop("blend.txt").decode().replace(
                str(local), f"s3://{BUCKET}/{kind}")
            assert f"--data-path {manifest_of(shards)['sources']['c4']['share']} s3://{BUCKET}/megatron/c4" \
                in printed
        assert remote == expected
    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    for name, data in s3_files(s3, "megatron").items():
        (downloaded / name).write_bytes(data)
    dataset = IndexedDataset(str(downloaded / "c4"))  # held: its __del__ closes the mmap its items view
    assert [dataset[i].tolist() for i in range(len(dataset))] == rows(shards, "c4")


@pytest.mark.time_bound(120)
def test_open_write_streams_a_multipart_object_complete_or_absent(s3):
    """12 MB through `storage.open_write` (S3 multipart in 5 MB parts) reads back whole; a write that
    fails part way leaves no object."""
    from llamapipe.tokenizer.format import storage

    data = np.random.default_rng(0).integers(0, 256, 12 << 20, dtype=np.uint8).tobytes()
    with storage.open_write(f"s3://{BUCKET}/big.bin") as out:
        for start in range(0, len(data), 1 << 20):
            out.write(data[start:start + (1 << 20)])
    assert storage.read_bytes(f"s3://{BUCKET}/big.bin") == data
    with pytest.raises(RuntimeError, match="broken"), storage.open_write(f"s3://{BUCKET}/half.bin") as out:
        out.write(data[: 6 << 20])
        raise RuntimeError("broken")
    assert not storage.is_file(f"s3://{BUCKET}/half.bin")
