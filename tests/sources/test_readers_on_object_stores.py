"""Every reader on the real dump samples (../shared/realdata), read from a real S3 server (moto's) as from
a local disk: the same documents and the same drops, byte for byte, only `meta.source_file` naming the
object. On a cluster the inputs are objects: splits, seeks into compressed streams and index files go
through Beam's S3 filesystem there, not the local one the other reader tests use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from llamapipe.pipeline.plumbing.runners import LOCAL_RUNNER
from llamapipe.sources import source_module
from llamapipe.tokenizer.format import storage
from tests.object_stores import applied_env, no_aws_environment, s3_server  # noqa: F401 (the fixture)

pytestmark = pytest.mark.time_bound(300)

BUCKET = "realdata"
# source -> (files of realdata/<source> to read, as laid out for its reader, and the input glob)
SAMPLES = {
    "commoncrawl": ("*.warc*", "*.warc*"),
    "c4": ("*.json.gz", "*.json.gz"),
    "wikipedia": ("*.bz2", "*.bz2"),
    "books": ("*.txt", "*.txt"),
    "arxiv": ("*.gz", "*.gz"),
    "stackexchange": ("coffee.stackexchange.com_Posts.xml", "*/Posts.xml"),  # <site>/Posts.xml
}


def lay_out(realdata: Path, source: str, folder: Path) -> None:
    files, _ = SAMPLES[source]
    for path in sorted((realdata / source).glob(files)):
        if source == "stackexchange":  # the reader takes the site from the folder's name
            site = path.name.removesuffix("_Posts.xml")
            (folder / site).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / site / "Posts.xml")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / path.name)


def read_everything(source: str, pattern: str, out: Path) -> dict[str, list]:
    """The reader's documents and drops, through a pipeline, written to local files and read back."""
    module = source_module(source)
    options = PipelineOptions([f"--runner={LOCAL_RUNNER}", "--direct_running_mode=in_memory"])
    with beam.Pipeline(options=options) as pipeline:
        outputs = pipeline | module.Read(module.Options(inputs=[pattern]))
        for name in ("documents", "dropped"):
            (outputs[name] | f"Json{name}" >> beam.Map(json.dumps, sort_keys=True)
             | f"Write{name}" >> beam.io.WriteToText(str(out / name)))
    return {name: [json.loads(line) for path in sorted(out.glob(f"{name}*"))
                   for line in path.read_text(encoding="utf-8").splitlines()]
            for name in ("documents", "dropped")}


def in_order(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda record: json.dumps(record, sort_keys=True))


@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_a_reader_gives_the_same_from_s3_as_from_a_local_disk(source, realdata, s3_server, tmp_path):  # noqa: F811
    local = tmp_path / "local"
    lay_out(realdata, source, local)
    bucket = f"{BUCKET}-{source}"
    s3_server.create_bucket(bucket)
    client = s3_server.client()
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"in/{path.relative_to(local)}")
    _, pattern = SAMPLES[source]

    from_disk = read_everything(source, str(local / pattern), tmp_path / "from-disk")
    with applied_env({**no_aws_environment(tmp_path), **s3_server.env}):
        storage.use_options(None)
        try:
            from_s3 = read_everything(source, f"s3://{bucket}/in/{pattern}", tmp_path / "from-s3")
        finally:
            storage.use_options(None)

    assert from_disk["documents"], f"no {source} document read from the real samples"
    for document in from_s3["documents"]:
        meta = document["meta"]
        assert meta["source_file"].startswith(f"s3://{bucket}/in/")
        meta["source_file"] = meta["source_file"].replace(f"s3://{bucket}/in", str(local), 1)
    assert in_order(from_s3["documents"]) == in_order(from_disk["documents"])
    assert in_order(from_s3["dropped"]) == in_order(from_disk["dropped"])
