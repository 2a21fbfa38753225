"""The task planner: the model's batch of tool calls, run in the order the graph demands."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from tars.graph.planner import needs_closure, order, plan, run
from tars.loading import load_project
from tars.tools.call import ToolCall

SEED_NEEDS = {
    "lookup_contact": [],
    "make_goal_call": ["lookup_contact"],
    "send_to_n8n": ["lookup_contact", "make_goal_call"],
}


def calls(*names: str) -> list[ToolCall]:
    return [ToolCall(f"fc-{i}", name, {"n": i}) for i, name in enumerate(names)]


def names(stages: list[list[ToolCall]]) -> list[list[str]]:
    return [[c.name for c in stage] for stage in stages]


def test_seed_example_runs_lookup_then_call_then_n8n() -> None:
    batch = calls("send_to_n8n", "make_goal_call", "lookup_contact")
    assert names(plan(batch, needs_closure(SEED_NEEDS))) == [["lookup_contact"], ["make_goal_call"], ["send_to_n8n"]]


def test_seed_example_with_the_shipped_project() -> None:
    project = load_project()
    batch = calls("send_to_n8n", "make_goal_call", "lookup_contact")
    assert [c.name for c in order(batch, project.needs)] == ["lookup_contact", "make_goal_call", "send_to_n8n"]


def test_ties_keep_the_order_the_model_asked_in() -> None:
    closure = needs_closure({"a": [], "b": [], "c": []})
    assert names(plan(calls("c", "a", "b"), closure)) == [["c", "a", "b"]]
    assert [c.name for c in order(calls("c", "a", "b"), closure)] == ["c", "a", "b"]


def test_needs_are_transitive_even_when_the_middle_tool_is_absent() -> None:
    closure = needs_closure({"send_to_n8n": ["make_goal_call"], "make_goal_call": ["lookup_contact"]})
    assert names(plan(calls("send_to_n8n", "lookup_contact"), closure)) == [["lookup_contact"], ["send_to_n8n"]]


def test_repeated_calls_of_one_tool_are_independent() -> None:
    closure = needs_closure(SEED_NEEDS)
    stages = plan(calls("make_goal_call", "lookup_contact", "lookup_contact"), closure)
    assert names(stages) == [["lookup_contact", "lookup_contact"], ["make_goal_call"]]


async def test_independent_calls_run_concurrently() -> None:
    closure = needs_closure({"a": [], "b": [], "c": ["a", "b"]})
    both_started = asyncio.Event()
    started: list[str] = []

    async def execute(call: ToolCall, upstream: Mapping[str, Any]) -> str:
        started.append(call.name)
        if call.name in ("a", "b"):
            if len(started) == 2:
                both_started.set()
            # Each of a and b waits for the other to have started: only concurrency gets past this.
            await asyncio.wait_for(both_started.wait(), timeout=5)
        return call.name.upper()

    outcomes = await run(calls("c", "a", "b"), closure, execute)
    assert [o.result for o in outcomes] == ["C", "A", "B"]
    assert started[-1] == "c"


async def test_outputs_pass_to_the_calls_that_need_them() -> None:
    seen: dict[str, Mapping[str, Any]] = {}

    async def execute(call: ToolCall, upstream: Mapping[str, Any]) -> dict[str, Any]:
        seen[call.name] = dict(upstream)
        if call.name == "lookup_contact":
            return {"phone": "+442079460123"}
        if call.name == "make_goal_call":
            return {"call": "CA1", "dialled": upstream["lookup_contact"]["phone"]}
        return {"sent": True}

    outcomes = await run(calls("send_to_n8n", "make_goal_call", "lookup_contact"), needs_closure(SEED_NEEDS), execute)
    assert [o.call.id for o in outcomes] == ["fc-0", "fc-1", "fc-2"]  # answered in the order asked
    assert seen["lookup_contact"] == {}
    assert seen["make_goal_call"] == {"lookup_contact": {"phone": "+442079460123"}}
    assert seen["send_to_n8n"]["make_goal_call"] == {"call": "CA1", "dialled": "+442079460123"}


async def test_a_failed_prerequisite_skips_its_dependents_with_a_reason() -> None:
    async def execute(call: ToolCall, upstream: Mapping[str, Any]) -> str:
        if call.name == "lookup_contact":
            raise LookupError("no contact named Helen")
        return "ran"

    outcomes = await run(
        calls("make_goal_call", "lookup_contact", "current_time"),
        needs_closure(SEED_NEEDS | {"current_time": []}),
        execute,
    )
    by_name = {o.call.name: o for o in outcomes}
    assert by_name["lookup_contact"].error == "LookupError: no contact named Helen"
    assert by_name["make_goal_call"].skipped
    assert "lookup_contact failed" in (by_name["make_goal_call"].error or "")
    assert by_name["current_time"].result == "ran"


def test_empty_batch() -> None:
    assert plan([], {}) == []
    assert asyncio.run(run([], {}, lambda c, u: asyncio.sleep(0))) == []


@pytest.mark.parametrize("batch", [["a"], ["b", "a"], ["a", "b", "a"]])
def test_every_call_is_planned_exactly_once(batch: list[str]) -> None:
    stages = plan(calls(*batch), needs_closure({"a": [], "b": ["a"]}))
    assert sorted(c.id for stage in stages for c in stage) == sorted(c.id for c in calls(*batch))
