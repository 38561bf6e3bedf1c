"""One filesystem layer for everything a run reads and writes: local paths, s3:// and gs://.

Beam's `FileSystems` already serves the workers (inputs, documents, shards, run files), so the driver
and the other commands (`inspect`, `report`, `train`) use it too, through the few calls below: a run's
output folder may then be a local disk, a shared mount or an object store, and every command that
reads an output folder accepts any of them. Local paths keep plain `os` calls, for the one thing
FileSystems does not give there: an atomic replace.

Credentials and endpoints come from the standard places, never from us: Beam's `--s3_*` and GCP
options for `run` (`use_options`), and for every command the environments' own (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, ..., `GOOGLE_APPLICATION_CREDENTIALS`, `STORAGE_EMULATOR_HOST`), which boto3 and
google-cloud-storage read themselves when no option names a value.

**Complete or absent.** An object store has no atomic rename, so nothing here relies on one:
- one object (a JSON record, a tokenizer model, a checkpoint) is written by a single upload, and an
  object store shows an object only once its upload completed: a reader sees the old object, the new
  one, or none, never half of one (`write_bytes`);
- a set of objects (a stage's outputs) counts only once a completion record written after all of them
  exists: the shard set of a source (every `-SSSSS-of-NNNNN` index present, each shard uploaded under a
  temporary name first and copied to its final one) and `_work/completed.json` for a whole stage
  (`pipeline/resume.py`). A stage that is not recorded is deleted and run again, so a half-written one is
  never read.
"""

from __future__ import annotations

import glob as local_glob
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

_SCHEME = re.compile(r"(?P<scheme>[a-zA-Z][-a-zA-Z0-9+.]*)://")  # Beam's FileSystems.URI_SCHEMA_PATTERN


def use_options(options) -> None:
    """The `PipelineOptions` (`--s3_endpoint_url`, `--s3_access_key_id`, GCP project...) of the driver's
    own calls, as the runner gives the workers theirs; None: the environment's settings alone."""
    from apache_beam.io.filesystems import FileSystems

    FileSystems.set_options(options)


def current_options():
    """The options set by `use_options` (None: the environment's settings alone)."""
    if "apache_beam.io.filesystems" not in sys.modules:
        return None
    return sys.modules["apache_beam.io.filesystems"].FileSystems._pipeline_options


def _fs():
    """Beam's FileSystems, imported on the first object-store path only (the trainer and the inspect
    commands on local shards never pay for importing Beam), with options set: Beam's S3 client fails
    without any, and empty ones leave every value to boto3's own chain (environment, ~/.aws, role)."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    if FileSystems._pipeline_options is None:
        FileSystems.set_options(PipelineOptions([]))
    return FileSystems


def _raw():
    from apache_beam.io.filesystem import CompressionTypes

    return CompressionTypes.UNCOMPRESSED  # our files are what they are: never guessed from the extension


def scheme(path: str) -> str | None:
    match = _SCHEME.match(path.strip())
    return match["scheme"] if match else None


def is_remote(path: str) -> bool:
    """An object store (s3://, gs://...), not a local path (or file://)."""
    return scheme(path) not in (None, "file")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return _fs().join(base, *parts)
    return os.path.join(base, *parts)


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] if is_remote(path) else os.path.basename(path)


def dirname(path: str) -> str:
    if not is_remote(path):
        return os.path.dirname(path)
    parts = path.rstrip("/").split("/")
    return "/".join(parts[:-1]) if len(parts) > 3 else "/".join(parts)  # a bucket is its own folder


def absolute(path: str) -> str:
    """A local path made absolute; an object-store path as it is."""
    return path if is_remote(path) else os.path.abspath(_local(path))


def relative(path: str, start: str) -> str:
    """`path` relative to the folder `start` (both local, or both under the same object-store root)."""
    if not is_remote(path):
        return os.path.relpath(_local(path), _local(start))
    path_parts, start_parts = path.rstrip("/").split("/"), start.rstrip("/").split("/")
    if path_parts[:3] != start_parts[:3]:  # scheme://bucket
        raise ValueError(f"{path} and {start} are not in the same bucket")
    common = 3
    while common < min(len(path_parts), len(start_parts)) and path_parts[common] == start_parts[common]:
        common += 1
    return "/".join([".."] * (len(start_parts) - common) + path_parts[common:]) or "."


def resolve(folder: str, relative_path: str) -> str:
    """A path written relative to `folder` (a manifest's shard paths, `../tokenizer/...`) made whole."""
    if not is_remote(folder):
        return os.path.normpath(os.path.join(_local(folder), relative_path))
    parts = folder.rstrip("/").split("/")
    root = "/".join(parts[:3])  # scheme://bucket
    stack = parts[3:]
    for part in relative_path.split("/"):
        if part == "..":
            if stack:
                stack.pop()
        elif part not in ("", "."):
            stack.append(part)
    return "/".join([root, *stack])


def exists(path: str) -> bool:
    """A file, or a folder (on an object store: a prefix with at least one object below it)."""
    if not is_remote(path):
        return os.path.exists(_local(path))
    return _fs().exists(path) or bool(_list_below(path, limit=1))


def is_file(path: str) -> bool:
    if not is_remote(path):
        return os.path.isfile(_local(path))
    return _fs().exists(path)


def is_dir(path: str) -> bool:
    if not is_remote(path):
        return os.path.isdir(_local(path))
    return bool(_list_below(path, limit=1))


