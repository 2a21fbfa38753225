"""The tool gate on its own: the second check on every tool call, with a recording of each."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tars.calls.gate import ToolGate
from tars.loading import load_project
from tars.project import Project
from tars.tools.call import ToolCall


class Notebook:
    """Records invocations the way the CallRecorder would (our own seam, not an SDK)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def tool_invocation(self, tool: str, arguments: Mapping[str, Any], **kw: Any) -> None:
        self.rows.append({"tool": tool, "arguments": dict(arguments), **kw})


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project()


def gate(project: Project, role: str, run: Any, notebook: Notebook, **kw: Any) -> ToolGate:
    return ToolGate(project, role, project.roles[role].tools, run, notebook, **kw)


async def test_a_tool_outside_the_role_is_refused_and_recorded(project: Project) -> None:
    ran: list[str] = []

    async def run(call: ToolCall, upstream: Mapping[str, Any]) -> dict[str, Any]:
        ran.append(call.name)
        return {}

    notebook = Notebook()
    results = await gate(project, "unknown", run, notebook).run_batch([ToolCall("1", "list_contacts", {})])
    assert results == [{"refused": "'list_contacts' is not available to the unknown role on this call"}]
    assert ran == []
    assert notebook.rows[0]["allowed"] is False and notebook.rows[0]["tool"] == "list_contacts"


async def test_an_invented_tool_is_refused(project: Project) -> None:
    notebook = Notebook()
    results = await gate(project, "owner", None, notebook).run_batch([ToolCall("1", "transfer_money", {"to": "me"})])
    assert "not available" in results[0]["refused"]


async def test_arguments_are_checked_against_the_tool_schema(project: Project) -> None:
    notebook = Notebook()
    results = await gate(project, "owner", None, notebook).run_batch(
        [ToolCall("1", "cancel_reminder", {"id": "seven"}), ToolCall("2", "create_reminder", {"text": "x"})]
    )
    assert results[0]["refused"].startswith("invalid arguments: id: ")
    assert "'when'" in results[1]["refused"]
    assert [r["allowed"] for r in notebook.rows] == [False, False]


async def test_a_step_policy_can_refuse(project: Project) -> None:
    notebook = Notebook()

    async def run(call: ToolCall, upstream: Mapping[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    g = gate(
        project,
        "delegate",
        run,
        notebook,
        step_policy=lambda name: None if name == "current_time" else "not in this step",
    )
    results = await g.run_batch([ToolCall("1", "end_call", {}), ToolCall("2", "current_time", {})])
    assert results == [{"refused": "not in this step"}, {"ok": True}]


async def test_slow_tools_time_out_failures_become_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tars.scenarios.line import make_project

    short = ("tars.yaml", "    current_time: true\n", "    current_time: {timeout_seconds: 0.05}\n")
    project = make_project(tmp_path / "p", monkeypatch, [short])
    assert project.tools["current_time"].timeout_seconds == 0.05
    notebook = Notebook()

    async def run(call: ToolCall, upstream: Mapping[str, Any]) -> dict[str, Any]:
        if call.name == "current_time":
            await asyncio.sleep(5)
        raise LookupError("no such contact")

    results = await gate(project, "owner", run, notebook).run_batch(
        [ToolCall("1", "current_time", {}), ToolCall("2", "lookup_contact", {"name": "Zed"})]
    )
    assert results[0] == {"error": "current_time took too long and was stopped"}
    assert results[1] == {"error": "LookupError: no such contact"}
    assert [r["allowed"] for r in notebook.rows] == [True, True]
    notebook.rows.sort(key=lambda r: r["tool"])
    assert notebook.rows[0]["reason"] == "current_time took too long and was stopped"


async def test_batches_run_in_planner_order_with_outputs_passed_on(project: Project) -> None:
    order: list[str] = []

    async def run(call: ToolCall, upstream: Mapping[str, Any]) -> dict[str, Any]:
        order.append(call.name)
        return {"name": call.name, "saw": sorted(upstream)}

    notebook = Notebook()
    results = await gate(project, "owner", run, notebook).run_batch(
        [
            ToolCall("a", "send_to_n8n", {"channel": "email", "message": "hi"}),
            ToolCall("b", "make_goal_call", {"target": "dentist", "playbook": "book_appointment"}),
            ToolCall("c", "lookup_contact", {"name": "dentist"}),
        ]
    )
    assert order == ["lookup_contact", "make_goal_call", "send_to_n8n"]
    assert results[0]["saw"] == ["lookup_contact", "make_goal_call"]
    assert [r["tool"] for r in notebook.rows] == ["lookup_contact", "make_goal_call", "send_to_n8n"]
