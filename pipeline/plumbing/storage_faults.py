"""Object-store faults (s3://, gs://) in one sentence for a user, and a fast up-front probe.

`explain(exc, path)` names the path and the likely fix for the faults a user causes by configuration: a
bucket that does not exist, an endpoint that cannot be reached, no credentials, credentials that are
refused, permission denied, a glob that matches nothing. It returns None for anything else.

What Beam 2.77's filesystems raise (seen against moto's S3 server and fake-gcs-server; see
tests/pipeline/plumbing/test_storage_faults.py):
- S3: `apache_beam.io.aws.clients.s3.messages.S3ClientError(message, code)` whose message is boto3's
  `str(exception)` and whose code is the HTTP status (None when no response came: no endpoint, no
  credentials), raised bare by open/create or wrapped in `BeamIOError.exception_details` (a dict
  {path or (src, dest): exception}, nested for match -> list) by match/exists/delete/rename; a missing
  object or bucket on open is `FileNotFoundError(2, 'Not found: s3://...')`; listing a bucket that does
  not exist yields no files at all (Beam's S3IO.list_files treats its 404 as the end of the listing).
- GCS: google-api-core exceptions (NotFound, Forbidden, Unauthorized), google-resumable-media's
  InvalidResponse (a write), or requests' ConnectionError/api-core's RetryError (no endpoint).

Retries. Beam retries S3 metadata/list calls (S3IO._s3_object, list_files, S3Downloader) with
`retry.with_exponential_backoff()`: 7 retries sleeping 5, 10, ... 320 s, each fuzzed to 50-100 %, for
any S3ClientError whose code is None or >= 500, which includes "cannot connect" and "no credentials":
`FileSystems.match`, `exists` and `open` took 457 to 546 s to fail on a closed port or without
credentials (a 4xx such as AccessDenied is not retried). Under that, botocore's standard mode makes 3
attempts of up to 60 s connect + 60 s read each. Writes (`create`: S3Uploader._start_upload is
`@retry.no_retries`) and `delete` failed within 0.5-3 s. On GCS, google-cloud-storage retries to
api-core's 120 s deadline (95-120 s measured on a closed port). That policy is right for transient faults
in a long run, so it is left alone; `probe(path, options)` below makes one bounded request outside it,
for a check before any work (0.1-0.3 s on a closed port or without credentials).

Imports: the standard library and apache_beam only; boto3 / google-cloud-storage are imported by
`probe` when it needs them.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from apache_beam.io.filesystem import BeamIOError

# Fixes named in the sentences.
_S3_ENDPOINT_FIX = "set --s3_endpoint_url or AWS_ENDPOINT_URL to a reachable S3 endpoint"
_S3_CREDENTIALS_FIX = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass "
                       "--s3_access_key_id and --s3_secret_access_key")
_GCS_ENDPOINT_FIX = "check STORAGE_EMULATOR_HOST, or the network path to storage.googleapis.com"
_GCS_CREDENTIALS_FIX = ("set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run "
                        "`gcloud auth application-default login`")

_BUCKET = re.compile(r"^(?P<scheme>[a-zA-Z][-a-zA-Z0-9+.]*)://(?P<bucket>[^/]*)")
_QUOTED_URL = re.compile(r"""["'](?P<url>https?://[^"']+)["']""")
_HOST_PORT = re.compile(r"host='(?P<host>[^']+)',\s*port=(?P<port>\d+)")
_GLOB = re.compile(r"[*?\[]")
_AWS_ERROR_CODE = re.compile(r"An error occurred \((?P<code>[^)]+)\)")

_NO_CREDENTIALS = ("Unable to locate credentials", "Partial credentials found")
_UNREACHABLE = ("Could not connect to the endpoint URL", "Connect timeout on endpoint URL",
                "Read timeout on endpoint URL", "Connection was closed before we received a valid response")
_REFUSED_KEYS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                 "TokenRefreshRequired", "InvalidClientTokenId", "AuthFailure"}
_DENIED = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"}


def _scheme_bucket(path: str) -> tuple[str, str]:
    match = _BUCKET.match(path or "")
    return (match.group("scheme").lower(), match.group("bucket")) if match else ("", "")


def _leaves(exc: BaseException, depth: int = 0) -> list[BaseException]:
    """The exceptions inside BeamIOError.exception_details (nested) and a RetryError's cause, else the
    exception itself."""
    if depth > 5:
        return [exc]
    cause = getattr(exc, "cause", None)  # google-api-core's RetryError: the last attempt's exception
    if "RetryError" in _names(exc) and isinstance(cause, BaseException):
        return [*_leaves(cause, depth + 1), exc]
    details = getattr(exc, "exception_details", None) if isinstance(exc, BeamIOError) else None
    if not details:
        return [exc]
    found = []
    for inner in details.values():
        if isinstance(inner, BaseException):
            found.extend(_leaves(inner, depth + 1))
    return found or [exc]


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _message(exc: BaseException) -> str:
    # S3ClientError keeps boto's text in .message; others in str()
    text = getattr(exc, "message", None)
    return text if isinstance(text, str) and text else str(exc)


def _endpoint_of(text: str) -> str | None:
    url = _QUOTED_URL.search(text)
    if url:
        parts = urlsplit(url.group("url"))
        return f"{parts.scheme}://{parts.netloc}"
    host = _HOST_PORT.search(text)
    if host:
        return f"{host.group('host')}:{host.group('port')}"
    return None


def _aws_code(exc: BaseException, text: str) -> str | None:
    """The S3 error code: botocore ClientError's response, or the "(Code)" of its text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        if code:
            return str(code)
    match = _AWS_ERROR_CODE.search(text)
    if match:
        return match.group("code")
    code = getattr(exc, "code", None)  # S3ClientError from a delete batch carries the AWS code here
    return code if isinstance(code, str) else None


