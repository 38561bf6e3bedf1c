"""Duplicate clusters, counted in the pipeline: statistics for the ledger and example clusters to read.

A cluster is a kept document with every document dropped as its duplicate: the exact copies of each
member and the members of its near-duplicate component. Counted as ordinary PCollections (exact on
every runner): clusters, documents in them, a size histogram, the largest, pairs of documents from
two different sources that ended in one cluster ("c4~commoncrawl": n), the pairs the LSH buckets
compared and confirmed (book pairs apart) and how the connected components converged. Written as
one JSON line (`OUT/_work/dedup/stats.json`), merged by `llamapipe run` into `OUT/ledger.json`
under "dedup".

Example clusters (`dedup.examples` of them, near-duplicate clusters first, then chosen by a stable
hash of the survivor's id) are written with their members' texts and each member's true Jaccard
similarity to the survivor to `OUT/dedup/examples.jsonl`, read by `llamapipe inspect OUT --dups`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import zlib

import apache_beam as beam
from apache_beam.pvalue import AsList

from llamapipe.pipeline.config import DedupConfig
from llamapipe.pipeline.plumbing.bundles import bundle_output
from llamapipe.pipeline.stages.dedup.fingerprints import lsh_params, node_id, node_source, node_tag, shingles
from llamapipe.tokenizer.format import storage

MEMBERS_PER_EXAMPLE = 5
EXAMPLE_TEXT_CHARS = 20_000


def size_bucket(size: int) -> str:
    """2, 3 and 4 on their own, then powers of two: "5-8", "9-16", ..."""
    if size <= 4:
        return str(size)
    upper = 8
    while size > upper:
        upper *= 2
    return f"{upper // 2 + 1}-{upper}"


def _bucket_order(bucket: str) -> int:
    return int(bucket.split("-")[0])


def cross_source_pairs(per_source: dict[str, int]) -> dict[str, int]:
    """Pairs of documents of one cluster that come from two different sources, per source pair."""
    names = sorted(per_source)
    return {f"{a}~{b}": per_source[a] * per_source[b]
            for i, a in enumerate(names) for b in names[i + 1:]}


def _membership(element):
    """(node, {labels: [centre]?, exact: [copies per source]?, copies: [1]?}) -> (centre, (node, copies,
    in_near)). An exact copy is counted in its text's group only (one can reach the near-duplicate graph
    from an LSH bucket too large to set its copies aside)."""
    node, grouped = element
    if any(True for _ in grouped["copies"]):
        return
    labels, exact = list(grouped["labels"]), list(grouped["exact"])
    centre = labels[0] if labels else node
    copies = exact[0] if exact else {node_source(node): 1}
    yield centre, (node, copies, bool(labels))


def _add_counts(target: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    for source, count in more.items():
        target[source] = target.get(source, 0) + count
    return target


class _ClusterCombine(beam.CombineFn):
    """(copies per source, near member?) of a cluster's members -> ({source: documents}, near members)."""

    def create_accumulator(self):
        return {}, 0

    def add_input(self, acc, value):
        copies, in_near = value
        return _add_counts(acc[0], copies), acc[1] + int(in_near)

    def merge_accumulators(self, accs):
        counts, near = {}, 0
        for c, n in accs:
            _add_counts(counts, c)
            near += n
        return counts, near

    def extract_output(self, acc):
        return acc


class ClusterStats(beam.CombineFn):
    """(centre, ({source: documents}, near members)) of every cluster -> the statistics dict."""

    def create_accumulator(self):
        return {"clusters": 0, "documents": 0, "largest": 0, "near_clusters": 0,
                "multi_source_clusters": 0, "size_histogram": {}, "cross_source_pairs": {},
                "documents_by_source": {}}

    def add_input(self, acc, element):
        _, (per_source, near_members) = element
        size = sum(per_source.values())
        acc["clusters"] += 1
        acc["documents"] += size
        acc["largest"] = max(acc["largest"], size)
        acc["near_clusters"] += int(near_members > 1)
        acc["multi_source_clusters"] += int(len(per_source) > 1)
        bucket = size_bucket(size)
        acc["size_histogram"][bucket] = acc["size_histogram"].get(bucket, 0) + 1
        _add_counts(acc["cross_source_pairs"], cross_source_pairs(per_source))
        _add_counts(acc["documents_by_source"], per_source)
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for acc in accs:
            for key in ("clusters", "documents", "near_clusters", "multi_source_clusters"):
                out[key] += acc[key]
            out["largest"] = max(out["largest"], acc["largest"])
            for key in ("size_histogram", "cross_source_pairs", "documents_by_source"):
                _add_counts(out[key], acc[key])
        return out

    def extract_output(self, acc):
        acc = dict(acc)
        acc["duplicates_dropped"] = acc["documents"] - acc["clusters"]
        histogram, pairs = acc["size_histogram"], acc["cross_source_pairs"]
        acc["size_histogram"] = dict(sorted(histogram.items(), key=lambda kv: _bucket_order(kv[0])))
        acc["cross_source_pairs"] = dict(sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])))
        acc["documents_by_source"] = dict(sorted(acc["documents_by_source"].items()))
        return acc


