"""Beam's DaskRunner with the corrections our pipelines need (`--runner dask`;
`pipeline/plumbing/runners.py`).

Beam 2.77's `apache_beam/runners/dask/` runs a pipeline by translating each primitive into a
`dask.bag` operation, and three of its choices give wrong results on pipelines like ours, silently:

1. `dask_runner.DaskRunner.run_pipeline` computes only the bag of the *last* transform visited ("we
   can get away with computing just the last value, which should be connected to the full Bag Task
   Graph"). A pipeline with several sinks (documents, drops, rejects, ledger, ...) writes one of them.
2. `transform_evaluator.ParDo` makes one bag per *transform*, and `DaskBagVisitor` feeds a consumer
   the bag of its input's producer: the consumer of one output of a multi-output ParDo
   (`with_outputs`, `beam.Partition`) receives the elements of every output, main and tagged alike.
3. `transform_evaluator.apply_dofn_to_bundle` copies the bundle's outputs *before*
   `invoke_finish_bundle()`: what a DoFn emits in `finish_bundle` is lost. Beam's own file sinks emit
   the files they wrote there, so `WriteToText` / `WriteToParquet` finalize no file.

These are in the runner, not in what the pipeline asks for (side outputs, several sinks and
`finish_bundle` outputs are ordinary Beam that every other runner executes), so `DaskRunner` here
keeps Beam's runner (its options, its overrides of Create / GroupByKey / Flatten / Reshuffle / Read,
its GroupByKey bag operation, its windowed-value helper) and replaces its graph translation with
`_BagTranslator`:

- one bag per *PCollection*: a multi-output ParDo computes one bag of (tag, value) pairs and each of
  its PCollections selects its tag from it;
- a ParDo's bundle is a dask partition: a fresh DoFn (unpickled with Beam's pickler), setup,
  start_bundle, process, finish_bundle, teardown, with the outputs of all of them;
- the worker's `FileSystems` get the pipeline options before a bundle runs, as Beam's SDK harness
  sets them in each worker of the portable runners (Beam's DaskRunner does not: a DoFn on a dask
  worker then reaches `s3://` without `--s3_endpoint_url`, `--s3_access_key_id`..., and fails with
  "Must provide one of client or options");
- side inputs are dependencies of the consumer's tasks, computed once in the same graph (Beam's
  `DaskBagWindowedIterator` instead computes a side input's whole upstream again, with `list(bag)`,
  inside every task that reads it);
- every PCollection that no transform reads is computed (reduced to an element count per partition,
  so no data travels to the client);
- a transform it cannot translate (Impulse and `beam.io.Read`, which Beam's runner translates to
  no input at all; stateful and splittable DoFns; windows other than the global one) raises
  NotImplementedError, naming it, when the pipeline is submitted.

Two changes of partitioning, which change no result: a Flatten keeps at most as many partitions as
its largest input or the parallelism (one partition per worker thread, or `--dask_npartitions`),
merging them round robin, where Beam's `db.concat` adds them up (the connected-components rounds of
dedup flatten two bags derived from one at each round: 2^16 partitions after 16 rounds); a Reshuffle
spreads a bag of fewer partitions over the parallelism, where Beam's runner keeps the partitions (all
the files of a source were then read and extracted in the one partition of their `Create`).

As in Beam's runner: batch pipelines in the global window only; a GroupByKey groups by dask's
`tokenize` of the key; `PipelineResult.metrics()` raises (the ledger counts what the pipeline writes to
files, not metrics). `tests/pipeline/plumbing/test_dask_runner.py` checks each correction and the whole
`llamapipe run` against DirectRunner.
"""

from __future__ import annotations

import dataclasses
import typing as t

from apache_beam import pvalue
from apache_beam.internal import pickler
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.value_provider import RuntimeValueProvider, ValueProvider
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, Receiver, _OutputHandler
from apache_beam.runners.runner import PipelineRunner
from apache_beam.transforms import core, window
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.utils.windowed_value import WindowedValue

from llamapipe.pipeline.plumbing.runners import close_quietly, local_cluster, local_cluster_workers

