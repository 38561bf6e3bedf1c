"""`--runner dask`: Beam's DaskRunner as corrected by `pipeline/plumbing/dask_runner.py`, on a local
`dask.distributed` cluster of two worker processes (127.0.0.1 only).

First each correction on a tiny pipeline (each of these fails on Beam 2.77's own DaskRunner), then the
whole `llamapipe run` (cleaning and tokenization pipelines, through the CLI with `--dask-address`),
whose manifest (tokens, documents, shard checksums), shard files and ledger must be those of a
DirectRunner run of the same config."""

from __future__ import annotations

import json

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
import yaml
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.config import load_config
from llamapipe.pipeline.plumbing import runners
from llamapipe.pipeline.plumbing.runners import DASK_RUNNER, normalize_flags
from llamapipe.pipeline.plumbing.typed_yaml import ConfigError
from llamapipe.pipeline.run import beam_options, run
from llamapipe.sources.demo import write_demo_corpus
from tests.conftest import (
    demo_config,
    time_limit,  # noqa: F401 (also imported from here)
)
from tests.hostile.test_determinism import shard_digests

try:
    import distributed
except ImportError:  # the dev extra installs it
    distributed = None

needs_dask = pytest.mark.skipif(
    distributed is None, reason="dask is not installed: pip install 'llamapipe[dask]' (the dev extra has it)")


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes on 127.0.0.1, that pipelines reach by address."""
    with time_limit(120, "starting the LocalCluster"):
        local = runners.start_local_cluster(2)
    with local:
        yield local


def on_dask(cluster, *flags) -> PipelineOptions:
    return PipelineOptions([f"--runner={DASK_RUNNER}", f"--dask_client_address={cluster.scheduler_address}",
                            *flags])


def run_pipeline(options: PipelineOptions, build, seconds: float = 90) -> None:
    with time_limit(seconds, "a pipeline on the Dask runner"), beam.Pipeline(options=options) as p:
        build(p)


def cleaned_outputs(out) -> dict[str, list]:
    """The documents (rows) and drops (lines) a cleaning run wrote, in a runner-independent order."""
    documents = [row for path in out.glob("documents/*/*.parquet") for row in pq.read_table(path).to_pylist()]
    return {"documents": sorted(documents, key=lambda row: row["id"]),
            "dropped": written_lines(out / "dropped", "")}


def written_lines(folder, prefix: str) -> list[str]:
    return sorted(line for path in folder.glob(prefix + "*") for line in path.read_text().splitlines())


# --- flags: no cluster needed -------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", [["--dask-address", "tcp://h:8786"], ["--dask-address=tcp://h:8786"],
                                      ["--dask_address=tcp://h:8786"], ["--dask_address", "tcp://h:8786"],
                                      ["--dask_client_address=tcp://h:8786"]])
def test_every_spelling_of_the_scheduler_address_becomes_beams_option(spelling):
    flags = normalize_flags(["--runner=x", *spelling, "--direct_num_workers=2"])
    assert flags == ["--runner=x", "--dask_client_address=tcp://h:8786", "--direct_num_workers=2"]


@pytest.mark.parametrize(("flags", "workers"), [([], 2), (["--direct_num_workers=1"], 1),
                                                  (["--direct_num_workers", "3"], 3)])
def test_the_local_cluster_has_direct_num_workers_processes_else_two(flags, workers):
    assert runners.local_cluster_workers(PipelineOptions(flags)) == workers


def test_an_address_flag_without_its_value_is_a_config_error():
    with pytest.raises(ConfigError, match="needs a scheduler address"):
        normalize_flags(["--dask-address", "--direct_num_workers=2"])


@needs_dask
def test_dask_in_the_config_or_on_the_command_line_selects_the_corrected_runner(tmp_path):
    from apache_beam.runners.dask.dask_runner import DaskOptions

    data = demo_config(tmp_path / "demo-data", tmp_path / "out")
    data["runner"] = {"runner": "dask", "options": {"dask_address": "tcp://127.0.0.1:8786"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    config = load_config(str(tmp_path / "config.yaml"), check_files=False)
    for runner in (None, "dask", "DaskRunner"):
        options = beam_options(config, runner, [])
        assert options.view_as(StandardOptions).runner == DASK_RUNNER
        assert options.view_as(DaskOptions).address == "tcp://127.0.0.1:8786"


# --- the translation's partitioning: no cluster needed -----------------------------------------------

def translated(build, partitions: int):
    """The bags of the PCollections `build(p)` returns, as `DaskRunner` translates them."""
    from apache_beam.runners.dask.overrides import dask_overrides

    from llamapipe.pipeline.plumbing.dask_runner import _BagTranslator

    p = beam.Pipeline()
    # (through a ParDo: the overrides give Create, Flatten, Reshuffle... outputs new PCollections)
    outputs = [pcoll | f"Out{i}" >> beam.Map(lambda x: x) for i, pcoll in enumerate(build(p))]
    p.replace_all(dask_overrides())
    translator = _BagTranslator({}, partitions)
    p.visit(translator)
    return [translator._bags[id(pcoll)] for pcoll in outputs]


@needs_dask
def test_flattens_of_bags_derived_from_one_keep_the_partitions_bounded_and_the_elements():
    # Beam's runner concatenates partitions: 2 ** 12 of them after 12 such rounds (dedup's
    # connected components make 16).
    def build(p):
        bag = p | beam.Create(range(3)) | beam.Reshuffle()
        for r in range(12):
            bag = (bag, bag | f"Same{r}" >> beam.Map(lambda n: n)) | f"Round{r}" >> beam.Flatten()
        return [bag]

    (bag,) = translated(build, partitions=3)
    assert bag.npartitions == 3
    assert sorted(bag.compute(scheduler="sync")) == sorted(list(range(3)) * 2 ** 12)


@needs_dask
def test_a_reshuffle_spreads_a_create_over_the_partitions():
    (bag,) = translated(lambda p: [p | beam.Create(range(10)) | beam.Reshuffle()], partitions=4)
    assert bag.npartitions == 4
    assert sorted(bag.compute(scheduler="sync")) == list(range(10))


# --- each correction of Beam's DaskRunner, on a tiny pipeline ----------------------------------------

class _EvenOrOdd(beam.DoFn):
    def process(self, n):
        yield n if n % 2 == 0 else beam.pvalue.TaggedOutput("odd", n)


@needs_dask
def test_each_output_of_a_multi_output_pardo_gets_its_own_elements_and_each_sink_writes(cluster, tmp_path):
    # Beam's runner feeds every consumer of a multi-output ParDo all of its outputs, and computes only
    # the last sink of the pipeline.
    def build(p):
        numbers = p | beam.Create(range(30))
        split = numbers | beam.ParDo(_EvenOrOdd()).with_outputs("odd", main="even")
        parts = numbers | beam.Partition(lambda n, _: n % 3, 3)
        for label, pcoll in (("even", split.even), ("odd", split.odd), ("mod3", parts[2])):
            (pcoll | f"Str_{label}" >> beam.Map(str)
             | f"Write_{label}" >> beam.io.WriteToText(str(tmp_path / label)))

    run_pipeline(on_dask(cluster), build)
    assert written_lines(tmp_path, "even") == sorted(str(n) for n in range(0, 30, 2))
    assert written_lines(tmp_path, "odd") == sorted(str(n) for n in range(1, 30, 2))
    assert written_lines(tmp_path, "mod3") == sorted(str(n) for n in range(2, 30, 3))
    assert not list(tmp_path.glob("beam-temp-*")), "a sink left its temporary files"


class _CountInFinishBundle(beam.DoFn):
    def start_bundle(self):
        self._count = 0

    def process(self, element):
        self._count += 1

    def finish_bundle(self):
        yield WindowedValue(self._count, GlobalWindow().max_timestamp(), [GlobalWindow()])


@needs_dask
def test_what_finish_bundle_emits_is_kept(cluster, tmp_path):
    # Beam's runner copies a bundle's outputs before calling finish_bundle.
    def build(p):
        (
            p
            | beam.Create(range(50))
            | beam.Reshuffle()  # over both workers' partitions: several bundles
            | beam.ParDo(_CountInFinishBundle())
            | beam.CombineGlobally(sum)
            | beam.Map(str)
            | beam.io.WriteToText(str(tmp_path / "total"))
        )

    run_pipeline(on_dask(cluster), build)
    assert written_lines(tmp_path, "total") == ["50"]


class _Logged(beam.DoFn):
    """Appends a line to `path` for every element: how many times the step ran."""

    def __init__(self, path: str):
        self._path = path

    def process(self, element):
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(f"{element}\n")
        yield element


@needs_dask
def test_a_side_input_is_computed_once_for_all_the_tasks_that_read_it(cluster, tmp_path):
    # Beam's runner computes a side input's upstream again in every task that reads it.
    calls = tmp_path / "calls.txt"

    def build(p):
        side = p | "Side" >> beam.Create(range(5)) | "Logged" >> beam.ParDo(_Logged(str(calls)))
        main = p | "Main" >> beam.Create(range(10)) | beam.Reshuffle()
        plus = main | "Plus" >> beam.Map(lambda n, s: n + sum(s), beam.pvalue.AsList(side))
        times = main | "Times" >> beam.Map(lambda n, s: n * len(s), beam.pvalue.AsList(side))
        plus | "StrPlus" >> beam.Map(str) | "WritePlus" >> beam.io.WriteToText(str(tmp_path / "plus"))
        times | "StrTimes" >> beam.Map(str) | "WriteTimes" >> beam.io.WriteToText(str(tmp_path / "times"))

    run_pipeline(on_dask(cluster), build)
    assert written_lines(tmp_path, "plus") == sorted(str(n + 10) for n in range(10))
    assert written_lines(tmp_path, "times") == sorted(str(n * 5) for n in range(10))
    assert sorted(calls.read_text().split()) == [str(n) for n in range(5)]


def _fail_on_three(n):
    if n == 3:
        raise ValueError("three is not allowed")
    return n


@needs_dask
def test_an_error_in_a_worker_fails_the_pipeline(cluster, tmp_path):
    with pytest.raises(ValueError, match="three is not allowed"):
        run_pipeline(on_dask(cluster), lambda p: p | beam.Create(range(5)) | beam.Map(_fail_on_three)
                     | beam.io.WriteToText(str(tmp_path / "never")))


@needs_dask
def test_a_read_is_refused_instead_of_reading_nothing(cluster, tmp_path):
    # Beam's runner translates a beam.io.Read to no input at all (its consumer then fails on None).
    (tmp_path / "lines.txt").write_text("one\ntwo\n")
    p = beam.Pipeline(options=on_dask(cluster))
    p | beam.io.ReadFromText(str(tmp_path / "lines.txt")) | beam.io.WriteToText(str(tmp_path / "copy"))
    with pytest.raises(NotImplementedError, match="ReadFromText.*is not supported"):
        p.run()


@needs_dask
def test_without_an_address_the_pipelines_of_a_run_share_a_local_cluster_closed_after(monkeypatch, tmp_path):
    started, start_local_cluster = [], runners.start_local_cluster

    def start(n_workers):
        assert n_workers == 1  # --direct_num_workers
        started.append(start_local_cluster(n_workers))
        return started[-1]

    monkeypatch.setattr(runners, "start_local_cluster", start)

    @runners.sharing_a_local_cluster
    def two_pipelines():
        for name in ("first", "second"):
            options = PipelineOptions([f"--runner={runners.runner_class('dask')}", "--direct_num_workers=1"])
            run_pipeline(options, lambda p, name=name: p | beam.Create([name]) | beam.io.WriteToText(
                str(tmp_path / name)))
        return started[0].status

    status_during = two_pipelines()
    assert len(started) == 1
    assert status_during == distributed.core.Status.running
    assert started[0].status == distributed.core.Status.closed
    assert written_lines(tmp_path, "first") == ["first"] and written_lines(tmp_path, "second") == ["second"]


# --- the whole run ------------------------------------------------------------------------------------

@needs_dask
def test_the_whole_run_on_dask_gives_the_manifest_shards_and_ledger_of_direct_runner(cluster, tmp_path):
    corpus = tmp_path / "demo-data"
    write_demo_corpus(corpus, seed=0, scale=0.1)
    configs = {}
    for name in ("direct", "dask"):  # each in its own folder (nothing in the outputs depends on it)
        data = demo_config(corpus, tmp_path / f"out-{name}")
        data["runner"]["options"] = {"direct_running_mode": "in_memory", "direct_num_workers": 1}
        data["classifier"] = {"min_positives": 4}  # so that the reference classifier trains at this scale
        configs[name] = tmp_path / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump(data))

    out = tmp_path / "out-direct"
    direct = run(load_config(str(configs["direct"])), log=lambda *_: None)
    direct_shards = shard_digests(out / "shards")
    direct_ledger = json.loads((out / "ledger.json").read_text())
    direct_outputs = cleaned_outputs(out)
    assert json.loads((out / "run.json").read_text())["classifier"]["status"] == "trained"

    out = tmp_path / "out-dask"
    with time_limit(240, "llamapipe run --runner dask"):
        code = main(["run", str(configs["dask"]), "--runner", "dask", "--dask-address",
                     cluster.scheduler_address])
    assert code == 0
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    assert manifest == direct["manifest"]
    assert {s: (e["documents"], e["tokens"]) for s, e in manifest["sources"].items()} == \
        {s: (e["documents"], e["tokens"]) for s, e in direct["manifest"]["sources"].items()}
    assert shard_digests(out / "shards") == direct_shards
    assert json.loads((out / "ledger.json").read_text()) == direct_ledger
    # The cleaned documents and the drops too (in other files: one per bundle, and bundles differ).
    assert cleaned_outputs(out) == direct_outputs
    assert json.loads((out / "run.json").read_text())["classifier"]["status"] == "trained"
