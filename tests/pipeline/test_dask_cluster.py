"""`--runner dask` on a real Dask cluster: `dask scheduler` and two `dask worker` processes started as
separate OS processes on 127.0.0.1 (`tests/dask_cluster.py`), the workers in an empty folder (not the test's),
and `s3://` on moto's S3 server, another process.

The workers get no AWS_* variable, no credentials file and no instance metadata: a pipeline's DoFns reach
S3 only with the `--s3_*` pipeline options, which `DaskRunner` hands to `FileSystems` in the workers (as
Beam's SDK harness does on the portable runners). moto's server: `tests/object_stores.py`."""

from __future__ import annotations

import os
import time

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from llamapipe.pipeline.plumbing.runners import DASK_RUNNER
from tests.dask_cluster import dask_cluster, pickled_by_value
from tests.object_stores import moto_s3_server
from tests.pipeline.plumbing.test_dask_runner import needs_dask, time_limit

try:
    import distributed
    import psutil
except ImportError:  # the dev extra installs dask[distributed] (and psutil with it)
    distributed = psutil = None

# Nothing but the pipeline options can give the workers S3 credentials.
NO_AWS = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
          "AWS_EC2_METADATA_DISABLED": "true"}
BUCKET = "llamapipe-test"


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listening_addresses(pid: int) -> set[str]:
    return {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN}


@needs_dask
def test_the_cluster_is_separate_processes_in_an_empty_folder_on_loopback_and_all_stop():
    started = time.monotonic()
    with time_limit(120, "starting, using and stopping the Dask cluster"):
        with dask_cluster(workers=2) as address, distributed.Client(address) as client:
            assert address.startswith("tcp://127.0.0.1:")
            scheduler = client.run_on_scheduler(os.getpid)
            workers = client.run(os.getpid)
            nannies = client.run(os.getpid, nanny=True)
            parents = client.run(os.getppid)
            folders = client.run(os.getcwd)
            assert len(workers) == len(nannies) == 2
            assert scheduler == address.pids["scheduler"]
            assert sorted(nannies.values()) == sorted(address.pids[f"worker-{i}"] for i in range(2))
            assert sorted(parents.values()) == sorted(nannies.values())  # each worker runs under its nanny
            pids = {os.getpid(), scheduler, *workers.values(), *nannies.values()}
            assert len(pids) == 6, "the test, the scheduler, 2 nannies and 2 workers: 6 processes"
            assert set(folders.values()) == {str(address.cwd)}
            assert os.getcwd() != str(address.cwd) and os.listdir(address.cwd) == []
            for pid in (scheduler, *workers.values(), *nannies.values()):
                assert listening_addresses(pid) <= {"127.0.0.1"}, f"process {pid} listens beyond loopback"
            # every process started, and theirs (multiprocessing's resource tracker...)
            started_pids = [address.pids[name] for name in address.pids]
            everything = set(started_pids) | {child.pid for pid in started_pids
                                             for child in psutil.Process(pid).children(recursive=True)}
            assert set(workers.values()) <= everything
            print(f"cluster up in {time.monotonic() - started:.1f} s")
    assert [pid for pid in everything if alive(pid)] == []
    print(f"cluster started, used and stopped in {time.monotonic() - started:.1f} s")


# --- S3 on the workers through the pipeline options ----------------------------------------------------
# (This module is pickled by value, as a DoFn written in a notebook would be: the workers have llamapipe
# and its dependencies installed, not the tests.)

class _WriteObject(beam.DoFn):
    """Writes `n` to `prefix/n.txt` with FileSystems, with the writer's process id; yields the path."""

    def __init__(self, prefix: str):
        self._prefix = prefix

    def process(self, n):
        path = f"{self._prefix}/{n}.txt"
        with FileSystems.create(path) as f:
            f.write(f"{n} {os.getpid()}".encode())
        yield path


def _read_object(path: str) -> str:
    with FileSystems.open(path) as f:
        return f.read().decode()


def _aws_variables() -> list[str]:
    return sorted(key for key in os.environ if key.startswith("AWS_"))


def _list_buckets_without_the_options(endpoint: str) -> str:
    """What boto3 alone gets on a worker: the credentials it finds (none, we expect)."""
    import boto3
    import botocore.exceptions

    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").list_buckets()
    except botocore.exceptions.NoCredentialsError as exc:
        return type(exc).__name__
    return "listed the buckets"


@needs_dask
def test_a_pipeline_on_the_cluster_writes_and_reads_s3_with_only_the_pipeline_options():
    pytest.importorskip("boto3", reason="Beam's S3 filesystem needs boto3 (apache-beam[aws])")
    started = time.monotonic()
    with time_limit(180, "a pipeline on the Dask cluster with S3 on moto"), moto_s3_server() as server, \
            dask_cluster(workers=2, env=NO_AWS) as address, pickled_by_value(__name__):
        bucket = server.create_bucket(BUCKET)
        server.put(f"{bucket}/in/greeting.txt", b"hello from the test")
        with distributed.Client(address) as client:
            assert set(map(tuple, client.run(_aws_variables).values())) == {tuple(sorted(NO_AWS))}
            # Without the options a worker finds no credentials: only the options can make it work.
            assert set(client.run(_list_buckets_without_the_options, server.endpoint_url).values()) == \
                {"NoCredentialsError"}
            worker_pids = set(client.run(os.getpid).values())
        cluster_up = time.monotonic()

        options = PipelineOptions([f"--runner={DASK_RUNNER}", f"--dask_client_address={address}",
                                   *server.flags])
        with beam.Pipeline(options=options) as p:
            (p
             | "Numbers" >> beam.Create(range(10))
             | beam.Reshuffle()  # over both workers
             | beam.ParDo(_WriteObject(f"{bucket}/objects"))
             | "ReadBack" >> beam.Map(_read_object)
             | beam.io.WriteToText(f"{bucket}/out/numbers", shard_name_template="-SS-of-NN"))
            (p
             | "Input" >> beam.Create([f"{bucket}/in/greeting.txt"])
             | "ReadInput" >> beam.Map(_read_object)
             | "WriteGreeting" >> beam.io.WriteToText(f"{bucket}/out/greeting"))
        pipeline_done = time.monotonic()

        s3 = server.client()

        def text(key: str) -> str:
            return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()

        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
        assert sorted(k for k in keys if k.startswith("objects/")) == \
            sorted(f"objects/{n}.txt" for n in range(10))
        lines = [line for k in keys if k.startswith("out/numbers") for line in text(k).splitlines()]
        assert sorted(int(line.split()[0]) for line in lines) == list(range(10))
        writers = {int(line.split()[1]) for line in lines}
        assert writers <= worker_pids and os.getpid() not in writers
        assert [text(k) for k in keys if k.startswith("out/greeting")] == ["hello from the test\n"]
        assert not [k for k in keys if "beam-temp" in k], "a sink left its temporary files"
    print(f"moto and the cluster up in {cluster_up - started:.1f} s, pipeline "
          f"{pipeline_done - cluster_up:.1f} s, all stopped {time.monotonic() - started:.1f} s in all")