def _list_below(folder: str, limit: int | None = None) -> list[str]:
    """Every object below `folder/` (all depths), as full paths."""
    prefix = folder.rstrip("/") + "/"
    # A prefix match: `**` crosses folders; the filesystem lists by prefix, then filters.
    result = _fs().match([prefix + "**"], limits=[limit] if limit else None)[0]
    return [m.path for m in result.metadata_list]


def list_names(folder: str) -> list[str]:
    """The names directly inside a folder, files and folders alike, sorted ([] when it is absent)."""
    if not is_remote(folder):
        folder = _local(folder)
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    prefix = folder.rstrip("/") + "/"
    return sorted({path[len(prefix):].split("/", 1)[0] for path in _list_below(folder)})


def glob(pattern: str) -> list[str]:
    """Files matching `pattern` (`*` within a name, `**` across folders), sorted."""
    if not is_remote(pattern):
        return sorted(p for p in local_glob.glob(_local(pattern), recursive=True) if os.path.isfile(p))
    return [path for path, _ in match(pattern)]


def match(pattern: str) -> list[tuple[str, int]]:
    """(path, size) of each file matching a glob, as Beam's MatchFiles sees it (so the driver lists
    inputs as the readers do), sorted."""
    if not is_remote(pattern):
        return [(p, os.path.getsize(p)) for p in glob(pattern)]
    # Beam's `**` matches any characters, `/` included: `a/**/b` needs a folder between a and b, where
    # a local glob also takes none. Both are asked for, so that `**/` means the same everywhere.
    patterns = [pattern] + ([pattern.replace("/**/", "/")] if "/**/" in pattern else [])
    return sorted({(m.path, m.size_in_bytes) for result in _fs().match(patterns)
                   for m in result.metadata_list})


def walk(folder: str) -> list[str]:
    """Every file below `folder` (all depths), relative to it with `/`, sorted; [] when absent. One
    listing (on an object store, paged prefix listing), however many files."""
    if not is_remote(folder):
        root = _local(folder)
        found = []
        for parent, _, names in os.walk(root):
            found += [os.path.relpath(os.path.join(parent, name), root).replace(os.sep, "/")
                      for name in names]
        return sorted(found)
    prefix = folder.rstrip("/") + "/"
    return sorted(path[len(prefix):] for path in _list_below(folder))


def size(path: str) -> int:
    if not is_remote(path):
        return os.path.getsize(_local(path))
    return _fs().match([path])[0].metadata_list[0].size_in_bytes


def open_read(path: str) -> IO[bytes]:
    """A binary, seekable stream (pyarrow reads Parquet footers and row groups through it)."""
    if not is_remote(path):
        return open(_local(path), "rb")
    return _fs().open(path, compression_type=_raw())


def read_bytes(path: str) -> bytes:
    with open_read(path) as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def read_json(path: str) -> Any:
    return json.loads(read_bytes(path))


def write_bytes(path: str, data: bytes) -> None:
    """Complete or absent: a local file is written beside and renamed over (and synced); an object is
    one upload, which the store shows only once complete."""
    if is_remote(path):
        with _fs().create(path, compression_type=_raw()) as f:
            f.write(data)
        return
    path = _local(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, data: Any, indent: int | None = 2) -> None:
    write_text(path, json.dumps(data, indent=indent))


def makedirs(path: str) -> None:
    """A local folder; nothing on an object store (a folder there is only a prefix of objects)."""
    if not is_remote(path):
        os.makedirs(_local(path), exist_ok=True)


def remove(path: str) -> None:
    """A file, or a folder and all below it (locally a symlink itself, never what it points to).
    Absent is fine."""
    if not is_remote(path):
        path = _local(path)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
        return
    doomed = _list_below(path)
    if _fs().exists(path):
        doomed.append(path)
    if doomed:
        _fs().delete(doomed)


def download(path: str, local_path: str) -> None:
    with open_read(path) as src, open(local_path, "wb") as dst:
        shutil.copyfileobj(src, dst, 8 << 20)


def upload(local_path: str, path: str) -> None:
    """A local file to `path`, complete or absent (see `write_bytes`)."""
    if not is_remote(path):
        path = _local(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp"
        shutil.copyfile(local_path, tmp)
        os.replace(tmp, path)
        return
    with open(local_path, "rb") as src, _fs().create(path, compression_type=_raw()) as dst:
        shutil.copyfileobj(src, dst, 8 << 20)


@contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local file holding `path`'s bytes, for libraries that read only local files (SentencePiece,
    fastText): `path` itself when local, else a temporary copy deleted after."""
    if not is_remote(path):
        yield _local(path)
        return
    suffix = os.path.splitext(basename(path))[1]
    fd, tmp = tempfile.mkstemp(prefix="llamapipe-", suffix=suffix)
    os.close(fd)
    try:
        download(path, tmp)
        yield tmp
    finally:
        os.remove(tmp)


def sha256(path: str) -> str:
    """The hex SHA-256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    with open_read(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def open_write(path: str) -> Iterator[IO[bytes]]:
    """A binary stream to write a file too big to hold in memory (an export's token file), complete or
    absent as `write_bytes`: a local file is written beside and renamed over on success, deleted on an
    error; an object is one streamed upload (S3 multipart in 5 MB parts, GCS resumable chunks: Beam's
    uploaders buffer one part, not the file), deleted again when the writing failed."""
    if is_remote(path):
        try:
            with _fs().create(path, compression_type=_raw()) as f:
                yield f
        except BaseException:
            remove(path)  # Beam completes the upload on close, even after an error: not a half file
            raise
        return
    path = _local(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
