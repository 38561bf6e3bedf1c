"""`storage_faults.explain` on faults produced for real: Beam's FileSystems (and `probe`) against moto's S3
server (with IAM enforced for the permission cases), a closed port on 127.0.0.1, no credentials at
all, and fake-gcs-server. No exception here is constructed by the test."""

from __future__ import annotations

import socket
import time
import uuid

import apache_beam as beam
import pytest
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from llamapipe.pipeline.plumbing.storage_faults import explain, literal_prefix, probe
from tests.object_stores import (
    applied_env,
    closed_port,
    fake_gcs_server,
    gcs_available,
    moto_s3_server,
    no_aws_environment,
)

pytestmark = pytest.mark.time_bound(180)  # a hung server fails the test, not the suite

pytest.importorskip("moto.server", reason="moto[server] runs the S3 test server")
pytest.importorskip("boto3", reason="Beam's S3 filesystem needs boto3 (apache-beam[aws])")

FAST = 10.0  # seconds: a write, a delete or a probe must fail within this (Beam's own retries aside)
READ_ONLY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow",
    # moto checks the API operation's name (s3:ListObjectsV2, s3:HeadObject), AWS the IAM action
    # (s3:ListBucket, s3:GetObject): the wildcards grant reading under both.
    "Action": ["s3:Get*", "s3:List*", "s3:Head*"],
    "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]}]}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with applied_env(no_aws_environment(tmp_path_factory.mktemp("aws"))), moto_s3_server() as server:
        server.create_bucket("data")
        server.create_bucket("private")
        server.put("s3://data/in/a.txt", b"alpha\n")
        server.put("s3://private/b.txt", b"beta\n")
        yield server


@pytest.fixture(autouse=True)
def restore_filesystem_options():
    saved = FileSystems._pipeline_options
    yield
    FileSystems.set_options(saved)


def use(flags: list[str]) -> PipelineOptions:
    options = PipelineOptions(flags)
    FileSystems.set_options(options)
    return options


def failure(call) -> tuple[BaseException, float]:
    """What `call()` raised, and after how many seconds."""
    start = time.monotonic()
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the point is to look at it
        return exc, time.monotonic() - start
    raise AssertionError("expected a failure")


def create(path: str) -> None:
    with FileSystems.create(path) as f:
        f.write(b"x")


def test_bucket_that_does_not_exist(s3):
    options = use(s3.flags)
    exc, seconds = failure(lambda: create("s3://no-such-bucket/out/x.txt"))
    assert type(exc).__name__ == "S3ClientError" and exc.code == 404 and "NoSuchBucket" in exc.message
    assert explain(exc, "s3://no-such-bucket/out/x.txt") == (
        "s3://no-such-bucket/out/x.txt: bucket 'no-such-bucket' does not exist (create it, or correct "
        "the bucket name)")
    assert seconds < FAST

    exc, _ = failure(lambda: FileSystems.open("s3://no-such-bucket/in/a.txt"))
    assert isinstance(exc, FileNotFoundError)  # Beam turns HEAD's 404 into this, bucket or object
    assert explain(exc, "s3://no-such-bucket/in/a.txt") == (
        "s3://no-such-bucket/in/a.txt: not found: no such object, or bucket 'no-such-bucket' does not exist")

    # Listing a missing bucket is no error for Beam (its 404 ends the listing): only the probe tells.
    assert FileSystems.match(["s3://no-such-bucket/in/*.txt"])[0].metadata_list == []
    exc, seconds = failure(lambda: probe("s3://no-such-bucket/in/*.txt", options))
    assert type(exc).__name__ == "NoSuchBucket"  # botocore's modeled ClientError
    assert explain(exc, "s3://no-such-bucket/in/*.txt").endswith("bucket 'no-such-bucket' does not exist "
                                                                 "(create it, or correct the bucket name)")
    assert seconds < FAST


def test_endpoint_that_cannot_be_reached(s3):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    options = use([f"--s3_endpoint_url={endpoint}", "--s3_access_key_id=testing",
                   "--s3_secret_access_key=testing", "--s3_region_name=us-east-1"])
    expected = (f"s3://data/out/x.txt: cannot reach the S3 endpoint {endpoint} (set --s3_endpoint_url or "
                "AWS_ENDPOINT_URL to a reachable S3 endpoint)")
    exc, seconds = failure(lambda: create("s3://data/out/x.txt"))  # Beam: no retry on starting an upload
    assert type(exc).__name__ == "S3ClientError" and exc.code is None
    assert "Could not connect to the endpoint URL" in exc.message
    assert explain(exc, "s3://data/out/x.txt") == expected
    assert seconds < FAST

    exc, seconds = failure(lambda: FileSystems.delete(["s3://data/out/x.txt"]))
    assert isinstance(exc, BeamIOError)
    assert explain(exc, "s3://data/out/x.txt") == expected
    assert seconds < FAST

    # match/exists/open would retry for 8-9 minutes (Beam's backoff); the probe does not
    exc, seconds = failure(lambda: probe("s3://data/out/x.txt", options))
    assert type(exc).__name__ == "EndpointConnectionError"
    assert explain(exc, "s3://data/out/x.txt") == expected
    assert seconds < FAST


