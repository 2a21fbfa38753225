"""Compile the validated YAML into one networkx graph and a frozen Project.

Nodes are typed (``persona``, ``role``, ``tool``, ``playbook``, ``step``, ``end``) and
carry the file, line and column they were declared at. Edges are typed too:

    role ─grants→ tool          tool ─needs→ tool
    playbook ─runs_as→ role     playbook ─starts_at→ step     playbook ─allows→ tool
    step ─uses→ tool            step ─goes_to→ step | end (with kind, field, value, when)

The cross-checks run over that graph and report in the same ``file:line:col  $.path``
format as schema errors, all in one pass.

The checks themselves need no networkx: the compiler records the graph in a plain
``Recorded`` (nodes and edges in order) and checks cycles and reachability in plain Python,
so ``tars validate`` never imports networkx. ``Project.graph`` — the networkx
``MultiDiGraph``, frozen — is built from that record on first use (``tars graph``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tars import local_embeddings
from tars.config.diagnostics import ConfigError, Diagnostic, JsonPath, format_path, suggestion
from tars.config.schema_files import load_schema, schemas_dir
from tars.config.secrets import FromEnv
from tars.config.sources import Sources, apply_defaults
from tars.graph.planner import needs_closure
from tars.graph.transfer_checks import check_transfers
from tars.graph.walks import reachable, simple_cycles
from tars.project import (
    Deferred,
    DirectoryEntry,
    Input,
    Owner,
    Persona,
    Playbook,
    Project,
    RetryPolicy,
    Role,
    Step,
    Tool,
    Transfer,
    Transition,
    Webhook,
    freeze,
    thaw,
)
from tars.tools.catalog import BUILTINS, OWNER_ONLY, PRIVATE, goal_call_declaration

if TYPE_CHECKING:
    import networkx as nx

    from tars.config.yaml_loader import Document

END = "end"
PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
# Placeholders every template may use, filled in by the runtime.
CONTEXT_NAMES = frozenset(
    {"owner_name", "assistant_name", "caller_name", "time_of_day", "salutation", "today", "now", "target_name"}
)


# What Gemini's function-declaration schemas accept (google.genai.types.Schema), in JSON spelling.
MODEL_SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "properties",
        "required",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minProperties",
        "maxProperties",
        "minimum",
        "maximum",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "title",
        "additionalProperties",
        "$defs",
        "$ref",
    }
)


def node_id(kind: str, *parts: str) -> str:
    return f"{kind}:{'.'.join(parts)}"


class Recorded:
    """The compiled graph without networkx: nodes (with their attributes) in the order they
    first appeared, edges in the order they were added. ``to_networkx`` replays them into
    the same ``MultiDiGraph`` the compiler would have built with networkx directly."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: list[tuple[str, str, dict[str, Any]]] = []

    def add_node(self, nid: str, **attrs: Any) -> None:
        self.nodes.setdefault(nid, {}).update(attrs)

    def add_edge(self, u: str, v: str, **attrs: Any) -> None:
        self.nodes.setdefault(u, {})
        self.nodes.setdefault(v, {})
        self.edges.append((u, v, attrs))

    def successors(self, u: str, kind: str) -> list[str]:
        """Where ``u``'s edges of ``kind`` lead, in networkx's ``out_edges`` order."""
        found: dict[str, int] = {}
        for a, b, attrs in self.edges:
            if a == u:
                found.setdefault(b, 0)
                found[b] += attrs.get("kind") == kind
        return [b for b, n in found.items() for _ in range(n)]

    def to_networkx(self) -> nx.MultiDiGraph:
        import networkx as nx

        graph = nx.MultiDiGraph()
        graph.add_nodes_from(self.nodes.items())
        graph.add_edges_from(self.edges)
        return nx.freeze(graph)


