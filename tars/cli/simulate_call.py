"""``tars call TARGET --playbook NAME --simulate``: the same goal call, fully offline.

The server runs in this process between the loopback Twilio and Gemini emulators (no
credentials, no network), places the call through its own API, and the other end plays
one of the playbook's scenarios (``playbooks/scenarios/<playbook>/``): ``--scenario
NAME``, or the first whose expected outcome the playbook counts as a success. Inputs not
given with ``--var`` come from that scenario. The transcript and tool calls are shown as
TARS records them; then the outcome, the summary and whether the scenario's expectations
held (exit code 0, else 1).

**Where the call is stored.** The call runs against a throw-away state folder, like `tars
simulate`: the in-process server (and its scheduler) must never deliver the owner's real
reminders or place their queued calls to the emulators. When it is over, the call (row,
transcript, tool calls) is copied into the project's own database, marked as simulated
(SID ``sim-CA…``, summary ``[simulated] …``, never retried), so `tars calls list` and
`tars calls show ID` show it like any other call.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tars.cli import errors, output
from tars.cli.speakers import other_party, speaker_name

if TYPE_CHECKING:
    from tars.project import Project
    from tars.scenarios.records import Entry
    from tars.scenarios.runner import ScenarioResult
    from tars.scenarios.scenario import Scenario

_STYLES = {"tars": "bold cyan", "party": "bold yellow", "system": "dim", "tool": "magenta"}


def simulate_call(
    project: Project,
    playbook: str,
    target: dict[str, Any],
    inputs: dict[str, str],
    *,
    scenario: str | None = None,
    as_json: bool = False,
    verbose: bool = False,
) -> int:
    """Play the goal call offline, store it in the project's database; 0 if the scenario's
    expectations held, 1 if not."""
    from tars.cli.simulate import QuietLogs
    from tars.scenarios.runner import run_one

    chosen = _scenario(project, playbook, scenario)
    played, merged = _for_target(project, chosen, target, inputs)
    if not as_json:
        _header(target, played, merged)
    party = other_party(str(target.get("name") or "") or None, outbound=True)
    names = {s: speaker_name(s, project.persona.name, party) for s in ("tars", "party", "system", "tool")}
    show = None if as_json else functools.partial(_show_entry, names=names)
    with tempfile.TemporaryDirectory(prefix="tars-call-") as folder, QuietLogs(verbose):
        state = Path(folder)
        result = run_one(played, project, state, show)
        kept = _keep(project, state, result, target)
    if as_json:
        output.print_json(_json(result, kept, target))
    else:
        _footer(result, kept)
    return errors.OK if result.status == "passed" else errors.USER_ERROR


def _scenario(project: Project, playbook: str, name: str | None) -> Scenario:
    from tars.scenarios import playbook_scenarios

    try:
        return playbook_scenarios.simulation_scenario(project, playbook, name)
    except playbook_scenarios.NotFound as exc:
        raise errors.UserError(str(exc), exc.hint) from None


def _for_target(
    project: Project, scenario: Scenario, target: dict[str, Any], inputs: dict[str, str]
) -> tuple[Scenario, dict[str, Any]]:
    """The scenario, calling ``target`` with the scenario's inputs overridden by ``inputs``."""
    from tars.graph.call_plan import InputError, prepare_call

    merged = {**scenario.call.inputs, **inputs}
    try:
        plan = prepare_call(project, str(scenario.call.playbook), merged)
    except InputError as exc:
        raise errors.UserError("; ".join(exc.problems), "fix them with --var key=value") from None
    contacts = list(scenario.contacts)
    callee = target["phone"]  # what TARS is asked to call: a directory key, a contact's name, or the number
    if target.get("source") == "contact":
        known = next((c for c in contacts if c["phone"] == target["phone"]), None)
        if known is None:  # the simulation's database starts empty: TARS learns them from the scenario
            known = {"name": target["name"], "phone": target["phone"]}
            contacts.append(known)
        callee = known["name"]
    elif target.get("source") == "directory":
        callee = next((k for k, e in project.directory.items() if e.phone == target["phone"]), callee)
    call = dataclasses.replace(scenario.call, target=callee, inputs=merged)
    return dataclasses.replace(scenario, call=call, contacts=tuple(contacts)), dict(plan.inputs)


