"""`tokenizer/format/storage.py`, the one filesystem layer, on a local folder and on a real S3 server (moto's,
`tests/object_stores.py`): the same calls give the same answers on both. Then resume's records on S3:
what a killed run leaves there is read as on a local disk."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from llamapipe.pipeline.resume import CompletedStages, complete_shard_sources
from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.format.shards import shard_name
from tests.object_stores import applied_env, no_aws_environment, s3_server  # noqa: F401 (the fixture)

pytestmark = pytest.mark.time_bound(120)  # a hung server fails the test, not the suite


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    """A folder: a local one, or a prefix in a fresh bucket of the module's S3 server."""
    if request.param == "local":
        yield str(tmp_path / "root")
        return
    server = request.getfixturevalue("s3_server")
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    server.create_bucket(bucket)
    with applied_env({**no_aws_environment(tmp_path), **server.env}):
        storage.use_options(None)  # the environment's settings, as every command but `run` has them
        try:
            yield f"s3://{bucket}/root"
        finally:
            storage.use_options(None)


def test_files_and_folders_read_back_as_written(root):
    join = storage.join
    storage.write_json(join(root, "a", "record.json"), {"x": 1})
    storage.write_bytes(join(root, "a", "empty"), b"")  # Beam's S3 uploader alone refuses empty objects
    storage.write_text(join(root, "b", "c", "deep.txt"), "deep")
    storage.write_text(join(root, "log.jsonl"), "one\ntwo\n")

    assert storage.read_json(join(root, "a", "record.json")) == {"x": 1}
    assert storage.read_bytes(join(root, "a", "empty")) == b"" and storage.size(join(root, "a", "empty")) == 0
    assert storage.read_text(join(root, "log.jsonl")) == "one\ntwo\n"
    assert storage.list_names(root) == ["a", "b", "log.jsonl"]
    assert storage.list_names(join(root, "missing")) == []
    assert storage.is_dir(join(root, "b")) and not storage.is_file(join(root, "b"))
    assert storage.is_file(join(root, "b", "c", "deep.txt")) and storage.exists(join(root, "b"))
    assert not storage.exists(join(root, "nothing"))
    assert storage.glob(join(root, "a", "*")) == [join(root, "a", "empty"), join(root, "a", "record.json")]
    assert storage.sha256(join(root, "b", "c", "deep.txt")) == hashlib.sha256(b"deep").hexdigest()
    with storage.local_copy(join(root, "b", "c", "deep.txt")) as local:
        assert open(local, encoding="utf-8").read() == "deep"

    storage.remove(join(root, "a"))
    storage.remove(join(root, "a"))  # absent is fine
    assert storage.list_names(root) == ["b", "log.jsonl"]
    storage.remove(join(root, "b", "c", "deep.txt"))
    assert not storage.exists(join(root, "b", "c", "deep.txt"))


def test_paths_relative_to_a_folder_resolve_back(root):
    shards, tokenizer = storage.join(root, "shards"), storage.join(root, "tokenizer", "tokenizer.model")
    relative = storage.relative(tokenizer, shards)
    assert relative == "../tokenizer/tokenizer.model"
    assert storage.resolve(shards, relative) == tokenizer
    assert storage.relative(storage.join(shards, "c4", "x.parquet"), shards) == "c4/x.parquet"
    assert storage.basename(tokenizer) == "tokenizer.model"
    assert storage.dirname(tokenizer) == storage.join(root, "tokenizer")


def test_resume_records_and_shard_sets_read_the_same_on_an_object_store(root):
    """What a run killed during tokenization leaves: `clean` and `tokenizer` recorded, one source's shard
    set whole, another's half written. The rerun keeps the first, deletes the second and the outputs of
    the unrecorded stage's siblings, and trusts nothing else."""
    join = storage.join
    completed = CompletedStages(root)
    completed.mark("clean")
    completed.mark("tokenizer", {"vocab_size": 8000})
    for index in range(2):
        storage.write_bytes(join(root, "shards", "c4", shard_name("c4", index, 2)), b"shard")
    storage.write_bytes(join(root, "shards", "books", shard_name("books", 0, 3)), b"shard")
    storage.write_bytes(join(root, "shards", "c4", ".c4-00000-of-00002.parquet.tmp"), b"half")
    storage.write_bytes(join(root, "_work", "token_runs", "run-1"), b"rows")

    again = CompletedStages(root)  # the rerun
    assert again.names() == ["clean", "tokenizer"] and again.info("tokenizer") == {"vocab_size": 8000}
    assert complete_shard_sources(join(root, "shards")) == {"c4"}
    again.clear_unfinished()
    assert storage.list_names(join(root, "shards")) == ["c4"]
    assert storage.list_names(join(root, "shards", "c4")) == [shard_name("c4", i, 2) for i in range(2)]
    assert not storage.exists(join(root, "_work", "token_runs"))

    storage.write_bytes(join(root, "_work", "completed.json"), b"{not json")  # a torn record
    assert CompletedStages(root).names() == []  # nothing is trusted: everything runs again