class _Compiler:
    def __init__(self, sources: Sources, skip: frozenset[str] = frozenset()):
        self.sources = sources
        #: Files whose schema check failed: their names count, their insides are not walked.
        self.skip = skip
        self.graph = Recorded()
        self.problems: list[Diagnostic] = []
        self.config = sources.config
        self._known_tools: dict[str, bool] | None = None  # filled once all tool nodes exist
        self.step_transitions: dict[tuple[str, str], list[Transition]] = {}

    # ---------------------------------------------------------------- helpers
    def problem(self, doc: Document, path: JsonPath, message: str, code: str, *, key: bool = False) -> None:
        self.problems.append(doc.diagnostic(path, message, key=key, code=code))

    def add_node(self, nid: str, kind: str, doc: Document, path: JsonPath, **attrs: Any) -> None:
        line, col = doc.position(path, key=True)
        self.graph.add_node(nid, kind=kind, file=doc.name, line=line, col=col, **attrs)

    # ---------------------------------------------------------------- passes
    def compile(self) -> None:
        self.persona_nodes()
        self.tool_nodes()
        self.role_nodes()
        self.tool_needs()
        for name, doc in self.sources.playbooks.items():
            if doc.name not in self.skip:
                self.playbook(name, doc)
        self.delivery_checks()
        self.text_checks()
        self.search_checks()
        check_transfers(self.config.data, lambda path, message, code: self.problem(self.config, path, message, code))

    def persona_nodes(self) -> None:
        for key, doc in self.sources.personas.items():
            self.add_node(node_id("persona", key), "persona", doc, ())
            if doc.name not in self.skip:
                self.templates(doc, ("greetings",), doc.data.get("greetings", {}), CONTEXT_NAMES)
        chosen = active_persona(self.config.data)
        if chosen not in self.sources.personas:
            known = list(self.sources.personas)
            hint = suggestion(chosen, known) or (
                f"; personas/ has: {', '.join(known)}" if known else "; personas/ is empty"
            )
            where = ("persona", "use") if isinstance(self.config.data["persona"], dict) else ("persona",)
            self.problem(self.config, where, f"'{chosen}' is not a persona{hint}", "ref.persona")

    def tool_nodes(self) -> None:
        tools = self.config.data.get("tools", {})
        for name, entry in tools.get("builtin", {}).items():
            enabled = entry is not False and not (isinstance(entry, dict) and entry.get("enabled") is False)
            self.add_node(
                node_id("tool", name),
                "tool",
                self.config,
                ("tools", "builtin", name),
                tool_kind="builtin",
                enabled=enabled,
            )
        for name, entry in tools.get("webhooks", {}).items():
            path = ("tools", "webhooks", name)
            if name in BUILTINS:
                self.problem(
                    self.config,
                    path,
                    f"'{name}' is the name of a built-in tool; give the webhook another name",
                    "ref.tool",
                    key=True,
                )
            self.add_node(node_id("tool", name), "tool", self.config, path, tool_kind="webhook", enabled=True)
            params = entry.get("parameters")
            if params is not None:
                self.check_schema(self.config, (*path, "parameters"), params, "parameters")

    def known_tools(self) -> dict[str, bool]:
        if self._known_tools is None:
            self._known_tools = {
                n.removeprefix("tool:"): d["enabled"] for n, d in self.graph.nodes.items() if d.get("kind") == "tool"
            }
        return self._known_tools

    def tool_ref(self, doc: Document, path: JsonPath, name: str) -> bool:
        """Check a reference to a tool; report unknown or disabled ones. True if usable."""
        known = self.known_tools()
        if name in known:
            if not known[name]:
                self.problem(doc, path, f"tool '{name}' is disabled (tools.builtin.{name}.enabled: false)", "ref.tool")
                return False
            return True
        if name in BUILTINS:
            self.problem(
                doc,
                path,
                f"'{name}' is a built-in tool that is not enabled; add '{name}: true' under tools.builtin in tars.yaml",
                "ref.tool",
            )
        else:
            hint = suggestion(name, list(known) + list(BUILTINS))
            self.problem(doc, path, f"'{name}' is not a tool{hint}", "ref.tool")
        return False

    def role_nodes(self) -> None:
        for role, entry in self.config.data["roles"].items():
            rid = node_id("role", role)
            self.add_node(rid, "role", self.config, ("roles", role))
            for i, tool in enumerate(entry.get("tools", [])):
                if self.tool_ref(self.config, ("roles", role, "tools", i), tool):
                    self.graph.add_edge(rid, node_id("tool", tool), kind="grants")
                if tool in OWNER_ONLY and role != "owner":
                    self.problem(
                        self.config,
                        ("roles", role, "tools", i),
                        f"'{tool}' changes how TARS behaves and may be granted to the owner role only; "
                        f"remove it from roles.{role}.tools",
                        "ref.owner_only",
                    )
                if tool in PRIVATE and role != "owner":
                    self.problem(
                        self.config,
                        ("roles", role, "tools", i),
                        f"'{tool}' reads the owner's past calls and may be granted to the owner role only; "
                        f"remove it from roles.{role}.tools",
                        "ref.owner_only",
                    )
            known = list(self.sources.playbooks)
            for i, playbook in enumerate(entry.get("playbooks", [])):
                if playbook not in self.sources.playbooks:
                    hint = suggestion(playbook, known) or (f"; playbooks: {', '.join(sorted(known))}" if known else "")
                    path = ("roles", role, "playbooks", i)
                    self.problem(self.config, path, f"'{playbook}' is not a playbook{hint}", "ref.playbook")
            if "playbooks" in entry and "make_goal_call" not in entry.get("tools", []):
                self.problem(
                    self.config,
                    ("roles", role, "playbooks"),
                    f"role '{role}' lists playbooks it may start but not the make_goal_call tool that starts them; "
                    f"add make_goal_call to its tools or remove playbooks",
                    "ref.playbook",
                )

    def tool_needs(self) -> None:
        tools = self.config.data.get("tools", {})
        for section in ("builtin", "webhooks"):
            for name, entry in tools.get(section, {}).items():
                declared = entry.get("needs") if isinstance(entry, dict) else None
                needs = (
                    declared
                    if declared is not None
                    else (list(BUILTINS[name].needs) if section == "builtin" and name in BUILTINS else [])
                )
                for i, need in enumerate(needs):
                    path = ("tools", section, name, "needs", i) if declared is not None else ("tools", section, name)
                    if need == name:
                        self.problem(self.config, path, f"tool '{name}' needs itself", "graph.cycle")
                    elif self.tool_ref(self.config, path, need):
                        self.graph.add_edge(node_id("tool", name), node_id("tool", need), kind="needs")
        needs: dict[str, list[str]] = {}
        for u, v, attrs in self.graph.edges:
            if attrs.get("kind") == "needs":
                needs.setdefault(u, []).append(v)
        for cycle in sorted(simple_cycles(needs), key=lambda c: (sorted(c), c)):
            start = min(cycle)
            i = cycle.index(start)
            ordered = [n.removeprefix("tool:") for n in cycle[i:] + cycle[:i]]
            first = ordered[0]
            section = "webhooks" if self.graph.nodes[node_id("tool", first)]["tool_kind"] == "webhook" else "builtin"
            self.problem(
                self.config,
                ("tools", section, first, "needs"),
                "tools need each other in a cycle: " + " -> ".join([*ordered, first]),
                "graph.cycle",
            )

    # ---------------------------------------------------------------- playbooks
    def playbook(self, name: str, doc: Document) -> None:
        data = doc.data
        problems_before = len(self.problems)
        pid = node_id("playbook", name)
        self.add_node(pid, "playbook", doc, ())
        roles = self.config.data["roles"]
        role = data["role"]
        granted: set[str] | None = None
        if role in roles:
            self.graph.add_edge(pid, node_id("role", role), kind="runs_as")
            granted = set(roles[role].get("tools", []))
        else:
            self.problem(doc, ("role",), f"'{role}' is not a role in tars.yaml{suggestion(role, roles)}", "ref.role")

        if "persona" in data:
            chosen = data["persona"]
            if chosen in self.sources.personas:
                self.graph.add_edge(pid, node_id("persona", chosen), kind="speaks_as")
            else:
                known = list(self.sources.personas)
                hint = suggestion(chosen, known) or (f"; personas/ has: {', '.join(known)}" if known else "")
                self.problem(doc, ("persona",), f"'{chosen}' is not a persona{hint}", "ref.persona")

        allowed = data.get("tools")
        if allowed is None:
            allowed = sorted(granted or [])
        else:
            for i, tool in enumerate(allowed):
                if self.tool_ref(doc, ("tools", i), tool):
                    self.graph.add_edge(pid, node_id("tool", tool), kind="allows")
                    if granted is not None and tool not in granted:
                        self.problem(
                            doc,
                            ("tools", i),
                            f"playbook uses tool '{tool}' but its role "
                            f"'{role}' is not granted it; add it to roles.{role}.tools "
                            "in tars.yaml or remove it here",
                            "graph.privilege",
                        )

        inputs = data.get("inputs", {})
        for key, spec in inputs.items():
            if spec.get("required") and "default" in spec:
                self.problem(
                    doc,
                    ("inputs", key, "default"),
                    f"input '{key}' is required and also has a "
                    "default; a required input is always given, so drop one of them",
                    "graph.input",
                )
        outcome = data["outcome"]
        self.check_schema(doc, ("outcome", "schema"), outcome["schema"], "outcome schema")
        properties = outcome["schema"].get("properties") if isinstance(outcome["schema"], dict) else None
        fields = dict(properties) if isinstance(properties, dict) else {}  # a broken schema is reported above
        success = outcome.get("success")
        if success and success["field"] not in fields:
            self.problem(
                doc,
                ("outcome", "success", "field"),
                f"'{success['field']}' is not an outcome field{suggestion(success['field'], fields)}",
                "ref.field",
            )

        names = set(inputs) | set(fields) | CONTEXT_NAMES
        self.templates(doc, ("goal",), data["goal"], names)
        if "voicemail" in data:
            self.templates(doc, ("voicemail", "message"), data["voicemail"].get("message", ""), names)

        steps = data["steps"]
        ids: dict[str, int] = {}
        for i, step in enumerate(steps):
            sid = step["id"]
            if sid == END:
                self.problem(
                    doc,
                    ("steps", i, "id"),
                    "'end' is reserved for the end of the call; name the step something else",
                    "graph.step",
                )
            elif sid in ids:
                self.problem(
                    doc, ("steps", i, "id"), f"duplicate step id '{sid}' (also steps[{ids[sid]}])", "graph.step"
                )
            else:
                ids[sid] = i
                self.add_node(node_id("step", name, sid), "step", doc, ("steps", i), playbook=name, step=sid, index=i)
        end = node_id("end", name)
        self.graph.add_node(end, kind="end", playbook=name, file=doc.name, line=0, col=0)
        if steps and ids.get(steps[0]["id"]) == 0:
            self.graph.add_edge(pid, node_id("step", name, steps[0]["id"]), kind="starts_at")

        for i, step in enumerate(steps):
            sid = step["id"]
            if ids.get(sid) != i:
                continue
            snode = node_id("step", name, sid)
            self.templates(doc, ("steps", i, "instructions"), step["instructions"], names)
            for j, tool in enumerate(step.get("tools", [])):
                if self.tool_ref(doc, ("steps", i, "tools", j), tool):
                    self.graph.add_edge(snode, node_id("tool", tool), kind="uses")
                    if tool not in allowed:
                        whose = (
                            "the playbook's tools" if data.get("tools") is not None else f"the tools of role '{role}'"
                        )
                        self.problem(
                            doc,
                            ("steps", i, "tools", j),
                            f"step '{sid}' uses tool '{tool}', which is "
                            f"not among {whose}; add it there or remove it here",
                            "graph.privilege",
                        )
            valid = self.step_transitions.setdefault((name, sid), [])
            for transition, path in self.transitions(step["next"], ("steps", i, "next")):
                target = transition.to
                if target == END or target in ids:
                    self.graph.add_edge(
                        snode,
                        end if target == END else node_id("step", name, target),
                        kind="goes_to",
                        transition=transition,
                    )
                    valid.append(transition)
                else:
                    self.problem(doc, path, f"'{target}' is not a step{suggestion(target, [*ids, END])}", "ref.step")
                if transition.field is not None:
                    self.check_case(doc, path, transition, fields)

        if not any(p.code == "ref.step" and p.file == doc.name for p in self.problems[problems_before:]):
            self.reachability(name, doc, steps, ids)  # an unknown step would cascade

    @staticmethod
    def transitions(nxt: Any, path: JsonPath) -> Iterable[tuple[Transition, JsonPath]]:
        if isinstance(nxt, str):
            yield Transition(nxt, "always"), path
        elif isinstance(nxt, dict):
            for value, to in nxt["cases"].items():
                yield Transition(to, "case", field=nxt["field"], value=value), (*path, "cases", value)
            yield Transition(nxt.get("default", END), "default", field=nxt["field"]), (*path, "default")
        else:
            for k, choice in enumerate(nxt):
                yield Transition(choice["to"], "choice", when=choice["when"]), (*path, k, "to")

    def check_case(self, doc: Document, path: JsonPath, transition: Transition, fields: Mapping[str, Any]) -> None:
        field = transition.field
        base = path[: path.index("next") + 1]
        if field not in fields:
            if transition.kind == "default":
                self.problem(
                    doc, (*base, "field"), f"'{field}' is not an outcome field{suggestion(field, fields)}", "ref.field"
                )
            return
        enum = fields[field].get("enum") if isinstance(fields[field], dict) else None
        if not isinstance(enum, list):
            return  # a non-list enum is an invalid schema, reported by check_schema
        if transition.kind == "case" and transition.value not in [str(e) for e in enum]:
            self.problem(
                doc,
                path,
                f"'{transition.value}' is not a value of outcome field '{field}' "
                f"(one of: {', '.join(map(str, enum))}){suggestion(transition.value, map(str, enum))}",
                "ref.field",
                key=True,
            )

    def reachability(self, name: str, doc: Document, steps: list[dict[str, Any]], ids: dict[str, int]) -> None:
        if not steps or ids.get(steps[0]["id"]) != 0:
            return  # the start itself is broken; that error is reported already
        end = node_id("end", name)
        forward: dict[str, list[str]] = {}
        backward: dict[str, list[str]] = {}
        for sid in ids:
            for t in self.step_transitions.get((name, sid), ()):
                u, v = node_id("step", name, sid), end if t.to == END else node_id("step", name, t.to)
                forward.setdefault(u, []).append(v)
                backward.setdefault(v, []).append(u)
        start = node_id("step", name, steps[0]["id"])
        from_start = reachable(forward, start)
        finishing = reachable(backward, end)
        trapped: dict[str, str] = {}  # node → step id, for steps that can never reach the end
        for sid, i in ids.items():
            nid = node_id("step", name, sid)
            if nid not in from_start:
                self.problem(
                    doc,
                    ("steps", i, "id"),
                    f"step '{sid}' is unreachable: no step leads to it from the start ('{steps[0]['id']}')",
                    "graph.unreachable",
                )
            elif nid not in finishing:
                trapped[nid] = sid
        self.loops(doc, ids, trapped, forward)

    def loops(self, doc: Document, ids: dict[str, int], trapped: dict[str, str], forward: dict[str, list[str]]) -> None:
        """One error per loop that never reaches the end (not one per step caught in it), at
        the loop's first step; a step that only leads into such a loop is fixed with it."""
        inside = {u: [v for v in forward.get(u, ()) if v in trapped and v != u] for u in trapped}
        loops = [[u] for u in trapped if u in forward.get(u, ())] + simple_cycles(inside)
        looping: set[str] = set()
        for loop in sorted(loops, key=lambda c: min(ids[trapped[n]] for n in c)):
            order = [trapped[n] for n in loop]
            first = min(range(len(order)), key=lambda k: ids[order[k]])
            order = order[first:] + order[:first]
            looping.update(loop)
            path = " -> ".join(f"'{sid}'" for sid in [*order, order[0]])
            if len(order) == 1:
                what, which = f"step '{order[0]}' loops to itself", "give it"
            else:
                what, which = f"steps {path} loop", "give one of them"
            self.problem(
                doc,
                ("steps", ids[order[0]], "next"),
                f"{what} and can never reach the end; {which} a transition to 'end' or to a step that ends",
                "graph.dead_end",
            )
        if not looping:  # (a step can only be trapped by a loop; kept should that ever change)
            for sid in trapped.values():
                self.problem(
                    doc,
                    ("steps", ids[sid], "next"),
                    f"step '{sid}' can never reach the end; add a transition to 'end' or to a step that ends",
                    "graph.dead_end",
                )

    # ---------------------------------------------------------------- misc checks
    def templates(self, doc: Document, path: JsonPath, value: Any, names: Iterable[str]) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                self.templates(doc, (*path, key), sub, names)
            return
        if not isinstance(value, str):
            return
        known = set(names)
        for match in PLACEHOLDER.finditer(value):
            placeholder = match.group(1)
            if placeholder not in known:
                hint = suggestion(placeholder, known)
                line, col = self.locate_text(doc, path, match.group(0))
                self.problems.append(
                    Diagnostic(
                        doc.name,
                        line,
                        col,
                        format_path(path),
                        f"placeholder '{{{{ {placeholder} }}}}' names no input, outcome field or built-in value{hint}",
                        "graph.template",
                    )
                )

    @staticmethod
    def locate_text(doc: Document, path: JsonPath, text: str) -> tuple[int, int]:
        """Where ``text`` appears in the value at ``path`` (block scalars span lines)."""
        line, col = doc.position(path)
        for number in range(line, min(line + 200, len(doc.lines) + 1)):
            source = doc.lines[number - 1]
            found = source.find(text, col - 1 if number == line else 0)
            if found >= 0:
                return number, found + 1
        return line, col

    def check_schema(self, doc: Document, path: JsonPath, schema: Any, what: str) -> None:
        import jsonschema_rs

        schema = thaw(freeze(schema))  # a ${VAR} inside is a FromEnv: plain strings for the validators
        # jsonschema-rs answers valid/invalid fast; jsonschema explains the invalid ones.
        if not jsonschema_rs.meta.is_valid(schema):
            from tars.config.schema import json_schema_problems

            problems = json_schema_problems(schema)
            for inner, message in problems[:1]:  # the most relevant; the rest usually follow from it
                if inner and inner[-1] == "type" and isinstance(_get(schema, inner), str):
                    types = ["string", "number", "integer", "boolean", "object", "array", "null"]
                    value = _get(schema, inner)
                    message = (
                        f"{value!r} is not a JSON Schema type; use one of: {', '.join(types)}{suggestion(value, types)}"
                    )
                self.problem(doc, (*path, *inner), f"{what} is not valid JSON Schema: {message}", "graph.schema")
            if problems:
                return
        if what == "parameters" and schema.get("type") != "object":
            self.problem(doc, path, "parameters must be a JSON Schema with type: object", "graph.schema")
        self.check_model_keywords(doc, path, schema, what)

    def check_model_keywords(self, doc: Document, path: JsonPath, schema: Any, what: str) -> None:
        """The model is given these schemas as function parameters; it rejects keywords it does not know.

        The classic way to get one: a flow-style description with a comma,
        ``{type: string, description: The agreed time, in plain words.}``, which YAML reads
        as a second key ``in plain words.``.
        """
        if not isinstance(schema, dict):
            return
        for key, value in schema.items():
            where = (*path, key)
            if key not in MODEL_SCHEMA_KEYWORDS:
                hint = suggestion(key, MODEL_SCHEMA_KEYWORDS)
                if not hint and value is None and " " in key:
                    hint = "; is it the end of a description with a comma in it? Quote the description"
                self.problem(
                    doc,
                    where,
                    f"'{key}' is not a JSON Schema keyword the model accepts in {what}{hint}",
                    "graph.schema",
                    key=True,
                )
                continue
            if key in ("properties", "$defs") and isinstance(value, dict):
                for name, sub in value.items():
                    self.check_model_keywords(doc, (*where, name), sub, what)
            elif key in ("items", "additionalProperties"):
                self.check_model_keywords(doc, where, value, what)
            elif key == "anyOf" and isinstance(value, list):
                for i, sub in enumerate(value):
                    self.check_model_keywords(doc, (*where, i), sub, what)

    def delivery_checks(self) -> None:
        delivery = self.config.data.get("delivery", {})
        uses_webhook = any(v == "webhook" for k, v in delivery.items() if isinstance(v, str))
        if uses_webhook and "webhook" not in delivery:
            key = next(k for k, v in delivery.items() if v == "webhook")
            self.problem(
                self.config,
                ("delivery", key),
                "the webhook channel is chosen but delivery.webhook (url, secret) is not configured",
                "ref.delivery",
            )

    def search_checks(self) -> None:
        """``search.embeddings: local`` needs the local-embeddings extra installed."""
        if (self.config.data.get("search") or {}).get("embeddings") == "local":
            why = local_embeddings.missing()
            if why:
                self.problem(self.config, ("search", "embeddings"), why, "env.extra")

    def text_checks(self) -> None:
        """n8n.role names a role; sms.require_pin_for names tools."""
        data = self.config.data
        roles = data.get("roles", {})
        role = (data.get("n8n") or {}).get("role")
        if role is not None and role not in roles:
            self.problem(
                self.config, ("n8n", "role"), f"'{role}' is not a role in tars.yaml{suggestion(role, roles)}",
                "ref.role",
            )  # fmt: skip
        tools = set(self.known_tools())
        for i, name in enumerate((data.get("sms") or {}).get("require_pin_for") or []):
            if name not in tools:
                self.problem(
                    self.config, ("sms", "require_pin_for", i),
                    f"'{name}' is not a tool{suggestion(name, sorted(tools))}", "ref.tool",
                )  # fmt: skip