def _keep(project: Project, state: Path, result: ScenarioResult, target: dict[str, Any]) -> int | None:
    """Copy the finished call into the project's database; its id there (None: nothing to keep)."""
    from tars.scenarios.line import for_simulation
    from tars.scenarios.records import keep_call

    if result.call_id is None:
        return None
    return keep_call(for_simulation(project, state), project, result.call_id, _contact_id(project, target))


def _contact_id(project: Project, target: dict[str, Any]) -> int | None:
    if target.get("source") != "contact":
        return None
    from sqlmodel import select

    from tars.store.database import connect
    from tars.store.models import Contact

    with connect(project.database_url) as db, db.session() as session:
        found = session.exec(select(Contact).where(Contact.phone == target["phone"])).first()
        return found.id if found is not None else None


# ------------------------------------------------------------------------------ what people see


def _header(target: dict[str, Any], scenario: Scenario, inputs: dict[str, Any]) -> None:
    out, esc = output.out, output.escape
    out.print(
        f"[bold]Simulating[/] a call to {esc(target['name'])} ({target['phone']}), "
        f"playbook [bold]{esc(str(scenario.call.playbook))}[/]"
    )
    out.print(f"[dim]offline: emulated Twilio and Gemini; the other end plays {esc(scenario.file)}[/]")
    if inputs:
        out.print("[dim]inputs: " + esc(", ".join(f"{k}={v}" for k, v in inputs.items())) + "[/]")
    answer = scenario.call.answer
    if answer != "human":
        out.print(f"[dim]the phone answers: {answer}[/]")
    out.print()


def _show_entry(entry: Entry, names: dict[str, str]) -> None:
    out, esc = output.out, output.escape
    width = max(6, *map(len, names.values()))
    name = names.get(entry.speaker, entry.speaker)
    style = "red" if entry.speaker == "tool" and not entry.allowed else _STYLES.get(entry.speaker, "")
    text = entry.text
    if entry.speaker == "system" and len(text) > 160:
        text = text[:159] + "…"
    lines = textwrap.wrap(text, max(40, out.width - width - 4)) or [""]
    body = f"\n{' ' * (width + 2)}".join(esc(line) for line in lines)
    if entry.speaker in ("system", "tool"):
        body = f"[dim]{body}[/]"
    out.print(f"[{style}]{esc(name.rjust(width))}[/]  {body}")


def _footer(result: ScenarioResult, kept: int | None) -> None:
    import json

    out, esc = output.out, output.escape
    seen = result.seen
    out.print()
    out.print(f"[bold]Status[/]   {seen.status or 'not placed'}")
    if seen.outcome is not None:
        source = f" ({seen.outcome_source})" if seen.outcome_source else ""
        out.print(f"[bold]Outcome[/]  {esc(json.dumps(seen.outcome, ensure_ascii=False))}{source}")
    if seen.summary:
        out.print(f"[bold]Summary[/]  {esc(seen.summary)}")
    for report in seen.reports:
        out.print(f"[bold]Report[/]   by {report['via']}: {esc(report['text'])}")
    failed = result.failures
    if failed:
        out.print(f"\n[red]✗ {len(failed)} of {len(result.checks)} of the scenario's expectations failed:[/]")
        for check in failed:
            detail = f": {check.detail}" if check.detail else ""
            out.print(f"  [red]✗[/] {esc(check.what)}{esc(detail)}")
    else:
        out.print(f"[green]✓[/] the scenario's {len(result.checks)} expectations held ({result.seconds:.1f} s)")
    if kept is not None:
        out.print(f"[dim]Stored as call {kept} (simulated): see it again with[/] [bold]tars calls show {kept}[/]")


def _json(result: ScenarioResult, kept: int | None, target: dict[str, Any]) -> dict[str, Any]:
    data = result.to_json()
    data.pop("state_dir", None)
    return {"ok": result.status == "passed", "call_id": kept, "simulated": True, "target": target, **data}
