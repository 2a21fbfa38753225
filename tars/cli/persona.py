"""``tars persona``: who TARS is on the phone — see it, change it, see what changed.

A change made here is the one the owner can make by voice: checked against the persona
schema, written back to the YAML with only the changed line different, recorded in the
history, committed when ``persona.autocommit`` is on. A running ``tars serve`` picks it up
for its next call (it watches the files).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tars.cli import context, output
from tars.errors import UserError

if TYPE_CHECKING:
    from tars.project import Persona, Project

app = typer.Typer(
    help="Who TARS is on the phone: list, show (--rendered: what the model is told), set, use, history.",
    no_args_is_help=True,
)

ROLES = ("owner", "contact", "unknown", "delegate")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
PersonaArg = Annotated[
    str | None,
    typer.Argument(help="A persona's file name or name; default: the one in use.", show_default=False),
]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why: kept in the history and the commit message.", show_default=False)
]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="persona")


def _pick(project: Project, name: str | None) -> Persona:
    from tars.persona_changes import find_persona

    return project.personas[find_persona(project, name)] if name else project.persona


def _settings(project: Project, persona: Persona) -> dict[str, Any]:
    return {
        "key": persona.key,
        "name": persona.name,
        "active": persona.key == project.persona.key,
        "language": persona.language,
        "voice": persona.voice or project.section("model").get("voice"),
        "style": persona.style,
        "humor": persona.humor,
        "honesty": persona.honesty,
        "verbosity": persona.verbosity,
        "address_owner_as": persona.address_owner_as,
        "nationality": persona.nationality,
    }


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every persona in personas/, the one in use marked."""
    project = context.load(ctx)
    rows = [_settings(project, p) for p in project.personas.values()]
    if output.listed(rows, as_json, lambda r: r, "No personas: add one to personas/ (see personas/tars.yaml)."):
        return
    table = output.table("", "Persona", "Name", "Language", "Voice", "Style", "Humour", "Honesty", "Verbosity")
    for r in rows:
        cells = ("●" if r["active"] else "", r["key"], r["name"], r["language"], r["voice"] or "", r["style"])
        table.add_row(*(output.escape(str(c)) for c in (*cells, r["humor"], r["honesty"], r["verbosity"])))
    output.out.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: PersonaArg = None,
    rendered: Annotated[
        bool, typer.Option("--rendered", help="Print exactly what the model would be told on a call now.")
    ] = False,
    role: Annotated[
        str, typer.Option("--role", help="The caller's role for --rendered: " + ", ".join(ROLES))
    ] = "owner",
    playbook: Annotated[
        str | None,
        typer.Option("--playbook", help="For --role delegate: the goal call's playbook.", show_default=False),
    ] = None,
    var: Annotated[
        list[str] | None,
        typer.Option(
            "--var", help="For --role delegate: a playbook input, key=value (repeatable).", show_default=False
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A persona's settings; with --rendered, the system instruction and first words for a call now."""
    project = context.load(ctx)
    persona = _pick(project, name)
    if not rendered:
        if as_json:
            output.print_json(_settings(project, persona))
            return
        for key, value in _settings(project, persona).items():
            if value is not None and key != "key":
                output.line(f"[dim]{key:<17}[/] {output.escape(str(value))}")
        return
    if role not in ROLES and role not in project.roles:
        raise UserError(f"'{role}' is not a role", hint=f"use one of: {', '.join(ROLES)}")
    instruction, first = _rendered(dataclasses.replace(project, persona=persona), role, playbook, var or [])
    if as_json:
        output.print_json({"persona": persona.key, "role": role, "system_instruction": instruction, "opening": first})
        return
    typer.echo(f"# system instruction ({persona.name}, role {role}, now)\n{instruction}\n")
    typer.echo(f"# first words\n{first}")


def _rendered(project: Project, role: str, playbook: str | None, var: list[str]) -> tuple[str, str]:
    """What a call's setup would give the model (tars.calls.setup), for a caller with ``role``."""
    from tars.calls import instructions
    from tars.graph.call_plan import InputError, prepare_call

    now = instructions.local_now(project)
    if role != "delegate":
        tools = [t for t in project.roles[role].tools if t in project.tools] if role in project.roles else []
        name = {"owner": project.owner.name, "unknown": None}.get(role, "<the contact's name>")
        number = project.owner.phone if role == "owner" else "<their number>"
        values = instructions.template_values(project, now, name)
        kind = role if role in ("owner", "unknown") else "contact"
        return (
            instructions.inbound_instruction(project, role, name, number, now, tools),
            instructions.first_words(project, project.roles[role], kind, values)
            if role in project.roles
            else instructions.greeting(project, kind, values),
        )
    books = [b for b in project.playbooks.values() if b.role == "delegate"] or list(project.playbooks.values())
    if playbook is None and not books:
        raise UserError("there are no playbooks to render a goal call for", hint="add one to playbooks/")
    chosen = playbook or books[0].name
    if chosen not in project.playbooks:
        from tars.config.diagnostics import suggestion

        raise UserError(f"'{chosen}' is not a playbook{suggestion(chosen, project.playbooks)}")
    book = project.playbooks[chosen]
    given = context.parse_vars(var)
    for key, spec in book.inputs.items():  # placeholders for what was not given
        if spec.required and key not in given and spec.type == "string":
            given[key] = f"<{key}>"
    speaking = dataclasses.replace(project, persona=project.persona_for(book))
    values = instructions.template_values(speaking, now, persona=speaking.persona)
    try:
        plan = prepare_call(speaking, chosen, given, {**values, "target_name": "<who is called>"})
    except InputError as exc:
        raise UserError("; ".join(exc.problems), hint="give them with --var key=value") from exc
    return instructions.goal_instruction(speaking, plan, "<who is called>", now), "(the other party speaks first)"


@app.command("set", context_settings={"ignore_unknown_options": True})  # "-10" is a value
def set_(
    ctx: typer.Context,
    setting: Annotated[str, typer.Argument(help="humor (humour), honesty, verbosity, style or voice.")],
    value: Annotated[str, typer.Argument(help="0-100, a step such as +10, or a word: brief, butler, Charon…")],
    persona: Annotated[
        str | None, typer.Option("--persona", help="Another persona than the one in use.", show_default=False)
    ] = None,
    reason: ReasonOpt = None,
) -> None:
    """Change one setting, such as humor 75 or verbosity brief: saved to the persona's YAML file."""
    from tars.persona_changes import change_setting

    _apply(ctx, lambda project, asker: change_setting(project, setting, value, asker, persona=persona, reason=reason),
           setting, value, reason)  # fmt: skip


@app.command("use")
def use(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The persona to use from now on.")],
    reason: ReasonOpt = None,
) -> None:
    """Make another persona the active one (tars.yaml persona)."""
    from tars.persona_changes import switch_persona

    _apply(ctx, lambda project, asker: switch_persona(project, name, asker, reason=reason), "active", name, reason)


def _apply(ctx: typer.Context, work: Any, setting: str, value: str, reason: str | None) -> None:
    from tars.persona_changes import Asker, PersonaChangeRefused, refusal
    from tars.store.database import connect
    from tars.store.persona_changes import record_change

    project = context.load(ctx)
    asker = Asker("command line", "cli")
    try:
        applied = work(project, asker)
    except PersonaChangeRefused as exc:
        with connect(project.database_url) as db, db.session() as session:
            record_change(session, refusal(project, setting, value, asker, str(exc), reason))
            session.commit()
        raise
    with connect(project.database_url) as db, db.session() as session:
        record_change(session, applied.change)
        session.commit()
    said = applied.describe()
    change = applied.change
    what = "persona in use" if change.setting == "active" else f"{said['changed']} of {said['persona']}"
    output.line(
        f"[green]✓[/] {output.escape(what)}: {output.escape(str(change.old))} → {output.escape(change.new)} "
        f"in {output.escape(said['saved_to'])}"
    )
    if change.commit:
        output.line(f"  committed {change.commit[:12]}")
    output.line("  a running tars serve uses it from its next call")


@app.command("history")
def history_(
    ctx: typer.Context,
    name: PersonaArg = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, latest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Changes made by voice or with tars persona, latest first: who, when, from which call, old → new."""
    from tars import timeparse
    from tars.store.database import connect
    from tars.store.persona_changes import history

    project = context.load(ctx)
    key = _pick(project, name).key if name else None
    with connect(project.database_url) as db, db.session() as session:
        rows = history(session, persona=key, limit=limit)

    def as_dict(row: Any) -> dict[str, Any]:
        return {
            "at": row.at.isoformat(), "persona": row.persona, "setting": row.setting, "old": row.old, "new": row.new,
            "by": row.by, "call_id": row.call_id, "reason": row.reason, "result": row.result, "detail": row.detail,
            "commit": row.commit,
        }  # fmt: skip

    if output.listed(rows, as_json, as_dict, "No persona changes yet."):
        return
    table = output.table("When", "Persona", "Setting", "Change", "By", "Call", "Why", "Result")
    for row in rows:
        result = "applied" + (f" ({row.commit[:8]})" if row.commit else "")
        if row.result != "applied":
            result = f"refused: {row.detail or ''}"
        change = f"{row.old} → {row.new}" if row.old is not None else f"→ {row.new}"
        cells = (timeparse.show(row.at, project.owner.timezone), row.persona, row.setting, change, row.by,
                 str(row.call_id or ""), row.reason or "", result)  # fmt: skip
        table.add_row(*(output.escape(c) for c in cells))
    output.out.print(table)