# ---------------------------------------------------------------------------- build


# How a step's transitions and a role's granted tools are found: from the compiled graph
# (a full load), or straight from the data (a project from the cache, which is known valid).
StepTransitions = Callable[[str, Mapping[str, Any]], tuple[Transition, ...]]
GrantedTools = Callable[[str], tuple[str, ...]]


def cross_references(sources: Sources, broken: set[str]) -> list[Diagnostic]:
    """The cross-reference problems of a project whose ``broken`` files failed their schema,
    so one pass shows every problem: the files that passed are checked as usual; a broken one
    is not walked (its data cannot be trusted) but its name still counts, so a reference to a
    playbook with a schema error inside is not reported unknown. Nothing when tars.yaml itself
    is broken: every reference is checked against it."""
    if sources.config.name in broken:
        return []
    compiler = _Compiler(sources, skip=frozenset(broken))
    compiler.compile()
    return compiler.problems


def compile_project(sources: Sources, state: Path) -> Project:
    """Check cross-references over the graph; build the frozen Project or raise ConfigError.

    The networkx graph (``Project.graph``) is built from the compiler's record when first
    asked for."""
    compiler = _Compiler(sources)
    compiler.compile()
    if compiler.problems:
        raise ConfigError(compiler.problems)
    graph = compiler.graph
    documents = MappingProxyType({d.name: d for d in sources.all()})

    def granted(role: str) -> tuple[str, ...]:
        return tuple(t.removeprefix("tool:") for t in graph.successors(node_id("role", role), "grants"))

    return build_project(
        sources,
        state,
        needs=_needs(graph),
        transitions=lambda name, step: tuple(compiler.step_transitions[(name, step["id"])]),
        granted=granted,
        deferred=Deferred(build=lambda: (graph.to_networkx(), documents)),
    )


