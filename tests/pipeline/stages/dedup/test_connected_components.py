"""Distributed connected components: every component ends as a star around its smallest node."""

import random

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.stages.dedup.connected_components import ConnectedComponents


def reference_components(edges) -> dict:
    """node -> smallest node of its component (plain union-find, for comparison)."""
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        a, b = find(u), find(v)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {node: find(node) for node in parent}


def check_report(expected: dict):
    def check(reports):
        assert len(reports) == 1
        for key, value in expected.items():
            assert reports[0][key] == value, (key, reports[0])
    return check


def test_a_long_chain_in_worst_order_ends_as_one_star():
    # labels increasing along the path: the order that needs the most rounds
    edges = [(i, i + 1) for i in range(63)]
    with TestPipeline() as p:
        out = p | beam.Create(edges) | ConnectedComponents(max_rounds=10)
        assert_that(out["labels"], equal_to([(i, 0) for i in range(64)]), label="labels")
        assert_that(out["report"], check_report({"converged": True, "unsettled_nodes": 0}), label="report")


def test_random_graph_matches_union_find_and_spare_rounds_pass_through():
    rng = random.Random(7)
    nodes = [f"doc{i:03d}" for i in range(300)]
    rng.shuffle(nodes)
    groups = [nodes[i:i + rng.randint(2, 30)] for i in range(0, 300, 30)]
    edges = []
    for group in groups:
        for i in range(1, len(group)):  # a random spanning tree plus some extra edges per group
            edges.append((group[i], group[rng.randrange(i)]))
        edges += [(rng.choice(group), rng.choice(group)) for _ in range(len(group) // 3)]
    expected = reference_components(edges)

    def settled_early(reports):
        assert reports[0]["converged"] and 1 <= reports[0]["rounds_until_settled"] < 12, reports

    with TestPipeline() as p:
        out = p | beam.Create(edges) | ConnectedComponents(max_rounds=12)
        assert_that(out["labels"], equal_to(sorted(expected.items())), label="labels")
        assert_that(out["report"], settled_early, label="report")


def test_too_few_rounds_keep_extra_centres_but_never_cross_components():
    edges = [(i, i + 1) for i in range(99)] + [(1000 + i, 1001 + i) for i in range(20)]
    truth = reference_components(edges)

    def safe(labels):
        labels = dict(labels)
        assert set(labels) == set(truth)
        centres = {c for c in labels.values()}
        assert {0, 1000} <= centres  # every component keeps its true minimum
        assert len(centres) > 2  # unsettled: some components still have several centres
        for node, centre in labels.items():
            assert truth[centre] == truth[node] and centre <= node

    with TestPipeline() as p:
        out = p | beam.Create(edges) | ConnectedComponents(max_rounds=2)
        assert_that(out["labels"], safe, label="labels")
        assert_that(out["report"], check_report({"converged": False, "rounds_until_settled": None}),
                    label="report")