def _no_bucket(path: str, bucket: str) -> str:
    return f"{path}: bucket '{bucket}' does not exist (create it, or correct the bucket name)"


def _explain_s3(exc: BaseException, path: str, bucket: str) -> str | None:
    names, text = _names(exc), _message(exc)
    if "NoCredentialsError" in names or "PartialCredentialsError" in names or any(
            s in text for s in _NO_CREDENTIALS):
        return f"{path}: no S3 credentials found: {_S3_CREDENTIALS_FIX}"
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                "ConnectionClosedError"} or any(s in text for s in _UNREACHABLE):
        endpoint = _endpoint_of(text)
        where = f" {endpoint}" if endpoint else ""
        if "ReadTimeoutError" in names or "Read timeout" in text:
            return (f"{path}: the S3 endpoint{where} accepted the connection but did not answer in time "
                    f"(is it an S3 endpoint? {_S3_ENDPOINT_FIX})")
        return f"{path}: cannot reach the S3 endpoint{where} ({_S3_ENDPOINT_FIX})"
    code = _aws_code(exc, text)
    if code == "NoSuchBucket":
        return _no_bucket(path, bucket)
    if code in _REFUSED_KEYS:
        return (f"{path}: the S3 endpoint refused the credentials ({code}): the access key is unknown "
                f"there or the secret key does not match it; {_S3_CREDENTIALS_FIX} with valid keys")
    if code in _DENIED - {"403"}:
        return (f"{path}: permission denied ({code}): the credentials in use may not do this; grant "
                f"them the S3 permissions it needs on bucket '{bucket}', or use other keys")
    if code == "403" or getattr(exc, "code", None) == 403:  # a HEAD: no error code in the answer
        return (f"{path}: access denied (403): the credentials in use are refused or lack permission "
                f"on bucket '{bucket}'; check the keys and the bucket's S3 permissions")
    if ("FileNotFoundError" in names and "Not found:" in text) or code in {"NoSuchKey", "404"}:
        return f"{path}: not found: no such object, or bucket '{bucket}' does not exist"
    return None


def _explain_gcs(exc: BaseException, path: str, bucket: str) -> str | None:
    names, text = _names(exc), _message(exc)
    code = getattr(exc, "code", None)
    if "DefaultCredentialsError" in names or "Unauthorized" in names or code == 401:
        return f"{path}: no usable Google Cloud credentials (401): {_GCS_CREDENTIALS_FIX}"
    if "Forbidden" in names or code == 403:
        return (f"{path}: permission denied (403): the credentials in use may not access it; grant "
                f"them a Storage role on bucket '{bucket}'")
    response_status = exc.args[1] if "InvalidResponse" in names and len(exc.args) > 1 else None
    if response_status == 404:  # a write (resumable upload) into a bucket that is not there
        return _no_bucket(path, bucket)
    if "NotFound" in names or code == 404:
        if "bucket does not exist" in text or re.search(rf"/b/{re.escape(bucket)}(/o)?\?", text):
            return _no_bucket(path, bucket)
        return f"{path}: not found: no such object, or bucket '{bucket}' does not exist"
    if names & {"ConnectionError", "ConnectTimeout", "NewConnectionError", "MaxRetryError"}:
        endpoint = _endpoint_of(text)
        where = f" {endpoint}" if endpoint else ""
        return f"{path}: cannot reach the GCS endpoint{where} ({_GCS_ENDPOINT_FIX})"
    return None