class PartialCombine(beam.DoFn):
    """A CombineFn's accumulator per bundle (emitted at the bundle's end): a handful of values a later
    step merges from a side input. Cheaper on local runners than CombineGlobally, whose default-value
    handling adds stages."""

    def __init__(self, combine_fn: beam.CombineFn):
        self._fn = combine_fn

    def start_bundle(self):
        self._acc = None

    def process(self, element):
        if self._acc is None:
            self._acc = self._fn.create_accumulator()
        self._acc = self._fn.add_input(self._acc, element)

    def finish_bundle(self):
        if self._acc is not None:
            yield bundle_output(self._acc)


def merged(combine_fn: beam.CombineFn, partials: list):
    return combine_fn.extract_output(combine_fn.merge_accumulators(
        [combine_fn.create_accumulator(), *partials]))


class TopExamples(beam.CombineFn):
    """The `count` best clusters by _example_rank (as Top.Of, kept as a CombineFn for PartialCombine)."""

    def __init__(self, count: int):
        self._count = count

    def create_accumulator(self):
        return []

    def add_input(self, acc, element):
        acc.append((_example_rank(element), element))
        if len(acc) > 4 * self._count:
            acc = heapq.nlargest(self._count, acc, key=lambda ranked: ranked[0])
        return acc

    def merge_accumulators(self, accs):
        return heapq.nlargest(self._count, itertools.chain(*accs), key=lambda ranked: ranked[0])

    def extract_output(self, acc):
        return [element for _, element in heapq.nlargest(self._count, acc, key=lambda ranked: ranked[0])]


def final_stats(_, options: DedupConfig, clusters: list, pairs: list, components: list) -> dict:
    stats = {"scope": options.scope, "exact": options.exact, "near": options.near,
             **merged(ClusterStats(), clusters)}
    if options.near:
        bands, rows = lsh_params(options.threshold, options.num_perm, *options.lsh_weights)
        columns = list(zip((0, 0, 0, 0), *pairs, strict=True))
        compared, book_pairs, other_pairs = (sum(column) for column in columns[:3])
        stats["lsh"] = {"num_perm": options.num_perm, "bands": bands, "rows": rows,
                        "threshold": options.threshold, "book_threshold": options.book_threshold,
                        "pairs_compared": compared, "pairs_confirmed": book_pairs + other_pairs,
                        "book_pairs_confirmed": book_pairs, "largest_bucket": max(columns[3])}
        stats["components"] = components[0] if components else None
    return stats


def _example_rank(element) -> tuple:
    """Near-duplicate clusters first, then a stable pseudo-random order of survivors."""
    centre, (per_source, near_members) = element
    return near_members > 1, zlib.crc32(node_id(centre).encode("utf-8"))


class _OfChosen(beam.DoFn):
    """Cluster members -> (centre, (node, copies)) for the clusters chosen as examples."""

    def __init__(self, count: int):
        self._count = count

    def process(self, element, partials: list):
        if getattr(self, "_partials", None) is not partials:
            self._partials = partials
            self._chosen = {centre for centre, _ in merged(TopExamples(self._count), partials)}
        centre, (node, copies, _) = element
        if centre in self._chosen:
            yield centre, (node, copies)


class _BuildExample(beam.DoFn):
    def __init__(self, shingle_words: int):
        self._n = shingle_words

    def process(self, element):
        centre_id, members = element
        members = sorted(members, key=lambda m: (m[0]["id"] != centre_id, m[0]["id"]))
        survivor_shingles = shingles(members[0][0]["text"], self._n)
        rows = []
        for doc, copies in members:
            grams = shingles(doc["text"], self._n)
            union = len(grams | survivor_shingles)
            rows.append({
                "id": doc["id"], "source": doc["source"], "survivor": doc["id"] == centre_id,
                "chars": len(doc["text"]), "exact_copies": sum(copies.values()) - 1,
                "copies_by_source": copies,
                "jaccard_to_survivor": round(len(grams & survivor_shingles) / union, 4) if union else 1.0,
                "text": doc["text"][:EXAMPLE_TEXT_CHARS],
            })
        yield {"survivor": centre_id, "members": rows}