def build_valid_project(
    sources: Sources, state: Path, needs: Mapping[str, frozenset[str]], deferred: Deferred
) -> Project:
    """The Project of sources already known to be valid (the cache), without compiling a graph.

    For a valid project the graph adds nothing these need: every transition is kept, in
    order, and a role is granted exactly its (unique) ``tools``. tests/config/test_project_cache.py
    checks the result equals ``compile_project``'s.
    """
    roles = sources.config.data["roles"]
    return build_project(
        sources,
        state,
        needs=needs,
        transitions=lambda _name, step: tuple(t for t, _ in _Compiler.transitions(step["next"], ())),
        granted=lambda role: tuple(roles[role]["tools"]),
        deferred=deferred,
    )


def build_project(
    sources: Sources,
    state: Path,
    *,
    needs: Mapping[str, frozenset[str]],
    transitions: StepTransitions,
    granted: GrantedTools,
    deferred: Deferred,
) -> Project:
    """The frozen Project from checked sources."""
    config = apply_defaults(sources.config.data, load_schema("tars"))
    playbooks = {n: _playbook(n, d, transitions, granted) for n, d in sources.playbooks.items()}
    personas = {k: _persona(k, d.data) for k, d in sources.personas.items()}
    return Project(
        root=sources.root,
        state_dir=state,
        owner=_owner(config["owner"]),
        persona=personas[active_persona(config)],
        personas=MappingProxyType(personas),
        roles=MappingProxyType(
            {
                n: Role(
                    n,
                    tuple(r.get("tools", ())),
                    r.get("description", ""),
                    r.get("pin", False),
                    tuple(r["playbooks"]) if "playbooks" in r else None,
                    int(r["memory"].get("calls", 3)) if "memory" in r else 0,
                    int(r["memory"].get("max_chars", 600)) if "memory" in r else 600,
                    bool(r.get("recording", {}).get("enabled", False)),
                    bool(r.get("recording", {}).get("announce", False)),
                    _transfer(r.get("transfer")),
                )
                for n, r in config["roles"].items()
            }
        ),
        tools=MappingProxyType(_tools(config.get("tools", {}), playbooks)),
        playbooks=MappingProxyType(playbooks),
        directory=MappingProxyType({k: _directory(k, v) for k, v in config.get("directory", {}).items()}),
        settings=freeze(config),
        needs=MappingProxyType(dict(needs)),
        secrets=frozenset(_secrets(sources)),
        secret_paths=frozenset(secret_paths(config)),
        deferred=deferred,
    )


