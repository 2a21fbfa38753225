"""``tars simulate``: play scripted calls offline against this project's real server code.

Each scenario file scripts one call for both far ends (``tars.scenarios.scenario``); the calls
run through the loopback Twilio and Gemini emulators with `tars serve`'s own app in
between, in a throw-away state folder, and each expectation is reported ✓ or ✗.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tars.cli import context, errors, output
from tars.cli.logs import send_loguru_to_stderr
from tars.cli.speakers import other_party, speaker_name

if TYPE_CHECKING:
    from tars.scenarios.runner import ScenarioResult

_STYLES = {"tars": "bold cyan", "party": "bold yellow", "system": "dim", "tool": "magenta"}


def simulate(
    ctx: typer.Context,
    scenarios: Annotated[
        list[Path],
        typer.Argument(help="Scenario files (YAML), or folders of them.", show_default=False, exists=True),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON for scripts.")] = False,
    keep_state: Annotated[
        Path | None,
        typer.Option(
            "--keep-state",
            help="Keep each scenario's state folder (its database) in DIR/<scenario>.",
            metavar="DIR",
            show_default=False,
            file_okay=False,
        ),
    ] = None,
    allow_skip: Annotated[
        bool, typer.Option("--allow-skip", help="Exit 0 even if some scenarios could not run yet (goal calls).")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the server's and pipecat's logs.")] = False,
) -> None:
    """Play scripted calls against this project, offline: transcript and ✓/✗ per expectation.

    The real server code, SDKs and pipecat run against loopback Twilio and Gemini emulators.

    Each scenario gets a fresh, temporary database: your own records are never touched.

    Exit code 1 if any expectation fails.
    """
    import time

    from tars.config.diagnostics import ConfigError

    project = context.load(ctx)
    files = _scenario_files(scenarios)
    from tars.scenarios.runner import run_all
    from tars.scenarios.scenario import load_scenarios

    try:
        loaded = load_scenarios(files, project)
    except ConfigError as exc:
        if as_json:
            output.print_json({"ok": False, "errors": [d.to_json() for d in exc.diagnostics]})
        else:
            output.show_diagnostics(exc.diagnostics, None, output.err)
        raise typer.Exit(errors.USER_ERROR) from None

    started = time.monotonic()
    persona = project.persona.name
    with QuietLogs(verbose):
        results = run_all(
            loaded, project, keep_state=keep_state, on_result=lambda r: None if as_json else _show(r, persona)
        )
    seconds = time.monotonic() - started
    counts = {status: sum(1 for r in results if r.status == status) for status in ("passed", "failed", "skipped")}
    ok = counts["failed"] == 0 and (allow_skip or counts["skipped"] == 0)
    if as_json:
        output.print_json(
            {"ok": ok, **counts, "seconds": round(seconds, 2), "scenarios": [r.to_json() for r in results]}
        )
    else:
        _summary(counts, seconds, allow_skip)
    if not ok:
        raise typer.Exit(errors.USER_ERROR)


def _scenario_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise errors.UserError(f"no scenario files (*.yaml) in {path}")
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(files))


class QuietLogs:
    """Quiet logs for a readable report (pipecat's loguru and ours), or all of them with -v."""

    def __init__(self, verbose: bool):
        self.verbose = verbose

    def __enter__(self) -> None:
        import logging

        root = logging.getLogger()
        self.saved = (root.level, list(root.handlers))
        send_loguru_to_stderr("INFO" if self.verbose else None)
        if self.verbose:
            logging.basicConfig(
                level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
            )
        else:
            root.handlers = [logging.NullHandler()]
            root.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        import logging

        root = logging.getLogger()
        root.setLevel(self.saved[0])
        root.handlers = self.saved[1]
        send_loguru_to_stderr("DEBUG")  # loguru's own default level again


def _show(result: ScenarioResult, persona: str) -> None:
    import textwrap

    out, esc = output.out, output.escape
    scenario = result.scenario
    out.print(f"[bold]{esc(scenario.name)}[/]  [dim]{esc(scenario.file)}[/]")
    for line in textwrap.wrap(" ".join(scenario.description.split()), max(40, out.width - 4)):
        out.print(f"  {esc(line)}")
    if result.status == "skipped":
        out.print(f"  [yellow]– skipped:[/] {esc(result.reason or '')}\n")
        return
    if result.outbound:
        answer = scenario.call.answer
        how = "" if answer == "human" else f" (answered: {answer})"
        out.print(f"  [dim]{esc(persona)} calls {esc(result.party)}, playbook {scenario.call.playbook}{how}[/]")
    else:
        out.print(f"  [dim]{esc(result.party)} rings {esc(persona)}[/]")
    party = other_party(result.party_name, outbound=result.outbound)
    names = {s: speaker_name(s, persona, party) for s in {e.speaker for e in result.transcript}}
    width = max(6, *(len(names[e.speaker]) for e in result.transcript)) if result.transcript else 0
    wrap = max(40, out.width - width - 6)
    for entry in result.transcript:
        name = names.get(entry.speaker, entry.speaker)
        style = _STYLES.get(entry.speaker, "")
        if entry.speaker == "tool" and not entry.allowed:
            style = "red"
        lines = textwrap.wrap(entry.text, wrap) or [""]
        body = f"\n{' ' * (width + 4)}".join(esc(line) for line in lines)
        if entry.speaker in ("system", "tool"):
            body = f"[dim]{body}[/]"
        out.print(f"  [{style}]{esc(name.rjust(width))}[/]  {body}")
    for check in result.checks:
        mark = "[green]✓[/]" if check.passed else "[red]✗[/]"
        detail = f"  [red]{esc(check.detail)}[/]" if not check.passed and check.detail else ""
        out.print(f"  {mark} {esc(check.what)}{detail}")
    if result.state_dir:
        out.print(f"  [dim]state kept in {esc(result.state_dir)}[/]")
    failed = len(result.failures)
    verdict = "[green]passed[/]" if not failed else f"[red]failed[/] ({failed} of {len(result.checks)} checks)"
    out.print(f"  {verdict} in {result.seconds:.1f} s\n")


def _summary(counts: dict[str, Any], seconds: float, allow_skip: bool) -> None:
    parts = [f"[green]{counts['passed']} passed[/]"]
    if counts["failed"]:
        parts.append(f"[red]{counts['failed']} failed[/]")
    if counts["skipped"]:
        parts.append(f"[yellow]{counts['skipped']} skipped[/]")
    output.out.print(", ".join(parts) + f" in {seconds:.1f} s")
    if counts["failed"]:
        output.out.print(
            "[dim]Run again with -v for the server's logs, or with --keep-state DIR to keep each call's "
            "database (then: TARS_HOME=DIR/<scenario> tars calls show 1).[/]"
        )
    if counts["skipped"] and not allow_skip:
        output.out.print(
            "[yellow]Scenarios that cannot run yet count as failures; pass --allow-skip to accept them.[/]"
        )


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