class ClusterReport(beam.PTransform):
    """{"labels": (node, centre) of the near-duplicate components, "exact": (survivor node, {source:
    copies}) of each exact group, "copies": (node, 1) of each exact copy} -> {"stats": one dict,
    "example_members": (file tag, (document id, (survivor id, its exact copies per source))) for up to
    MEMBERS_PER_EXAMPLE members of each example cluster}.

    `pair_counts`: per-bundle (compared, book pairs, other pairs, largest bucket) of the LSH buckets;
    `cc_report`: the components' report (both None without near dedup)."""

    def __init__(self, options: DedupConfig, pair_counts=None, cc_report=None):
        super().__init__()
        self._options = options
        self._pair_counts = pair_counts
        self._cc_report = cc_report

    def expand(self, graph):
        o = self._options
        nothing = graph["labels"] | "Nothing" >> beam.FlatMap(lambda _: [])
        membership = graph | "JoinMembers" >> beam.CoGroupByKey() | "Membership" >> beam.FlatMap(_membership)
        clusters = (
            membership
            | "MemberCounts" >> beam.MapTuple(lambda centre, m: (centre, (m[1], m[2])))
            | "PerCluster" >> beam.CombinePerKey(_ClusterCombine())
        )
        partial_stats = clusters | "PartialStats" >> beam.ParDo(PartialCombine(ClusterStats()))
        stats = (
            graph["labels"].pipeline
            | "StatsSeed" >> beam.Create([None])
            | "Stats" >> beam.Map(
                final_stats, o, AsList(partial_stats),
                AsList(self._pair_counts if self._pair_counts is not None else nothing),
                AsList(self._cc_report if self._cc_report is not None else nothing))
        )
        if o.examples == 0:
            return {"stats": stats, "example_members": nothing}
        chosen = clusters | "ChooseExamples" >> beam.ParDo(PartialCombine(TopExamples(o.examples)))
        members = (
            membership
            | "OfChosen" >> beam.ParDo(_OfChosen(o.examples), AsList(chosen))
            | "FirstMembers" >> beam.combiners.Top.SmallestPerKey(MEMBERS_PER_EXAMPLE)
            | "MemberIds" >> beam.FlatMapTuple(
                lambda centre, nodes: [(node_tag(node), (node_id(node), (node_id(centre), copies)))
                                       for node, copies in nodes])
        )
        return {"stats": stats, "example_members": members}


class ExampleClusters(beam.PTransform):
    """(survivor id, (document, copies)) of the example members -> one record per example cluster."""

    def __init__(self, shingle_words: int):
        super().__init__()
        self._n = shingle_words

    def expand(self, example_docs):
        return (
            example_docs
            | "GroupExamples" >> beam.GroupByKey()
            | "BuildExamples" >> beam.ParDo(_BuildExample(self._n))
        )


class WriteDedupReport(beam.PTransform):
    """Deduplicate's "stats" and "examples" -> `stats_path` (one JSON line) and `examples_path`."""

    def __init__(self, stats_path: str, examples_path: str):
        super().__init__()
        self._stats_path = stats_path
        self._examples_path = examples_path

    def expand(self, deduped):
        (
            deduped["stats"]
            | "StatsToJson" >> beam.Map(lambda s: json.dumps(s, sort_keys=True))
            | "WriteStats" >> beam.io.WriteToText(self._stats_path, shard_name_template="")
        )
        return (
            deduped["examples"]
            | "ExamplesToJson" >> beam.Map(lambda e: json.dumps(e, ensure_ascii=False, sort_keys=True))
            | "WriteExamples" >> beam.io.WriteToText(self._examples_path, shard_name_template="")
        )


def read_dedup_stats(path: str) -> dict | None:
    """The stats line written by WriteDedupReport (None when the run wrote none)."""
    if not storage.is_file(path):
        return None
    lines = [line for line in storage.read_text(path).splitlines() if line.strip()]
    return json.loads(lines[0]) if lines else None


def format_dedup_summary(stats: dict | None) -> str:
    if not stats:
        return "dedup: no statistics"
    lines = [f"dedup ({stats['scope']}): {stats['clusters']} clusters hold {stats['documents']} documents, "
             f"{stats['duplicates_dropped']} dropped as duplicates; largest cluster {stats['largest']}"]
    if stats["size_histogram"]:
        lines.append("  cluster sizes: " + ", ".join(f"{k}: {v}" for k, v in stats["size_histogram"].items()))
    if stats["cross_source_pairs"]:
        lines.append("  cross-source pairs: " + ", ".join(
            f"{k} {v}" for k, v in list(stats["cross_source_pairs"].items())[:8]))
    components = stats.get("components")
    if components and not components["converged"]:
        lines.append(f"  WARNING: connected components did not settle in {components['rounds']} rounds "
                     f"({components['unsettled_nodes']} nodes unsettled): some duplicates were kept; "
                     "raise dedup.max_rounds")
    return "\n".join(lines)