try:
    import dask.bag as db
    import distributed
    from apache_beam.runners.dask.dask_runner import DaskOptions, DaskRunnerResult
    from apache_beam.runners.dask.overrides import (
        _Create,
        _Flatten,
        _GroupAlsoByWindow,
        _GroupByKeyOnly,
        _Reshuffle,
        dask_overrides,
    )
    from apache_beam.runners.dask.transform_evaluator import GroupByKey as _GroupByKeyOp
    from apache_beam.runners.dask.transform_evaluator import get_windowed_value
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError as exc:  # pragma: no cover - the dev extra installs dask
    raise ImportError(f"--runner dask needs dask and distributed: pip install 'llamapipe[dask]' ({exc})") \
        from exc

# Elements per dask partition of a Create, as in Beam's runner (whose default logs a warning each time).
CREATE_PARTITION_SIZE = 128


@dataclasses.dataclass
class DaskResult(DaskRunnerResult):
    """Beam's result, which also closes the client, and the LocalCluster it started, when done."""

    cluster: t.Any = None

    def wait_until_finish(self, duration=None) -> str:
        try:
            return super().wait_until_finish(duration)
        finally:
            self.close()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            close_quietly(self.cluster)
            self.cluster = None


class DaskRunner(PipelineRunner):
    """Beam's DaskRunner with a corrected graph translation (see the module docstring)."""

    @staticmethod
    def is_fnapi_compatible():
        return False

    def run_pipeline(self, pipeline, options):
        dask_options = options.view_as(DaskOptions).get_all_options(drop_default=True, current_only=True)
        bag_kwargs = DaskOptions._extract_bag_kwargs(dask_options)
        cluster = None  # a LocalCluster to close when the pipeline is done
        if not dask_options.get("address") and not dask_options.get("scheduler_file"):
            local, owned = local_cluster(local_cluster_workers(options))
            cluster = local if owned else None
            dask_options["address"] = local
        client = None
        try:
            client = distributed.Client(**dask_options)
            pipeline.replace_all(dask_overrides())
            translator = _BagTranslator(bag_kwargs, bag_kwargs.get("npartitions") or _parallelism(client),
                                        _worker_options(options))
            pipeline.visit(translator)
            futures = client.compute(translator.unconsumed())
        except BaseException:
            if client is not None:
                client.close()
            if cluster is not None:
                close_quietly(cluster)
            raise
        return DaskResult(client, futures, cluster)


def _parallelism(client) -> int:
    """Partitions to spread work over (unless `--dask_npartitions` says): one per worker thread, at least
    two. More would balance uneven partitions better, but each partition of each ParDo pays its DoFn's
    unpickling and setup, and each GroupByKey a few tasks per partition."""
    return max(2, sum(client.nthreads().values()))


def _worker_options(options: PipelineOptions) -> dict:
    """The pipeline options a worker needs, as a dict of the values given (a ValueProvider's value when
    it has one, as Beam's portable runners encode them for their SDK harness)."""
    values = {}
    for name, value in options.get_all_options(drop_default=True).items():
        if isinstance(value, ValueProvider):
            if not value.is_accessible():
                continue
            value = value.get()
        if value is not None:
            values[name] = value
    return values