def test_probe_gives_up_on_an_endpoint_that_never_answers(s3):
    """A listener that accepts connections and never answers: botocore's read timeout, at most
    `attempts` times (Beam's own calls would wait 60 s per attempt, 3 attempts, then retry 7 times)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        options = use([f"--s3_endpoint_url={endpoint}", "--s3_access_key_id=testing",
                       "--s3_secret_access_key=testing", "--s3_region_name=us-east-1"])
        exc, seconds = failure(lambda: probe("s3://data/in/*.txt", options, connect_timeout=1,
                                             read_timeout=1, attempts=2))
    assert type(exc).__name__ == "ReadTimeoutError"
    assert explain(exc, "s3://data/in/*.txt") == (
        f"s3://data/in/*.txt: the S3 endpoint {endpoint} accepted the connection but did not answer in "
        "time (is it an S3 endpoint? set --s3_endpoint_url or AWS_ENDPOINT_URL to a reachable S3 endpoint)")
    assert seconds < 2 * (1 + 1) + 3  # two attempts of at most 1 s + 1 s, and botocore's backoff


def test_no_credentials_at_all(s3):
    # the module's environment has no AWS variable, no ~/.aws file, no metadata service
    options = use([f"--s3_endpoint_url={s3.endpoint_url}", "--s3_region_name=us-east-1"])
    expected = ("s3://data/out/x.txt: no S3 credentials found: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass --s3_access_key_id and "
                "--s3_secret_access_key")
    exc, seconds = failure(lambda: create("s3://data/out/x.txt"))
    assert type(exc).__name__ == "S3ClientError" and exc.message == "Unable to locate credentials"
    assert explain(exc, "s3://data/out/x.txt") == expected
    assert seconds < FAST

    exc, seconds = failure(lambda: probe("s3://data/out/x.txt", options))
    assert type(exc).__name__ == "NoCredentialsError"
    assert explain(exc, "s3://data/out/x.txt") == expected
    assert seconds < FAST


def test_permission_denied_and_refused_keys(s3):
    reader = s3.create_user(f"reader-{uuid.uuid4().hex[:6]}", READ_ONLY)
    with s3.iam_enforced():
        def as_user(key: str, secret: str) -> PipelineOptions:
            return use([f"--s3_endpoint_url={s3.endpoint_url}", f"--s3_access_key_id={key}",
                        f"--s3_secret_access_key={secret}", "--s3_region_name=us-east-1"])

        options = as_user(*reader)
        assert FileSystems.open("s3://data/in/a.txt").read() == b"alpha\n"  # reading is allowed

        exc, seconds = failure(lambda: create("s3://data/out/x.txt"))
        assert type(exc).__name__ == "S3ClientError" and exc.code == 403 and "AccessDenied" in exc.message
        assert explain(exc, "s3://data/out/x.txt") == (
            "s3://data/out/x.txt: permission denied (AccessDenied): the credentials in use may not do "
            "this; grant them the S3 permissions it needs on bucket 'data', or use other keys")
        assert seconds < FAST

        exc, _ = failure(lambda: FileSystems.match(["s3://private/*.txt"]))
        assert isinstance(exc, BeamIOError)  # Match -> List -> S3ClientError(AccessDenied, 403)
        assert explain(exc, "s3://private/*.txt").startswith("s3://private/*.txt: permission denied")

        exc, _ = failure(lambda: probe("s3://private/*.txt", options))
        assert explain(exc, "s3://private/*.txt").startswith("s3://private/*.txt: permission denied")

        exc, _ = failure(lambda: FileSystems.exists("s3://private/b.txt"))  # a HEAD: no error code
        assert explain(exc, "s3://private/b.txt") == (
            "s3://private/b.txt: access denied (403): the credentials in use are refused or lack "
            "permission on bucket 'private'; check the keys and the bucket's S3 permissions")

        as_user(reader[0], "not-the-secret")
        exc, _ = failure(lambda: FileSystems.match(["s3://data/in/*.txt"]))
        assert explain(exc, "s3://data/in/*.txt").startswith(
            "s3://data/in/*.txt: the S3 endpoint refused the credentials (SignatureDoesNotMatch)")

        options = as_user("AKIAUNKNOWNUNKNOWN00", "whatever")
        exc, _ = failure(lambda: probe("s3://data/in/*.txt", options))
        assert explain(exc, "s3://data/in/*.txt").startswith(
            "s3://data/in/*.txt: the S3 endpoint refused the credentials (InvalidAccessKeyId)")


def test_glob_that_matches_nothing(s3):
    use(s3.flags)
    assert FileSystems.match(["s3://data/nothing/*.txt"])[0].metadata_list == []
    exc, _ = failure(lambda: beam.io.ReadFromText("s3://data/nothing/*.txt"))  # validated when built
    assert isinstance(exc, OSError)
    assert explain(exc, "s3://data/nothing/*.txt") == (
        "s3://data/nothing/*.txt: no file matches this pattern (check the prefix and the glob, or "
        "bucket 'data' does not exist)")


def test_other_errors_are_not_explained(s3):
    use(s3.flags)
    exc, _ = failure(lambda: FileSystems.open("s3://data/"))  # no object name
    assert isinstance(exc, ValueError)
    assert explain(exc, "s3://data/") is None
    exc, _ = failure(lambda: open("/nonexistent/llamapipe/input.txt"))  # noqa: SIM115
    assert explain(exc, "/nonexistent/llamapipe/input.txt") is None


def test_probe_passes_on_a_reachable_bucket(s3):
    options = use(s3.flags)
    probe("s3://data/in/*.txt", options)
    probe("s3://data/nothing-here/", options)  # an empty prefix is not a fault
    probe("/local/path", options)  # not an object store: nothing to do
    assert literal_prefix("s3://data/in/part-*.txt") == "in/part-"
    assert literal_prefix("gs://b/x/y.txt") == "x/y.txt"


@pytest.fixture(scope="module")
def gcs():
    reason = gcs_available()
    if reason:
        pytest.skip(reason)
    with fake_gcs_server() as server, applied_env(server.env):
        server.create_bucket("data")
        yield server


def test_gcs_bucket_that_does_not_exist(gcs):
    options = use([])
    expected = "gs://no-such-bucket/in/*.txt: bucket 'no-such-bucket' does not exist"
    exc, _ = failure(lambda: FileSystems.match(["gs://no-such-bucket/in/*.txt"]))
    assert isinstance(exc, BeamIOError)  # Match -> List -> google.api_core NotFound on .../b/NAME/o?
    assert explain(exc, "gs://no-such-bucket/in/*.txt").startswith(expected)

    writer = FileSystems.create("gs://no-such-bucket/out/x.txt")
    writer.write(b"x")
    exc, _ = failure(writer.close)  # the resumable upload starts at close: 404
    # A BlobWriter whose close() failed retries its upload from its finalizer whenever it is collected
    # (up to api-core's 120 s on a server that is gone by then): terminate() closes it for good.
    writer.terminate()
    assert type(exc).__name__ == "InvalidResponse"
    assert explain(exc, "gs://no-such-bucket/out/x.txt").startswith(
        "gs://no-such-bucket/out/x.txt: bucket 'no-such-bucket' does not exist")

    exc, _ = failure(lambda: FileSystems.open("gs://no-such-bucket/in/a.txt"))
    assert type(exc).__name__ == "NotFound"
    assert explain(exc, "gs://no-such-bucket/in/a.txt") == (
        "gs://no-such-bucket/in/a.txt: not found: no such object, or bucket 'no-such-bucket' does not exist")

    exc, seconds = failure(lambda: probe("gs://no-such-bucket/in/*.txt", options))
    assert explain(exc, "gs://no-such-bucket/in/*.txt").startswith(expected)
    assert seconds < FAST
    probe("gs://data/in/*.txt", options)


def test_gcs_endpoint_that_cannot_be_reached(gcs):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with applied_env({"STORAGE_EMULATOR_HOST": endpoint}):
        options = use([])
        # FileSystems calls retry until google-api-core's 120 s deadline; the probe does not retry
        exc, seconds = failure(lambda: probe("gs://data/in/*.txt", options))
    assert type(exc).__name__ == "ConnectionError"  # requests'
    assert explain(exc, "gs://data/in/*.txt") == (
        f"gs://data/in/*.txt: cannot reach the GCS endpoint {endpoint.removeprefix('http://')} (check "
        "STORAGE_EMULATOR_HOST, or the network path to storage.googleapis.com)")
    assert seconds < FAST
