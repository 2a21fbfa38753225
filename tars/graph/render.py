"""The project graph as people and tools read it: a terminal tree, Mermaid, Graphviz DOT, JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, is_dataclass
from typing import Any

import networkx as nx

from tars.graph.compile import END, node_id
from tars.project import Project, Transition


def _label(t: Transition) -> str:
    if t.kind == "case":
        return f"{t.field} = {t.value}"
    if t.kind == "default":
        return "otherwise"
    if t.kind == "choice":
        return t.when or ""
    return ""


def _playbooks(project: Project, only: str | None) -> list[str]:
    return [only] if only else sorted(project.playbooks)


# ------------------------------------------------------------------------------ tree


def tree(project: Project, only: str | None = None) -> Any:
    """A rich Tree: playbooks → steps → transitions and tools; roles → tools; tool needs."""
    from rich.markup import escape
    from rich.tree import Tree

    root = Tree(f"[bold]{escape(project.root.name or str(project.root))}[/]  persona [cyan]{project.persona.key}[/]")
    books = root.add("[bold]playbooks[/]")
    for name in _playbooks(project, only):
        book = project.playbooks[name]
        node = books.add(f"[bold magenta]{name}[/]  runs as [cyan]{book.role}[/]  [dim]{escape(book.description)}[/]")
        node.add(f"tools: {', '.join(book.tools) or '—'}")
        for i, step in enumerate(book.steps):
            start = " [green](start)[/]" if i == 0 else ""
            sn = node.add(f"[yellow]{step.id}[/]{start}" + (f"  tools: {', '.join(step.tools)}" if step.tools else ""))
            for t in step.transitions:
                label = _label(t)
                target = "[red]end[/]" if t.to == END else f"[yellow]{t.to}[/]"
                sn.add(f"→ {target}" + (f"  [dim]when {escape(label)}[/]" if label else ""))
    if only:
        return root
    roles = root.add("[bold]roles[/]")
    for role in project.roles.values():
        roles.add(f"[cyan]{role.name}[/]: {', '.join(role.tools) or '—'}")
    tools = root.add("[bold]tools[/]")
    for tool in project.tools.values():
        direct = sorted(
            t.removeprefix("tool:")
            for _, t, k in project.graph.out_edges(node_id("tool", tool.name), data="kind")
            if k == "needs"
        )
        needs = f"  needs: {', '.join(direct)}" if direct else ""
        tools.add(f"{tool.name} [dim]({tool.kind})[/]{needs}")
    return root


# ------------------------------------------------------------------------------ mermaid

_SAFE = re.compile(r"[^A-Za-z0-9_]")


def _mid(*parts: str) -> str:
    return "_".join(_SAFE.sub("_", p) for p in parts)


def _mtext(text: str) -> str:
    """Mermaid label text: quotes and brackets as entity codes so the parser never trips."""
    return (
        text.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("|", "#124;")
    )


def mermaid(project: Project, only: str | None = None) -> str:
    """A Mermaid flowchart of the playbook(s): steps, transitions, and the tools each step uses."""
    lines = ["flowchart TD"]
    for name in _playbooks(project, only):
        book = project.playbooks[name]
        lines.append(f'  subgraph {_mid("pb", name)}["{_mtext(name)} (runs as {_mtext(book.role)})"]')
        lines.append("    direction TB")
        start = _mid(name, "start")
        lines.append(f"    {start}((start))")
        for step in book.steps:
            tools = f"<br/><small>{_mtext(', '.join(step.tools))}</small>" if step.tools else ""
            lines.append(f'    {_mid(name, "s", step.id)}["{_mtext(step.id)}{tools}"]')
        lines.append(f"    {_mid(name, 'end')}(((end)))")
        lines.append(f"    {start} --> {_mid(name, 's', book.steps[0].id)}")
        for step in book.steps:
            for t in step.transitions:
                target = _mid(name, "end") if t.to == END else _mid(name, "s", t.to)
                label = _label(t)
                arrow = f' -->|"{_mtext(label)}"| ' if label else " --> "
                lines.append(f"    {_mid(name, 's', step.id)}{arrow}{target}")
        lines.append("  end")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ dot


def _dq(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(project: Project, only: str | None = None) -> str:
    """Graphviz DOT: one cluster per playbook; roles and tools when showing the whole project."""
    out = ["digraph tars {", "  rankdir=LR;", '  node [fontname="Helvetica"];', '  edge [fontname="Helvetica"];']
    for name in _playbooks(project, only):
        book = project.playbooks[name]
        out.append(f"  subgraph {_dq('cluster_' + name)} {{")
        out.append(f"    label={_dq(f'{name} (runs as {book.role})')};")
        out.append(f'    {_dq(name + "/start")} [shape=circle, label="start"];')
        out.append(f'    {_dq(name + "/end")} [shape=doublecircle, label="end"];')
        for step in book.steps:
            label = step.id + (f"\\n[{', '.join(step.tools)}]" if step.tools else "")
            out.append(f'    {_dq(name + "/" + step.id)} [shape=box, label="{label}"];')
        out.append(f"    {_dq(name + '/start')} -> {_dq(name + '/' + book.steps[0].id)};")
        for step in book.steps:
            for t in step.transitions:
                target = name + "/" + ("end" if t.to == END else t.to)
                label = _label(t)
                attrs = f" [label={_dq(label)}]" if label else ""
                out.append(f"    {_dq(name + '/' + step.id)} -> {_dq(target)}{attrs};")
        out.append("  }")
    if not only:
        for role in project.roles.values():
            out.append(f"  {_dq('role/' + role.name)} [shape=ellipse, label={_dq('role ' + role.name)}];")
            for tool in role.tools:
                out.append(f"  {_dq('role/' + role.name)} -> {_dq('tool/' + tool)} [style=dashed];")
        for tool in project.tools.values():
            out.append(f"  {_dq('tool/' + tool.name)} [shape=component, label={_dq(tool.name)}];")
            for need in _direct_needs(project, tool.name):
                out.append(f'  {_dq("tool/" + tool.name)} -> {_dq("tool/" + need)} [label="needs"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _direct_needs(project: Project, tool: str) -> Iterable[str]:
    return sorted(
        t.removeprefix("tool:")
        for _, t, k in project.graph.out_edges(node_id("tool", tool), data="kind")
        if k == "needs"
    )


# ------------------------------------------------------------------------------ json


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


def node_link(project: Project, only: str | None = None) -> str:
    """networkx node-link JSON of the whole graph, or of one playbook's part of it."""
    graph = project.graph
    if only:
        keep = {node_id("playbook", only), node_id("end", only)}
        keep |= {n for n, d in graph.nodes(data=True) if d.get("playbook") == only}
        keep |= {v for u in list(keep) for _, v in graph.out_edges(u)}
        graph = graph.subgraph(keep)
    data = nx.node_link_data(graph, edges="edges")
    for edge in data["edges"]:
        for key, value in list(edge.items()):
            edge[key] = _plain(value)
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