def _needs(graph: Recorded) -> dict[str, frozenset[str]]:
    direct: dict[str, list[str]] = {}
    for u, v, attrs in graph.edges:
        if attrs.get("kind") == "needs":
            direct.setdefault(u.removeprefix("tool:"), []).append(v.removeprefix("tool:"))
    tools = [n.removeprefix("tool:") for n, attrs in graph.nodes.items() if attrs.get("kind") == "tool"]
    closure = needs_closure(direct)
    return {t: closure.get(t, frozenset()) for t in tools}


def active_persona(config: Mapping[str, Any]) -> str:
    """The persona tars.yaml names: ``persona: NAME`` or ``persona: {use: NAME, …}``."""
    chosen = config["persona"]
    return str(chosen["use"] if isinstance(chosen, Mapping) else chosen)


def _owner(o: Mapping[str, Any]) -> Owner:
    return Owner(
        o["name"],
        o["phone"],
        o["timezone"],
        o.get("region", "US"),
        o.get("email"),
        o.get("pin") or None,
        o.get("require_pin", False),
    )


def _persona(key: str, p: Mapping[str, Any]) -> Persona:
    p = apply_defaults(p, load_schema("persona"))
    return Persona(
        key,
        p["name"],
        p["language"],
        freeze(p["greetings"]),
        p.get("voice"),
        p.get("nationality"),
        p["style"],
        p["humor"],
        p["honesty"],
        p["verbosity"],
        p["address_owner_as"],
        p.get("style_notes", ""),
    )


