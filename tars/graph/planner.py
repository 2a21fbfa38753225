"""The task planner: run a batch of tool calls in the order the graph demands.

When the model asks for several tools at once, it lists them in whatever order it likes.
The tools' ``needs:`` edges say which outputs feed which calls, so:

* a call runs after every call in the batch whose tool it needs, directly or through
  other tools (``needs`` is transitive);
* calls that do not depend on each other run concurrently;
* ties keep the order the model asked in;
* each call receives the results of the calls it needs;
* a call whose prerequisite failed is skipped, with a reason, instead of running on
  missing data.

The seed's example: ``[send_to_n8n, make_goal_call, lookup_contact]`` runs as
lookup_contact, then make_goal_call, then send_to_n8n with the call's result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tars.graph.walks import reachable
from tars.tools.call import ToolCall


@dataclass(frozen=True)
class Outcome:
    """What became of one call: its result, or why it failed or was skipped."""

    call: ToolCall
    result: Any = None
    error: str | None = None
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


Upstream = Mapping[str, Any]  # tool name -> result of the calls it needs in this batch
Execute = Callable[[ToolCall, Upstream], Awaitable[Any]]


def needs_closure(needs: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Every tool's transitive needs, from its direct ``needs:`` lists (a tool is never its
    own need, even in a cycle). Plain Python: compiling a project imports no networkx."""
    direct = {tool: list(wanted) for tool, wanted in needs.items()}
    tools = dict.fromkeys(n for tool, wanted in direct.items() for n in (tool, *wanted))  # first-seen order
    return {tool: frozenset(reachable(direct, tool) - {tool}) for tool in tools}


def dependencies(calls: Sequence[ToolCall], closure: Mapping[str, frozenset[str]]) -> Any:
    """A DAG over call indexes: an edge i → j when call j needs call i's tool."""
    import networkx as nx

    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(calls)))
    for j, later in enumerate(calls):
        wanted = closure.get(later.name, frozenset())
        for i, earlier in enumerate(calls):
            if i != j and earlier.name in wanted:
                dag.add_edge(i, j)
    return dag


def plan(calls: Sequence[ToolCall], closure: Mapping[str, frozenset[str]]) -> list[list[ToolCall]]:
    """Stages of calls: every call in a stage may run together; ties keep the asked order."""
    import networkx as nx

    dag = dependencies(calls, closure)
    if not nx.is_directed_acyclic_graph(dag):  # the compiler rejects needs-cycles; be safe anyway
        return [[call] for call in calls]
    return [[calls[i] for i in sorted(stage)] for stage in nx.topological_generations(dag)]


def order(calls: Sequence[ToolCall], closure: Mapping[str, frozenset[str]]) -> list[ToolCall]:
    """The calls flattened into one sequential order (stable topological order)."""
    import networkx as nx

    dag = dependencies(calls, closure)
    return [calls[i] for i in nx.lexicographical_topological_sort(dag)]


async def run(
    calls: Sequence[ToolCall],
    closure: Mapping[str, frozenset[str]],
    execute: Execute,
) -> list[Outcome]:
    """Run the batch: each call starts as soon as the calls it needs have finished.

    Returns one Outcome per call, in the order the calls were asked for (the model
    matches responses to its calls by id, and reads them in that order).
    """
    import asyncio

    import networkx as nx

    dag = dependencies(calls, closure)
    if not nx.is_directed_acyclic_graph(dag):
        dag = nx.DiGraph()
        dag.add_nodes_from(range(len(calls)))
        dag.add_edges_from((i, i + 1) for i in range(len(calls) - 1))
    tasks: dict[int, asyncio.Task[Outcome]] = {}

    async def one(index: int) -> Outcome:
        call = calls[index]
        upstream: dict[str, Any] = {}
        for before in sorted(dag.predecessors(index)):
            done = await tasks[before]
            if not done.ok:
                return Outcome(call, error=f"skipped: {done.call.name} failed ({done.error})", skipped=True)
            upstream[done.call.name] = done.result
        try:
            return Outcome(call, result=await execute(call, upstream))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a tool's failure is a result for the model, not a crash
            return Outcome(call, error=f"{type(exc).__name__}: {exc}")

    for index in nx.lexicographical_topological_sort(dag):
        tasks[index] = asyncio.ensure_future(one(index))
    try:
        await asyncio.gather(*tasks.values())
    finally:
        for task in tasks.values():
            task.cancel()
    return [tasks[i].result() for i in range(len(calls))]
