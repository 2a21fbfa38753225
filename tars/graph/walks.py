"""Walks over small directed graphs given as adjacency mappings: what a path reaches, and
the cycles. Plain Python, so the task planner and the compiler share them without networkx."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def reachable(edges: Mapping[str, Iterable[str]], start: str) -> set[str]:
    """Every node a path leads to from ``start``, ``start`` included."""
    seen = {start}
    stack = [start]
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def simple_cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every elementary cycle of a small directed graph (no self-loops), each once, starting
    at its least node: from each node, paths through greater nodes only that lead back to it
    (a branch that cannot lead back is never followed)."""
    targets = {u: sorted(set(vs)) for u, vs in edges.items()}
    cycles: list[list[str]] = []
    for start in sorted(set(targets) | {v for vs in targets.values() for v in vs}):
        back: dict[str, list[str]] = {}  # reversed edges among the nodes from ``start`` up
        for u, vs in targets.items():
            for v in vs:
                if u >= start and v >= start:
                    back.setdefault(v, []).append(u)
        _cycles_from(targets, start, reachable(back, start), [start], cycles)
    return cycles


def _cycles_from(
    targets: Mapping[str, list[str]], start: str, returns: set[str], path: list[str], cycles: list[list[str]]
) -> None:
    for nxt in targets.get(path[-1], ()):
        if nxt == start:
            cycles.append(list(path))
        elif nxt > start and nxt in returns and nxt not in path:
            path.append(nxt)
            _cycles_from(targets, start, returns, path, cycles)
            path.pop()