class _BagTranslator(PipelineVisitor):
    """Beam primitives -> dask bags, one bag per PCollection (see the module docstring)."""

    def __init__(self, bag_kwargs: dict, partitions: int, worker_options: dict | None = None):
        self._bag_kwargs = bag_kwargs
        self._worker_options = worker_options or {}  # for the workers' FileSystems (see `_run_bundle`)
        self._partitions = partitions  # what a Reshuffle spreads over, and a Flatten merges down to
        self._bags: dict[int, db.Bag] = {}  # id(PCollection) -> its bag
        self._pcolls: list = []  # the PCollections, so that their ids stay theirs
        self._consumed: set[int] = set()

    def unconsumed(self) -> list[db.Bag]:
        """Every PCollection no transform reads, as a bag of one element count per partition."""
        return [bag.map_partitions(_count) for key, bag in self._bags.items() if key not in self._consumed]

    def _read(self, pcoll) -> db.Bag:
        self._consumed.add(id(pcoll))
        return self._bags[id(pcoll)]

    def _set(self, pcoll, bag: db.Bag) -> None:
        self._pcolls.append(pcoll)
        self._bags[id(pcoll)] = bag

    def visit_transform(self, node: AppliedPTransform) -> None:
        transform = node.transform
        inputs = [self._read(v) for v in node.inputs if not isinstance(v, pvalue.PBegin)]
        output = node.outputs.get(None)
        if isinstance(transform, _Create):
            self._set(output, self._create(transform.values))
        elif isinstance(transform, _GroupByKeyOnly):
            self._set(output, _GroupByKeyOp(node, bag_kwargs=self._bag_kwargs).apply(inputs[0]))
        elif isinstance(transform, _Flatten):
            self._set(output, self._flatten(inputs))
        elif isinstance(transform, _Reshuffle):
            bag = inputs[0]  # spread over the parallelism (Beam's runner: the identity)
            spread = bag.npartitions < self._partitions
            self._set(output, bag.repartition(self._partitions) if spread else bag)
        elif isinstance(transform, _GroupAlsoByWindow):
            self._set(output, inputs[0])  # _GroupByKeyOnly has grouped the values (of the global window)
        elif isinstance(transform, core.WindowInto):
            if not isinstance(transform.get_windowing(None).windowfn, window.GlobalWindows):
                raise NotImplementedError(f"DaskRunner: {node.full_label}: only the global window is "
                                          "supported")
            self._set(output, inputs[0])
        elif isinstance(transform, core.ParDo):
            self._pardo(node, inputs[0])
        else:
            raise NotImplementedError(
                f"DaskRunner: {node.full_label}: {type(transform).__name__} is not supported (Beam's Dask "
                "runner translates Create, ParDo, GroupByKey and Flatten; read files from a Create of "
                "patterns, e.g. beam.Create([pattern]) | beam.io.ReadAllFromParquet())")

    def _flatten(self, inputs: list[db.Bag]) -> db.Bag:
        """The bags one after the other, in at most as many partitions as the largest input or the
        parallelism (a plain concatenation adds partitions: the connected-components rounds, each a
        Flatten of two bags derived from one, would double them at every round)."""
        if not inputs:
            return db.from_sequence([])
        bag = db.concat(inputs)
        limit = max(self._partitions, *(b.npartitions for b in inputs))
        return _interleave(bag, limit) if bag.npartitions > limit else bag

    def _create(self, values) -> db.Bag:
        if self._bag_kwargs.get("npartitions"):
            return db.from_sequence(values, npartitions=self._bag_kwargs["npartitions"])
        return db.from_sequence(values, partition_size=self._bag_kwargs.get("partition_size")
                                or CREATE_PARTITION_SIZE)

    def _pardo(self, node: AppliedPTransform, input_bag: db.Bag) -> None:
        transform = node.transform
        signature = DoFnSignature(transform.fn)
        if signature.is_stateful_dofn() or signature.is_splittable_dofn():
            raise NotImplementedError(
                f"DaskRunner: {node.full_label}: stateful and splittable DoFns are not supported")
        main_input = next(iter(node.main_inputs.values()))
        args, kwargs = transform.raw_side_inputs
        spec = pickler.dumps((transform.fn, list(args), dict(kwargs), main_input.windowing.windowfn,
                              [(type(si), si._view_options()) for si in node.side_inputs], transform.label,
                              self._worker_options))
        tagged = any(tag is not None for tag in node.outputs)
        sides = [self._read(si.pvalue) for si in node.side_inputs]
        bag = _map_partitions_with_sides(input_bag, spec, tagged, sides)
        if not tagged:
            self._set(node.outputs[None], bag)
            return
        for tag, pcoll in node.outputs.items():
            self._set(pcoll, bag.map_partitions(_select, tag))


def _map_partitions_with_sides(input_bag: db.Bag, spec: bytes, tagged: bool, sides: list[db.Bag]) -> db.Bag:
    """`_run_bundle` on each partition of `input_bag`, with the whole of each side bag.

    A task graph written out (dask's documented tuple form), because dask's own ways of passing a
    whole bag to a task (`dask.delayed(list)(bag)`, an Item argument to `map_partitions`) finalize it
    into a renamed copy of its graph: the side input's upstream then runs once more for each reader.
    Here each side bag is gathered by one task whose key depends only on the bag's name, so every
    reader of it shares that task and the upstream runs once."""
    name = f"pardo-{tokenize(input_bag.name, spec, tagged, [side.name for side in sides])}"
    layer = {}
    side_keys = []
    for side in sides:
        key = f"side-input-{tokenize(side.name, side.npartitions)}"
        layer[key] = (_gather, [(side.name, i) for i in range(side.npartitions)])
        side_keys.append(key)
    for i in range(input_bag.npartitions):
        layer[(name, i)] = (_run_bundle, (input_bag.name, i), spec, tagged, *side_keys)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[input_bag, *sides])
    return db.Bag(graph, name, input_bag.npartitions)


