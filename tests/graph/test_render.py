"""`tars graph`: the tree for people, Mermaid and DOT for docs, JSON for machines."""

from __future__ import annotations

import json
import re

import pydot
import pytest
from typer.testing import CliRunner

from tars.cli.app import app

runner = CliRunner()

# The subset of Mermaid flowchart syntax we emit, checked line by line: a line that is not
# one of these forms would be a parse error in Mermaid.
_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_LABEL = r'"[^"\n]*"'
MERMAID_LINE = [
    re.compile(r"^flowchart (TD|LR)$"),
    re.compile(rf"^\s*subgraph {_ID}\[{_LABEL}\]$"),
    re.compile(r"^\s*direction (TB|LR)$"),
    re.compile(r"^\s*end$"),
    re.compile(rf"^\s*{_ID}(\(\({_ID}\)\)|\(\(\(end\)\)\)|\[{_LABEL}\])$"),
    re.compile(rf"^\s*{_ID} -->(\|{_LABEL}\|)? {_ID}$"),
]


def assert_valid_mermaid(text: str) -> None:
    lines = text.strip().splitlines()
    assert lines[0] == "flowchart TD"
    depth = 0
    for line in lines:
        assert any(p.match(line) for p in MERMAID_LINE), f"not valid Mermaid: {line!r}"
        depth += line.strip().startswith("subgraph ") - (line.strip() == "end")
        assert depth >= 0
    assert depth == 0, "unbalanced subgraph/end"


def test_mermaid_for_one_playbook_is_a_valid_flowchart() -> None:
    result = runner.invoke(app, ["graph", "book_appointment", "--format", "mermaid"])
    assert result.exit_code == 0, result.output
    assert_valid_mermaid(result.output)
    assert '-->|"status = no_slot"| book_appointment_s_alternatives' in result.output
    assert "book_appointment_s_wrap_up --> book_appointment_end" in result.output


def test_mermaid_escapes_quotes_in_labels() -> None:
    result = runner.invoke(app, ["graph", "--format", "mermaid"])
    assert_valid_mermaid(result.output)
    assert '"they accept the proposed time"' in result.output


def test_dot_parses_with_a_real_dot_parser() -> None:
    result = runner.invoke(app, ["graph", "--format", "dot"])
    assert result.exit_code == 0
    graphs = pydot.graph_from_dot_data(result.output)
    assert graphs is not None and len(graphs) == 1
    graph = graphs[0]
    clusters = {s.get_name().strip('"') for s in graph.get_subgraphs()}
    assert clusters == {"cluster_book_appointment", "cluster_business_inquiry", "cluster_dinner_invitation"}
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in graph.get_edges()}
    assert ("tool/send_to_n8n", "tool/make_goal_call") in edges
    assert ("role/unknown", "tool/take_message") in edges


def test_json_is_node_link_with_typed_nodes_and_edges() -> None:
    result = runner.invoke(app, ["graph", "--format", "json"])
    data = json.loads(result.output)
    kinds = {n["kind"] for n in data["nodes"]}
    assert kinds == {"persona", "role", "tool", "playbook", "step", "end"}
    edge_kinds = {e["kind"] for e in data["edges"]}
    assert edge_kinds == {"grants", "needs", "runs_as", "starts_at", "allows", "uses", "goes_to"}
    step = next(n for n in data["nodes"] if n["id"] == "step:book_appointment.find_slot")
    assert (step["file"], step["line"]) == ("playbooks/book_appointment.yaml", 35)
    case = next(
        e
        for e in data["edges"]
        if e["source"] == "step:book_appointment.find_slot" and e["target"] == "step:book_appointment.alternatives"
    )
    assert case["transition"] == {
        "to": "alternatives",
        "kind": "case",
        "field": "status",
        "value": "no_slot",
        "when": None,
    }


def test_tree_shows_steps_transitions_roles_and_tools() -> None:
    result = runner.invoke(app, ["graph"])
    assert result.exit_code == 0
    for text in (
        "book_appointment",
        "find_slot (start)" if False else "introduce (start)",
        "→ alternatives  when status = no_slot",
        "unknown: take_message, end_call",
        "send_to_n8n (webhook)  needs: lookup_contact, make_goal_call",
    ):
        assert text in result.output


@pytest.mark.parametrize("fmt", ["tree", "mermaid", "dot", "json"])
def test_unknown_playbook_is_a_clear_error(fmt: str) -> None:
    result = runner.invoke(app, ["graph", "book_apointment", "--format", fmt])
    assert result.exit_code == 1
    assert "'book_apointment' is not a playbook; did you mean 'book_appointment'?" in result.output
