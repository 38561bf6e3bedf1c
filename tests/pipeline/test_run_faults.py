"""`llamapipe run` with an object store that is wrong in each way a user can make it wrong: one line on
stderr naming the config key and the path, exit 2, no traceback, within seconds (Beam's own retries
would take minutes), and nothing written to the output. Against moto's S3 server, IAM enforced for the
permission case; a closed port on 127.0.0.1 for the unreachable endpoint."""

from __future__ import annotations

import time

import pytest
import yaml

from llamapipe.pipeline.cli import main
from llamapipe.tokenizer.format import storage
from tests.object_stores import applied_env, closed_port, moto_s3_server, no_aws_environment
from tests.pipeline.plumbing.test_storage_faults import READ_ONLY  # may read the bucket "data", not write it

pytestmark = pytest.mark.time_bound(120)  # a hung server fails the test, not the suite

pytest.importorskip("moto.server", reason="moto[server] runs the S3 test server")

SECONDS = 15  # at most, for a fault found before any work


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with applied_env(no_aws_environment(tmp_path_factory.mktemp("aws"))), moto_s3_server() as server:
        server.create_bucket("data")
        server.put("s3://data/c4/en.json", b'{"text": "A sentence.", "url": "https://example.org/"}\n')
        yield server


@pytest.fixture(autouse=True)
def driver_options():
    yield
    storage.use_options(None)


def config_file(tmp_path, inputs: str, output: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"output": output, "sources": {"c4": {"inputs": [inputs]}}}))
    return str(path)


def run_fails(config: str, flags: list[str], capsys) -> str:
    started = time.monotonic()
    code = main(["run", config, *flags])
    seconds = time.monotonic() - started
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert seconds < SECONDS
    return err


def test_an_output_bucket_that_does_not_exist(s3, tmp_path, capsys):
    err = run_fails(config_file(tmp_path, "s3://data/c4/*.json", "s3://no-such-bucket/out"), s3.flags, capsys)
    assert err == ("llamapipe: error: output: s3://no-such-bucket/out: bucket 'no-such-bucket' does not "
                   "exist (create it, or correct the bucket name)")


def test_an_input_bucket_that_does_not_exist_is_not_an_empty_glob(s3, tmp_path, capsys):
    err = run_fails(config_file(tmp_path, "s3://no-such-bucket/c4/*.json", "s3://data/out"), s3.flags, capsys)
    assert err.startswith("llamapipe: error: sources.c4.inputs[0]: s3://no-such-bucket/c4/*.json: bucket "
                          "'no-such-bucket' does not exist")


def test_an_input_glob_that_matches_nothing_in_the_bucket(s3, tmp_path, capsys):
    err = run_fails(config_file(tmp_path, "s3://data/c4/*.parquet", "s3://data/out"), s3.flags, capsys)
    assert err == "llamapipe: error: sources.c4.inputs[0]: no file matches 's3://data/c4/*.parquet'"


def test_an_endpoint_that_cannot_be_reached(s3, tmp_path, capsys):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    flags = [f"--s3_endpoint_url={endpoint}", "--s3_access_key_id=testing", "--s3_secret_access_key=testing"]
    err = run_fails(config_file(tmp_path, "s3://data/c4/*.json", "s3://data/out"), flags, capsys)
    assert err.startswith(f"llamapipe: error: sources.c4.inputs[0]: s3://data/c4/*.json: cannot reach the "
                          f"S3 endpoint {endpoint}")


def test_no_credentials(s3, tmp_path, capsys):
    flags = [f"--s3_endpoint_url={s3.endpoint_url}", "--s3_region_name=us-east-1"]  # and no AWS_* variable
    err = run_fails(config_file(tmp_path, "s3://data/c4/*.json", "s3://data/out"), flags, capsys)
    assert "sources.c4.inputs[0]: s3://data/c4/*.json: no S3 credentials found" in err


def test_permission_denied_on_the_output(s3, tmp_path, capsys):
    """A key that may read the bucket but not write it: the inputs pass, the output's probe write fails."""
    key, secret = s3.create_user("reader", READ_ONLY)
    flags = [f"--s3_endpoint_url={s3.endpoint_url}", f"--s3_access_key_id={key}",
             f"--s3_secret_access_key={secret}", "--s3_region_name=us-east-1"]
    with s3.iam_enforced():
        err = run_fails(config_file(tmp_path, "s3://data/c4/*.json", "s3://data/out"), flags, capsys)
    assert err.startswith("llamapipe: error: output: s3://data/out: ")
    assert "denied" in err
    assert secret not in err
    assert [k for k in s3.client().list_objects_v2(Bucket="data").get("Contents", [])
            if k["Key"].startswith("out/")] == []  # nothing written, not even the probe


def test_report_of_an_unreachable_output_is_one_error(s3, capsys):
    with applied_env({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}", "AWS_ACCESS_KEY_ID": "k",
                      "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1"}):
        started = time.monotonic()
        assert main(["report", "s3://data/out"]) == 2
        assert time.monotonic() - started < SECONDS
    err = capsys.readouterr().err.strip()
    assert err.startswith("llamapipe: error: report: s3://data/out: cannot reach the S3 endpoint")
