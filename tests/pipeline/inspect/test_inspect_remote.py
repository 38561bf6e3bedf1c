"""`llamapipe inspect` and `llamapipe report` on a run's output folder on S3: the demo run (conftest's
`demo_run`) copied with boto3 to a real S3 server (moto's, on 127.0.0.1: tests/object_stores.py), then
the real CLI on s3:// paths. Beam's S3 filesystem gets no option: boto3 finds the server and the keys in
its environment (AWS_ENDPOINT_URL, ...), as a user's shell would give them. Each command prints what it
prints on the local copy of the same run (paths apart), verify catches a shard whose bytes changed, and
the report is written to s3://.../report.html."""

from __future__ import annotations

import re

import pytest
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.report.build import gather, refresh_report
from llamapipe.pipeline.report.html import SECTIONS
from tests.object_stores import no_aws_environment, s3_server  # noqa: F401 (the fixture)

pytestmark = pytest.mark.time_bound(300)  # a hung server fails the test, not the suite

pytest.importorskip("moto.server", reason="moto[server] runs the S3 test server")

BUCKET = "llamapipe-runs"
OUT = f"s3://{BUCKET}/out"
NOT_COPIED = ("_work", "report.html")  # the run's internal state (no command here reads it); the report


@pytest.fixture(scope="module")
def runs(demo_run, s3_server):  # noqa: F811
    """The demo run's OUT, and its copy at s3://BUCKET/out (without report.html: `report` writes it)."""
    local = demo_run["out"]
    s3_server.create_bucket(BUCKET)
    client = s3_server.client()
    for path in sorted(local.rglob("*")):
        relative = path.relative_to(local)
        if path.is_file() and relative.parts[0] not in NOT_COPIED:
            client.upload_file(str(path), BUCKET, f"out/{relative.as_posix()}")
    return {"local": str(local), "remote": OUT, "server": s3_server}


@pytest.fixture(autouse=True)
def s3_environment(runs, monkeypatch, tmp_path):
    """boto3's environment pointing at the server (and no AWS setting of this machine); Beam's
    process-wide FileSystems options unset before and after, so that storage sets empty ones."""
    for key, value in {**no_aws_environment(tmp_path), **runs["server"].env}.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    FileSystems._pipeline_options = None
    yield
    FileSystems._pipeline_options = None


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def both(capsys, runs, *args: str) -> tuple[str, str]:
    """The same command on the local run and on its S3 copy (OUT in the arguments stands for either);
    both succeed. Their outputs, the local one with its OUT written as the S3 one's."""
    outputs = []
    for out in (runs["local"], runs["remote"]):
        code, printed, error = cli(capsys, *(arg.replace("OUT", out) for arg in args))
        assert code == 0, error
        outputs.append(printed)
    return outputs[0].replace(runs["local"], runs["remote"]), outputs[1]


def shard_keys(runs, source: str) -> list[str]:
    listed = runs["server"].client().list_objects_v2(Bucket=BUCKET, Prefix=f"out/shards/{source}/")
    return sorted(o["Key"] for o in listed["Contents"] if o["Key"].endswith(".parquet"))


def test_summary_stats_and_a_shard_read_on_s3(runs, capsys):
    local, remote = both(capsys, runs, "inspect", "OUT")  # the run's folder stands for its shards
    assert remote == local and f"manifest: {OUT}/shards/manifest.json" in remote
    assert "c4" in remote and "total" in remote
    local, remote = both(capsys, runs, "inspect", "stats", "OUT/shards", "--json")
    assert remote == local
    shard = f"s3://{BUCKET}/{shard_keys(runs, 'c4')[0]}"
    local, remote = both(capsys, runs, "inspect", shard.replace(OUT, "OUT"), "--decode", "2")
    assert remote == local and remote.count("\n=== c4:") == 2  # decoded with the manifest's tokenizer
    doc_id = re.search(r"\n=== (c4:\S+) ", remote)[1]
    local, remote = both(capsys, runs, "inspect", "show", "OUT/shards", doc_id)
    assert remote == local and f"shard:      {shard}" in remote


def test_verify_passes_on_s3_and_catches_a_shard_whose_bytes_changed(runs, capsys):
    local, remote = both(capsys, runs, "inspect", "verify", "OUT/shards")
    assert remote == local and remote.splitlines()[-1].startswith("OK"), remote
    # a copy of the shards and the tokenizer (the manifest names ../tokenizer), one shard changed
    client = runs["server"].client()
    for key in [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="out/")["Contents"]]:
        if key.startswith(("out/shards/", "out/tokenizer/")):
            client.copy_object(Bucket=BUCKET, Key="changed/" + key[len("out/"):],
                               CopySource={"Bucket": BUCKET, "Key": key})
    key = "changed/" + shard_keys(runs, "c4")[-1][len("out/"):]
    data = bytearray(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF  # in the data pages; the footer stays readable
    client.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))
    code, printed, _ = cli(capsys, "inspect", "verify", f"s3://{BUCKET}/changed/shards")
    assert code == 1
    assert f"MISMATCH: s3://{BUCKET}/{key}: sha256 differs from the manifest's" in printed, printed
    mismatches = [line for line in printed.splitlines() if line.startswith("MISMATCH")]
    assert all(f"s3://{BUCKET}/{key}:" in line for line in mismatches), printed  # only that shard
    assert printed.splitlines()[-1].startswith("FAILED")


def test_duplicate_clusters_on_s3(runs, capsys):
    local, remote = both(capsys, runs, "inspect", "OUT", "--dups", "2")
    assert remote == local and remote.startswith("dedup (") and "=== cluster of" in remote


def test_rejects_on_s3(runs, capsys):
    local, remote = both(capsys, runs, "inspect", "OUT/rejects")
    assert remote == local
    reason = remote.splitlines()[1].split()[2]  # the first row: source, stage, reason, sampled
    local, remote = both(capsys, runs, "inspect", "OUT/rejects", "--reason", reason, "--show", "2")
    assert remote == local and f"/{reason}" in remote


def test_report_is_written_on_s3(runs, capsys):
    client = runs["server"].client()
    code, printed, error = cli(capsys, "report", OUT)
    assert code == 0, error
    assert printed.strip() == f"wrote {OUT}/report.html"
    page = client.get_object(Bucket=BUCKET, Key="out/report.html")["Body"].read().decode("utf-8")
    assert [s for s, _ in SECTIONS if f'<section id="{s}">' not in page] == []
    assert "no OUT/ledger.json" not in page and "no OUT/shards/manifest.json" not in page
    # every number of the page is read from the S3 copy as from the run itself
    remote = gather(OUT)
    local = gather(runs["local"])
    assert remote.pop("out") == OUT
    local.pop("out")
    assert remote == local
    assert refresh_report(OUT) == f"report -> {OUT}/report.html"  # what `run` and `train` print


def test_missing_remote_paths_are_one_clear_error(runs, capsys):
    code, _, error = cli(capsys, "report", f"s3://{BUCKET}/nowhere")
    assert code == 2 and "is not a folder" in error
    code, _, error = cli(capsys, "inspect", f"s3://{BUCKET}/nowhere")
    assert code == 2 and "no such file or folder" in error
    told = refresh_report(f"s3://{BUCKET}/nowhere")  # a run's last step does not fail on it
    assert told.startswith(f"report: not written for s3://{BUCKET}/nowhere (remote): NotARunError")