def explain(exc: BaseException, path: str) -> str | None:
    """One sentence naming `path` and the likely fix, or None when `exc` is none of the known faults."""
    scheme, bucket = _scheme_bucket(path)
    text = str(exc)
    if "No files found based on the file pattern" in text:  # Beam's FileBasedSource validation
        extra = f", or bucket '{bucket}' does not exist" if scheme == "s3" else ""
        return f"{path}: no file matches this pattern (check the prefix and the glob{extra})"
    explain_one = {"s3": _explain_s3, "gs": _explain_gcs}.get(scheme)
    if explain_one is None:
        return None
    for leaf in _leaves(exc):
        # the leaf, else what it was raised from or while handling: Beam's boto3_client turns a
        # botocore ReadTimeoutError (whose .response is None) into "AttributeError: 'NoneType' object
        # has no attribute 'get'" (get_http_error_code), raised while handling the timeout
        for candidate in (leaf, leaf.__cause__, leaf.__context__):
            message = explain_one(candidate, path, bucket) if candidate is not None else None
            if message:
                return message
    return None


def literal_prefix(pattern: str) -> str:
    """The object-name prefix before the first glob character of an object-store path or pattern."""
    key = pattern.split("://", 1)[-1].partition("/")[2]
    glob = _GLOB.search(key)
    return key[:glob.start()] if glob else key


def probe(path: str, options=None, *, connect_timeout: float = 5.0, read_timeout: float = 10.0,
          attempts: int = 2) -> None:
    """One bounded listing request (at most one key) under the bucket and literal prefix of `path`,
    outside Beam's retry policy: raises what the client raises (`explain` reads it) when the bucket is
    missing, the endpoint cannot be reached, no credentials are found, or listing is refused; returns
    None otherwise (also for a local path). It takes at most about
    `attempts * (connect_timeout + read_timeout)` seconds, and a closed port fails in well under one.

    `options`: the PipelineOptions the run uses (its S3Options flags), or None for the environment
    alone. For s3:// the client is built as Beam's (apache_beam/io/aws/clients/s3/boto3_client.py),
    with a botocore Config of these timeouts and attempts; for gs:// with Beam's
    `gcsio.create_storage_client`, with no retry (but the first GCS client of a process looks for
    credentials first: with none, Beam retries google.auth.default() 4 times, 15-30 s, then connects
    anonymously)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    scheme, bucket = _scheme_bucket(path)
    if options is None:
        options = PipelineOptions([])
    if scheme == "s3":
        _probe_s3(bucket, literal_prefix(path), options, connect_timeout, read_timeout, attempts)
    elif scheme == "gs":
        _probe_gcs(bucket, literal_prefix(path), options, connect_timeout, read_timeout)


def _probe_s3(bucket, prefix, options, connect_timeout, read_timeout, attempts) -> None:
    import boto3  # optional dependency (apache-beam[aws])
    from apache_beam.options.pipeline_options import S3Options
    from botocore.config import Config

    s3 = options.view_as(S3Options)
    config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                    retries={"mode": "standard", "total_max_attempts": max(1, attempts)})
    client = boto3.session.Session().client(
        service_name="s3", region_name=s3.s3_region_name, api_version=s3.s3_api_version,
        use_ssl=not s3.s3_disable_ssl, verify=s3.s3_verify, endpoint_url=s3.s3_endpoint_url,
        aws_access_key_id=s3.s3_access_key_id, aws_secret_access_key=s3.s3_secret_access_key,
        aws_session_token=s3.s3_session_token, config=config)
    client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)


def _probe_gcs(bucket, prefix, options, connect_timeout, read_timeout) -> None:
    from apache_beam.io.gcp.gcsio import create_storage_client  # needs google-cloud-storage

    client = create_storage_client(options)
    blobs = client.list_blobs(bucket, prefix=prefix, max_results=1,
                              timeout=(connect_timeout, read_timeout), retry=None)
    for _ in blobs:
        break