def _interleave(bag: db.Bag, n: int) -> db.Bag:
    """`bag` in `n` partitions: partition j gathers partitions j, j + n, j + 2n... (round robin, so that
    the partitions of one input, one source often, spread over all of them)."""
    name = f"interleave-{tokenize(bag.name, n)}"
    layer = {(name, j): (_gather, [(bag.name, i) for i in range(j, bag.npartitions, n)]) for j in range(n)}
    return db.Bag(HighLevelGraph.from_collections(name, layer, dependencies=[bag]), name, n)


def _gather(partitions) -> list:
    return [value for partition in partitions for value in partition]


def _count(partition) -> list[int]:
    return [sum(1 for _ in partition)]


def _select(pairs, tag) -> list:
    return [value for value_tag, value in pairs if value_tag == tag]


class _Collect(Receiver):
    def __init__(self, tag, out: list, tagged: bool):
        self._tag = tag
        self._out = out
        self._tagged = tagged

    def receive(self, windowed_value: WindowedValue) -> None:
        self._out.append((self._tag, windowed_value.value) if self._tagged else windowed_value.value)


class _Receivers(dict):
    """Output tag -> receiver, made on first use (as Beam's runner's OneReceiver)."""

    def __init__(self, out: list, tagged: bool):
        super().__init__()
        self._out = out
        self._tagged = tagged

    def __missing__(self, tag):
        receiver = self[tag] = _Collect(tag, self._out, self._tagged)
        return receiver


def _run_bundle(items, spec: bytes, tagged: bool, *side_values) -> list:
    """One dask partition through a ParDo as one bundle: the outputs of process and finish_bundle, as
    (tag, value) pairs (main output: tag None) when the ParDo has tagged outputs, else the values."""
    # A fresh DoFn per bundle. Safe to unpickle: `spec` is what this pipeline's driver pickled with Beam's
    # pickler (`_pardo`), sent to the workers of the run's own dask cluster, as every Beam runner ships
    # DoFns (and dask its tasks); no parser's output and no input file is in it.
    fn, args, kwargs, window_fn, side_specs, label, options = pickler.loads(spec)
    _use_pipeline_options(options)  # before setup: a DoFn may open files there
    out: list = []
    receivers = _Receivers(out, tagged)
    handler = _OutputHandler(window_fn=window_fn, main_receivers=receivers[None], tagged_receivers=receivers,
                             per_element_output_counter=None, output_batch_converter=None,
                             process_yields_batches=False, process_batch_yields_elements=False)
    side_inputs = [SideInputMap(view_class, view_options, [get_windowed_value(v, window_fn) for v in values])
                   for (view_class, view_options), values in zip(side_specs, side_values, strict=True)]
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(fn), handler, context=DoFnContext(label, state=None), side_inputs=side_inputs,
        input_args=args, input_kwargs=kwargs, user_state_context=None,
        bundle_finalizer_param=core.DoFn.BundleFinalizerParam())
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(get_windowed_value(item, window_fn))
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    return out


_options_in_use: dict | None = None  # the pipeline options this worker process's FileSystems have


def _use_pipeline_options(values: dict) -> None:
    """Give `FileSystems` (and runtime ValueProviders) in this worker the pipeline's options, as Beam's
    SDK harness does when a worker starts (`sdk_worker_main`): `S3FileSystem`, `GCSFileSystem`... take
    their endpoint, credentials and region from them. Only in the process that submits the pipeline
    does `beam.Pipeline` set them; without this, `s3://` fails on a worker ("Must provide one of client
    or options").

    Set again whenever a bundle of a pipeline with other options runs here (a cluster serves pipelines
    one after the other). The setting is per process, as in the SDK harness: a worker with several
    threads running two pipelines with different options at the same time would mix them up."""
    global _options_in_use
    if values == _options_in_use:
        return
    RuntimeValueProvider.set_runtime_options(dict(values))
    FileSystems.set_options(PipelineOptions.from_dictionary(values))
    _options_in_use = dict(values)
