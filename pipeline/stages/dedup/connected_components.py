"""Connected components of a large graph in Beam: alternating large-star / small-star rounds.

The algorithm of Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014). Nodes
are any totally ordered, picklable values; every component ends as a star whose centre is the
component's smallest node, so a caller that orders nodes by "which copy survives" gets the survivor
of every component as its centre. Each star operation is one GroupByKey over the edges, keyed by
node: no step sees more than one node's neighbourhood, so the edges are never gathered on one worker
(the largest group is the largest component's centre, at the end).

Beam graphs are static, so `max_rounds` rounds (a large-star then a small-star each) are unrolled.
Every round counts the nodes that are not yet settled (a node is settled when it is the smallest of
its neighbourhood, or has exactly one neighbour, the smaller one: then every component is a star
around its minimum). Once a round's count is zero, the following rounds route the edges past their
GroupByKeys, so the spare rounds cost a pass-through. A graph still unsettled after the last round
(a chain longer than about 2**max_rounds) is not an error: each node is labelled by the smallest node
of its final neighbourhood, so a component may keep more than one centre (duplicates kept, never a
document lost), and the report says `converged: false` with the count of unsettled nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import AsList

from llamapipe.pipeline.plumbing.bundles import bundle_output

UNSETTLED = "unsettled"


def large_star(node: Any, neighbours: Iterable[Any]) -> tuple[list[tuple[Any, Any]], bool]:
    """Link every larger neighbour of `node` to the smallest node of its closed neighbourhood.

    Returns the new edges and whether `node` was unsettled (see the module docstring)."""
    distinct = set(neighbours)
    distinct.discard(node)
    smallest = min(distinct, default=node)
    smallest = min(smallest, node)
    edges = [(other, smallest) for other in distinct if other > node]
    unsettled = smallest < node and len(distinct) > 1
    return edges, unsettled


def small_star(node: Any, smaller: Iterable[Any]) -> list[tuple[Any, Any]]:
    """Link `node` and its smaller neighbours to the smallest of them."""
    distinct = set(smaller)
    distinct.discard(node)
    if not distinct:
        return []
    smallest = min(distinct)
    distinct.add(node)
    return [(other, smallest) for other in distinct if other != smallest]


def label(node: Any, neighbours: Iterable[Any]) -> tuple[Any, bool]:
    """The centre a node belongs to (itself when it is a centre), and whether it was unsettled."""
    distinct = set(neighbours)
    distinct.discard(node)
    smallest = min(min(distinct, default=node), node)
    return smallest, smallest < node and len(distinct) > 1


def _both_directions(edge: tuple[Any, Any]) -> Iterator[tuple[Any, Any]]:
    u, v = edge
    if u != v:
        yield u, v
        yield v, u


def _larger_first(edge: tuple[Any, Any]) -> Iterator[tuple[Any, Any]]:
    u, v = edge
    if u != v:
        yield (u, v) if u > v else (v, u)


class _CountingDoFn(beam.DoFn):
    """Counts unsettled nodes and emits one count per bundle (UNSETTLED): a few small values that later
    rounds read as a side input. (CombineGlobally would do too, but its default-value machinery costs
    extra stages per round on local runners.)"""

    def start_bundle(self):
        self._unsettled = 0

    def finish_bundle(self):
        if self._unsettled:
            yield beam.pvalue.TaggedOutput(UNSETTLED, bundle_output(self._unsettled))


class _LargeStar(_CountingDoFn):
    def process(self, element):
        node, neighbours = element
        edges, unsettled = large_star(node, neighbours)
        self._unsettled += unsettled
        yield from edges


class _SmallStar(beam.DoFn):
    def process(self, element):
        node, smaller = element
        yield from small_star(node, smaller)


class _Label(_CountingDoFn):
    def process(self, element):
        node, neighbours = element
        centre, unsettled = label(node, neighbours)
        self._unsettled += unsettled
        yield node, centre


class _RouteEdges(beam.DoFn):
    """Edges of a settled graph go past the round ("done"); else into it."""

    def process(self, edge, unsettled_counts: list[int]):
        if sum(unsettled_counts) == 0:
            yield beam.pvalue.TaggedOutput("done", edge)
        else:
            yield edge


class ConnectedComponents(beam.PTransform):
    """Undirected edges (u, v) -> {"labels": (node, centre) for every node of an edge (centres map to
    themselves), "report": one dict {rounds, converged, unsettled_nodes, rounds_until_settled}}.

    `rounds_until_settled` is the number of rounds whose input still had unsettled nodes (the rounds
    after it were pass-throughs), or None when the graph did not settle within `max_rounds`."""

    def __init__(self, max_rounds: int):
        super().__init__()
        if max_rounds < 1:
            raise ValueError("max_rounds must be >= 1")
        self._max_rounds = max_rounds

    def expand(self, edges):
        checks = []
        for r in range(self._max_rounds):
            if checks:
                routed = edges | f"Route{r}" >> beam.ParDo(
                    _RouteEdges(), unsettled_counts=AsList(checks[-1])
                ).with_outputs("done", main="work")
                work, done = routed.work, routed.done
            else:
                work, done = edges, None
            large = (
                work
                | f"LargeStarKeys{r}" >> beam.FlatMap(_both_directions)
                | f"LargeStarGroup{r}" >> beam.GroupByKey()
                | f"LargeStar{r}" >> beam.ParDo(_LargeStar()).with_outputs(UNSETTLED, main="edges")
            )
            checks.append(large[UNSETTLED])
            small = (
                large.edges
                | f"SmallStarKeys{r}" >> beam.FlatMap(_larger_first)
                | f"SmallStarGroup{r}" >> beam.GroupByKey()
                | f"SmallStar{r}" >> beam.ParDo(_SmallStar())
            )
            edges = (small, done) | f"RoundEdges{r}" >> beam.Flatten() if done is not None else small
        labelled = (
            edges
            | "LabelKeys" >> beam.FlatMap(_both_directions)
            | "LabelGroup" >> beam.GroupByKey()
            | "Label" >> beam.ParDo(_Label()).with_outputs(UNSETTLED, main="labels")
        )
        side_inputs = {f"round{r}": AsList(check) for r, check in enumerate(checks)}
        report = (
            edges.pipeline
            | "ReportSeed" >> beam.Create([None])
            | "Report" >> beam.Map(_report, AsList(labelled[UNSETTLED]), **side_inputs)
        )
        return {"labels": labelled.labels, "report": report}


def _report(_, unsettled_at_end: list[int], **rounds: list[int]) -> dict:
    active = [int(name[len("round"):]) for name, counts in rounds.items() if sum(counts) > 0]
    converged = sum(unsettled_at_end) == 0
    return {
        "rounds": len(rounds),
        "converged": converged,
        "unsettled_nodes": sum(unsettled_at_end),
        "rounds_until_settled": (max(active) + 1 if active else 0) if converged else None,
    }