def _tools(tools: Mapping[str, Any], playbooks: Mapping[str, Playbook]) -> dict[str, Tool]:
    out: dict[str, Tool] = {}
    for name, entry in tools.get("builtin", {}).items():
        cfg = entry if isinstance(entry, dict) else {}
        if entry is False or cfg.get("enabled") is False:
            continue
        spec = BUILTINS[name]
        description, parameters = spec.description, spec.parameters
        if name == "make_goal_call":  # declared from the playbooks it can start
            description, parameters = goal_call_declaration(playbooks)
        out[name] = Tool(
            name,
            "builtin",
            cfg.get("description") or description,
            freeze(parameters),
            tuple(cfg.get("needs", spec.needs)),
            cfg.get("timeout_seconds", 10),
        )
    for name, entry in tools.get("webhooks", {}).items():
        hook = Webhook(
            entry["url"],
            entry["method"],
            entry.get("secret") or None,
            freeze(entry.get("headers", {})),
            entry["timeout_seconds"],
            entry["retries"],
        )
        params = entry.get("parameters", {"type": "object", "properties": {}})
        out[name] = Tool(
            name,
            "webhook",
            entry["description"],
            freeze(params),
            tuple(entry.get("needs", ())),
            entry["timeout_seconds"],
            hook,
        )
    return out


