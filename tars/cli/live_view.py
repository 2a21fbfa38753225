"""The live view of a goal call: status, current step, transcript and tool calls as they happen."""

from __future__ import annotations

import time
from typing import Any

from tars.cli import output
from tars.cli.speakers import other_party, speaker_name

FINAL = ("completed", "busy", "no-answer", "failed", "voicemail")


def render(call: dict[str, Any], persona: str = "TARS") -> Any:
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    status = call.get("status", "?")
    step = f"  step [yellow]{call['step']}[/]" if call.get("step") else ""
    who = escape(str(call.get("to_number") or ""))
    header = f"[bold]{who}[/]  {call.get('playbook') or ''}  status [cyan]{status}[/]{step}"
    lines = Table.grid(padding=(0, 1))
    party = other_party(call.get("contact") or call.get("callee"), outbound=call.get("direction") == "outbound")
    for line in call.get("transcript", [])[-14:]:
        name = escape(speaker_name(line["speaker"], persona, party))
        style = {"assistant": "green", "caller": "blue"}.get(line["speaker"], "dim")
        who = f"[{style}]{name}[/]"
        text = line["text"] if line["speaker"] != "system" else line["text"][:100]
        lines.add_row(who, escape(text))
    tools = Table.grid(padding=(0, 1))
    for tool in call.get("tools", [])[-6:]:
        mark = "[green]✓[/]" if tool["allowed"] and not tool.get("reason") else "[red]✗[/]"
        tools.add_row(mark, tool["tool"], escape(str(tool.get("reason") or tool.get("result") or ""))[:80])
    parts: list[Any] = [header, lines]
    if call.get("tools"):
        parts += ["", "[bold]tools[/]", tools]
    if call.get("outcome") is not None:
        parts += ["", f"[bold]outcome[/] {escape(str(call['outcome']))} ({call.get('outcome_source')})"]
    if call.get("summary"):
        parts += [f"[bold]summary[/] {escape(call['summary'])}"]
    return Panel(Group(*parts), title=f"call {call.get('id')}", expand=False)


def watch(
    client: Any, call_id: int, poll: float = 0.5, settle: float = 15.0, show: bool = True, persona: str = "TARS"
) -> dict[str, Any]:
    """Follow the call until it has ended and its report is written; Ctrl-C detaches, the call goes on.

    With ``show=False`` (``--json``) nothing is drawn; the final state is returned.
    """
    import contextlib

    from rich.live import Live

    call = client.get(f"/api/calls/{call_id}")
    ended_at: float | None = None
    view = Live(render(call, persona), console=output.out, refresh_per_second=4) if show else contextlib.nullcontext()
    try:
        with view as live:
            while True:
                time.sleep(poll)
                call = client.get(f"/api/calls/{call_id}")
                if live is not None:
                    live.update(render(call, persona))
                if call.get("status") in FINAL and not call.get("live"):
                    ended_at = ended_at or time.monotonic()
                    if call.get("summary") or call.get("status") != "completed" or time.monotonic() - ended_at > settle:
                        break
    except KeyboardInterrupt:
        output.err.print(f"\nDetached. The call goes on; see it with [bold]tars calls show {call_id}[/].")
    return call
