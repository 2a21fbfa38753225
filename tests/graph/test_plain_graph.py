"""The compiler's graph code without networkx gives what networkx gives: the same cycles,
the same reachability, the same transitive needs and, replayed, the same MultiDiGraph."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from tars.graph.compile import Recorded
from tars.graph.planner import needs_closure
from tars.graph.walks import reachable, simple_cycles

NAMES = st.sampled_from([f"t{i}" for i in range(7)])
EDGES = st.lists(st.tuples(NAMES, NAMES).filter(lambda e: e[0] != e[1]), max_size=20)


def _adjacency(edges: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for u, v in edges:
        out.setdefault(u, []).append(v)
    return out


def _rotated(cycle: list[str]) -> tuple[str, ...]:
    i = cycle.index(min(cycle))
    return tuple(cycle[i:] + cycle[:i])


@settings(max_examples=200, deadline=None)
@given(EDGES)
def test_simple_cycles_are_networkx_s(edges: list[tuple[str, str]]) -> None:
    ours = simple_cycles(_adjacency(edges))
    theirs = nx.simple_cycles(nx.DiGraph(edges))
    assert sorted(map(tuple, ours)) == sorted(map(_rotated, theirs))
    assert all(c[0] == min(c) for c in ours)
    assert len(set(map(tuple, ours))) == len(ours)


@settings(max_examples=200, deadline=None)
@given(EDGES, NAMES)
def test_reachable_is_descendants_and_the_start(edges: list[tuple[str, str]], start: str) -> None:
    graph = nx.DiGraph(edges)
    graph.add_node(start)
    assert reachable(_adjacency(edges), start) == nx.descendants(graph, start) | {start}


@settings(max_examples=200, deadline=None)
@given(EDGES)
def test_needs_closure_is_networkx_descendants(edges: list[tuple[str, str]]) -> None:
    needs = _adjacency(edges)
    graph = nx.DiGraph()
    for tool, direct in needs.items():
        graph.add_node(tool)
        graph.add_edges_from((tool, need) for need in direct)
    closure = needs_closure(needs)
    assert list(closure) == list(graph.nodes)
    assert closure == {tool: frozenset(nx.descendants(graph, tool)) for tool in graph.nodes}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), NAMES, NAMES, st.sampled_from(["grants", "needs", "uses"])), max_size=25))
def test_a_replayed_record_is_the_graph_built_directly(ops: list[tuple[bool, str, str, str]]) -> None:
    record, direct = Recorded(), nx.MultiDiGraph()
    for is_node, u, v, kind in ops:
        if is_node:
            record.add_node(u, kind=kind, other=v)
            direct.add_node(u, kind=kind, other=v)
        else:
            record.add_edge(u, v, kind=kind)
            direct.add_edge(u, v, kind=kind)
    replayed = record.to_networkx()
    assert nx.is_frozen(replayed)
    assert list(replayed.nodes(data=True)) == list(direct.nodes(data=True))
    assert list(replayed.edges(keys=True, data=True)) == list(direct.edges(keys=True, data=True))
    for node in direct.nodes:
        for kind in ("grants", "needs"):
            expected = [t for _, t, k in direct.out_edges(node, data="kind") if k == kind]
            assert record.successors(node, kind) == expected


def test_the_example_project_s_graph_is_built_on_first_use(example_project: Path) -> None:
    from tars.loading import load_project

    project = load_project(example_project)
    assert project.deferred._graph is None, "compiling built the networkx graph up front"
    graph = project.graph
    assert nx.is_frozen(graph) and graph.number_of_nodes() > 0
    assert project.graph is graph