def _playbook(name: str, doc: Document, transitions: StepTransitions, granted: GrantedTools) -> Playbook:
    data = apply_defaults(doc.data, load_schema("playbook"))
    steps = []
    for step in data["steps"]:
        sid = step["id"]
        steps.append(Step(sid, step["instructions"], tuple(step.get("tools", ())), transitions(name, step)))
    tools = tuple(data["tools"]) if "tools" in data else granted(data["role"])
    inputs = {
        k: Input(
            k,
            v.get("type", "string"),
            v.get("description", ""),
            v.get("required", False),
            v.get("default"),
            tuple(v["enum"]) if "enum" in v else None,
        )
        for k, v in data.get("inputs", {}).items()
    }
    success = data["outcome"].get("success") or {}
    voicemail = data.get("voicemail", {})
    silence = data.get("silence", {})
    window = data.get("calling_window", "any")
    return Playbook(
        name=name,
        file=doc.name,
        description=data["description"],
        goal=data["goal"],
        role=data["role"],
        tools=tools,
        inputs=MappingProxyType(inputs),
        steps=tuple(steps),
        outcome_schema=freeze(data["outcome"]["schema"]),
        success_field=success.get("field"),
        success_values=tuple(success.get("in", ())),
        voicemail_action=voicemail.get("action", "hang_up"),
        voicemail_message=voicemail.get("message"),
        voicemail_retry=RetryPolicy(voicemail.get("retries", 0), voicemail.get("backoff_minutes", 30)),
        no_answer=RetryPolicy(**data.get("no_answer", {})),
        busy=RetryPolicy(**data.get("busy", {})),
        calling_window=freeze(window),
        max_duration_minutes=data["max_duration_minutes"],
        silence_nudge_after_seconds=silence.get("nudge_after_seconds", 8),
        silence_end_after_nudges=silence.get("end_after_nudges", 2),
        report_via=data.get("report", {}).get("via", "default"),
        persona=data.get("persona"),
    )


