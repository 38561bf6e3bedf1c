"""Two corrections to Beam's S3 filesystem: empty objects, and one S3 client per process.

**Empty objects.** Beam 2.77's `S3Uploader` writes every object as a multipart upload and completes it
with the parts it uploaded; an empty file has none, and S3 (and moto) refuse a completion without parts
(`MalformedXML`). So any empty file a run writes on S3 failed: a sink's empty shard, an empty ledger
part, a source with no drops (apache/beam#21369, open). The fix is the one the S3 documentation allows
and other clients use (aws-cli, arrow-rs object_store): upload one empty part first, the last part having
no minimum size.

**One client.** Beam makes a new boto3 session and client for every FileSystems call (`S3IO` per call,
`boto3_client.Client` per `S3IO`), and a client costs 0.5-0.7 s of CPU (botocore reads its JSON service
models each time; profiled on a Dask worker): a run that opens, renames and lists thousands of small
files spent most of its time there. Clients of boto3 are thread-safe and hold no per-request state, so
one client per distinct set of settings (endpoint, region, keys, from the options or the environment) is
made per process and reused (a forked child starts without); Beam's per-call wrapper, which holds the
state of one download, is still made per call.

Every process that may use S3 needs them: the driver and each worker (the local runner's worker
processes, Dask workers, Dataflow's). They all import `llamapipe.pipeline` (its `__init__` imports this
module) before they touch a file of ours, but not necessarily Beam's S3 module, which is heavy (boto3)
and which the trainer and the inspect commands on local files never need. So the correction is applied
the moment `apache_beam.io.aws.s3io` is imported, by a finder that wraps its loader, or at once if it
already was.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import threading

_MODULE = "apache_beam.io.aws.s3io"


# The variables boto3 reads for what Beam's options leave unset: a client is shared only while they
# are unchanged (tests point AWS_ENDPOINT_URL at one server, then at another).
_BOTO3_ENVIRONMENT = (
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CA_BUNDLE",
)


class _SharedClients:
    """Stands for `boto3` inside Beam's client module, where it is used only as
    `boto3.session.Session().client(**settings)`: the same settings give the same client."""

    def __init__(self, boto3):
        self._boto3 = boto3
        self._clients: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self.session = self  # boto3.session.Session() -> self
        # A forked child (a DataLoader worker) must not share the parent's open connections (nor a lock
        # another thread of the parent held at the fork)
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._clients = {}
        self._lock = threading.Lock()

    def Session(self):  # noqa: N802 (boto3's name)
        return self

    def client(self, **settings):
        # What Beam passes (None where no option is set), and what boto3 then reads from the environment
        key = (tuple(sorted((name, repr(value)) for name, value in settings.items())),
               tuple(os.environ.get(name) for name in _BOTO3_ENVIRONMENT))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._boto3.session.Session().client(**settings)
            return self._clients[key]


def _correct(s3io) -> None:
    client_module = s3io.boto3_client if hasattr(s3io, "boto3_client") else None
    if client_module is not None and client_module.boto3 is not None \
            and not isinstance(client_module.boto3, _SharedClients):
        client_module.boto3 = _SharedClients(client_module.boto3)
    uploader = s3io.S3Uploader
    if getattr(uploader.finish, "_llamapipe_empty_objects", False):
        return
    finish = uploader.finish

    def finish_with_a_part(self):
        if not self.parts and not self.buffer:
            self._write_to_s3(b"")  # an empty object: one empty (last) part
        finish(self)

    finish_with_a_part._llamapipe_empty_objects = True
    uploader.finish = finish_with_a_part


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _correct(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    if _MODULE in sys.modules:
        _correct(sys.modules[_MODULE])
    elif not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
