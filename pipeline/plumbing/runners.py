"""How `llamapipe run` executes its Beam pipelines: runner names, runner flags and the Dask cluster.

`--runner dask` selects `llamapipe.pipeline.plumbing.dask_runner.DaskRunner` (Beam's DaskRunner with the
corrections our pipelines need; see that module). With `--dask-address tcp://HOST:PORT` (also spelled
`--dask_address`, or Beam's own `--dask_client_address`) it runs on that `dask.distributed` scheduler,
whose workers must have llamapipe installed. Without one it runs on a `distributed.LocalCluster` of
`--direct_num_workers` (default 2) single-threaded worker processes on 127.0.0.1: one for the whole
`run()` (both of its pipelines; see `sharing_a_local_cluster`), closed when it returns, or one per
pipeline for a `beam.Pipeline` run elsewhere.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import warnings
from contextlib import contextmanager

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineRunner

from llamapipe.pipeline.plumbing.typed_yaml import ConfigError

DASK_RUNNER = "llamapipe.pipeline.plumbing.dask_runner.DaskRunner"
LOCAL_RUNNER = "llamapipe.pipeline.plumbing.runners.LocalRunner"
RUNNER_ALIASES = {
    "direct": LOCAL_RUNNER,
    "directrunner": LOCAL_RUNNER,
    "dask": DASK_RUNNER,
    "daskrunner": DASK_RUNNER,
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
}
DEFAULT_LOCAL_WORKERS = 2
_ADDRESS_FLAG = re.compile(r"^--dask[-_]address(=(?P<value>.*))?$")


def runner_class(name: str) -> str:
    """A `--runner` value: an alias (direct, dask, dataflow, flink, spark) or what Beam accepts.
    `DirectRunner` is `LocalRunner`, below."""
    return RUNNER_ALIASES.get(name.lower(), name)


class LocalRunner(PipelineRunner):
    """Beam's DirectRunner for batch pipelines (its FnApiRunner, in one process or with
    `direct_running_mode=multi_processing` worker processes), without its first attempt at Prism.

    Since Beam 2.6x the DirectRunner first tries to run a pipeline on Prism, a Go binary it downloads
    from GitHub at run time: offline that costs a translation of the whole graph (about 1.3 s for the
    cleaning pipeline) and a failed download before it falls back; online it would run our pipelines on
    an engine our tests and benchmarks do not exercise, after a download at run time.
    This is the DirectRunner's own FnApiRunner branch (`direct_runner.SwitchingDirectRunner`), with the
    pipeline options handed to the workers the same way."""

    def run_pipeline(self, pipeline, options):
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        provision_info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(
            pipeline_options=JobServiceHandle.encode_pipeline_options(options.get_all_options())))
        return fn_runner.FnApiRunner(provision_info=provision_info).run_pipeline(pipeline, options)


def normalize_flags(flags: list[str]) -> list[str]:
    """`--dask-address X`, `--dask-address=X` and `--dask_address=X` -> Beam's `--dask_client_address=X`."""
    out, i = [], 0
    while i < len(flags):
        match = _ADDRESS_FLAG.match(flags[i])
        if not match:
            out.append(flags[i])
        elif match.group(1) is not None:
            out.append(f"--dask_client_address={match.group('value')}")
        else:
            if i + 1 >= len(flags) or flags[i + 1].startswith("--"):
                raise ConfigError(f"{flags[i]} needs a scheduler address, e.g. {flags[i]}=tcp://HOST:8786")
            out.append(f"--dask_client_address={flags[i + 1]}")
            i += 1
        i += 1
    return out


def local_cluster_workers(options: PipelineOptions) -> int:
    """Worker processes of the LocalCluster started when no scheduler is given: `--direct_num_workers`
    when given (0: one per core), else 2. Read from the flags: DirectOptions cannot tell a given 1 from
    its default 1."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--direct_num_workers", type=int)
    given = parser.parse_known_args(getattr(options, "_flags", []))[0]  # the command-line flags
    count = given.direct_num_workers
    if count is None:
        count = options.get_all_options(drop_default=True).get("direct_num_workers")  # set as a keyword
    if count is None:
        return DEFAULT_LOCAL_WORKERS
    return count if count > 0 else (os.cpu_count() or 1)


def start_local_cluster(n_workers: int):
    """A LocalCluster of single-threaded worker processes, on the loopback interface, no dashboard; the
    cluster's own logs below ERROR are silenced (it warns, for example, when a worker takes more than
    a few seconds to stop)."""
    from distributed import LocalCluster

    with warnings.catch_warnings():
        # The scheduler's HTTP server (health and metrics routes, even without a dashboard) tries port
        # 8787 first and warns when another cluster on the machine has it, then takes a free port.
        warnings.filterwarnings("ignore", message="Port 8787 is already in use")
        return LocalCluster(n_workers=n_workers, processes=True, threads_per_worker=1, host="127.0.0.1",
                            dashboard_address=None, silence_logs=logging.ERROR)


_shared_clusters: list[dict] = []  # one holder per active sharing_a_local_cluster(), innermost last


def local_cluster(n_workers: int):
    """The LocalCluster a pipeline without a scheduler address runs on -> (cluster, caller_closes).

    Within `shared_local_cluster()` it is the one shared there (started by the first pipeline that
    needs it, so that its workers' stderr is the one Beam's logs go to at that time, OUT/beam.log in a
    run) and closed on leaving it; elsewhere a new one that the caller closes."""
    if not _shared_clusters:
        return start_local_cluster(n_workers), True
    holder = _shared_clusters[-1]
    if "cluster" not in holder:
        holder["cluster"] = start_local_cluster(n_workers)
    return holder["cluster"], False


@contextmanager
def shared_local_cluster():
    """Pipelines run within share one LocalCluster (when they need one), closed on leaving."""
    holder: dict = {}
    _shared_clusters.append(holder)
    try:
        yield
    finally:
        _shared_clusters.remove(holder)
        if "cluster" in holder:
            close_quietly(holder["cluster"])


def close_quietly(cluster) -> None:
    """Close a LocalCluster without its INFO lines (retiring workers, closing comms...) on stderr."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        cluster.close()
    finally:
        logger.setLevel(level)


def sharing_a_local_cluster(function):
    """Decorator: `function` (`run()`) runs within `shared_local_cluster()`, so that `--runner dask`
    without an address starts one LocalCluster for all its pipelines instead of one per pipeline."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with shared_local_cluster():
            return function(*args, **kwargs)

    return wrapper