def _transfer(entry: Mapping[str, Any] | None) -> Transfer | None:
    if entry is None:
        return None
    return Transfer(
        tuple(entry["to"]),
        entry.get("kind", "warm"),
        int(entry.get("ring_seconds", 20)),
        tuple(entry.get("any_time", ())),
        freeze(entry.get("hours", [])),
    )


def _directory(key: str, entry: Mapping[str, Any]) -> DirectoryEntry:
    return DirectoryEntry(
        key,
        entry["phone"],
        entry.get("name"),
        entry.get("timezone"),
        freeze(entry.get("hours", [])),
        tuple(entry.get("aliases", ())),
        entry.get("notes"),
    )


def _secrets(sources: Sources) -> set[str]:
    """Every value that came from a ${VAR} at a secret field, for masking."""
    found: set[str] = set()
    for path in secret_paths(sources.config.data):
        value = _get(sources.config.data, path)
        if isinstance(value, FromEnv) and value:
            found.add(str(value))
    return found


def secret_paths(config: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Paths in tars.yaml that the schema marks ``writeOnly`` (secrets), present in ``config``."""
    schema = load_schema("tars")
    defs = schema["$defs"]
    out: list[tuple[str, ...]] = []

    def walk(value: Any, sub: Mapping[str, Any], path: tuple[str, ...]) -> None:
        ref = sub.get("$ref", "")
        if ref.startswith("#/$defs/"):
            sub = {**defs[ref.removeprefix("#/$defs/")], **{k: v for k, v in sub.items() if k != "$ref"}}
        if sub.get("writeOnly"):
            out.append(path)
            return
        if not isinstance(value, dict):
            return
        props = sub.get("properties", {})
        for key, item in value.items():
            child = props.get(key, sub.get("additionalProperties"))
            if isinstance(child, dict):
                walk(item, child, (*path, key))

    walk(config, schema, ())
    return out


def _get(data: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        if isinstance(data, Mapping):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return None
    return data


__all__ = ["END", "build_project", "build_valid_project", "compile_project", "node_id", "schemas_dir", "secret_paths"]
