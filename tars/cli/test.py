"""``tars test [PLAYBOOK...]``: play every playbook's scenarios offline; a pass/fail table.

Each playbook carries its own scenarios in ``playbooks/scenarios/<playbook>/*.yaml`` (goal
calls scripted for both ends, see ``tars.scenarios.playbook_scenarios``). They run like `tars
simulate` runs them: the real server code between the loopback Twilio and Gemini
emulators, each call with its own throw-away database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tars.cli import context, errors, output

if TYPE_CHECKING:
    from tars.scenarios.runner import ScenarioResult

DEFAULT_JOBS = 2


def test(
    ctx: typer.Context,
    playbooks: Annotated[
        list[str] | None,
        typer.Argument(
            help="Playbooks to test (names, as in playbooks/NAME.yaml). Default: all.",
            show_default=False,
            metavar="[PLAYBOOK]...",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON for scripts.")] = False,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit",
            help="Also write the results as JUnit XML to FILE (for CI).",
            metavar="FILE",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Calls played at the same time (each on its own line).")
    ] = DEFAULT_JOBS,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the server's and pipecat's logs.")] = False,
) -> None:
    """Play each playbook's scenarios offline and check what they expect: a pass/fail table.

    Scenarios live in playbooks/scenarios/PLAYBOOK/*.yaml. Nothing reaches Twilio or Google,
    and your own records are never touched.

    Exit code 1 if any scenario fails, or a playbook has no scenarios.
    """
    import time

    from tars.config.diagnostics import ConfigError
    from tars.scenarios import playbook_scenarios as book_tests

    project = context.load(ctx)
    try:
        suites = book_tests.suites(project, playbooks or [])
    except book_tests.NotFound as exc:
        raise errors.UserError(str(exc), exc.hint) from None
    missing = {s.playbook: f"no scenarios in {s.folder}/" for s in suites if not s.files}
    strays = [] if playbooks else book_tests.strays(project)
    try:
        book_tests.load(project, [s for s in suites if s.files])
    except ConfigError as exc:
        if as_json:
            output.print_json({"ok": False, "errors": [d.to_json() for d in exc.diagnostics]})
        else:
            output.show_diagnostics(exc.diagnostics, project.root, output.err)
        raise typer.Exit(errors.USER_ERROR) from None

    from tars.cli.simulate import QuietLogs
    from tars.scenarios.runner import run_all

    scenarios = [scenario for suite in suites for scenario in suite.scenarios]
    started = time.monotonic()
    with QuietLogs(verbose):
        results = run_all(scenarios, project, jobs=jobs, on_result=(lambda r: None) if as_json else _progress)
    seconds = time.monotonic() - started
    by_playbook: dict[str, list[ScenarioResult]] = {s.playbook: [] for s in suites if s.files}
    for result in results:
        by_playbook[str(result.scenario.call.playbook)].append(result)
    failed = sum(1 for r in results if r.status != "passed")
    ok = not failed and not missing and not strays
    if junit is not None:
        from tars.scenarios.junit import junit_xml, write_junit

        write_junit(junit, junit_xml(by_playbook, missing, seconds))
    if as_json:
        output.print_json(_json(ok, results, suites, missing, strays, seconds))
    else:
        _table(by_playbook, missing)
        _details([r for r in results if r.status != "passed"])
        _summary(len(results) - failed, failed, missing, strays, seconds, junit)
    if not ok:
        raise typer.Exit(errors.USER_ERROR)


def _progress(result: ScenarioResult) -> None:
    mark = "[green]✓[/]" if result.status == "passed" else "[red]✗[/]"
    name = f"{result.scenario.call.playbook}/{result.scenario.name}"
    output.err.print(f"  {mark} {output.escape(name)} [dim]({result.seconds:.1f} s)[/]")


def _table(by_playbook: dict[str, list[ScenarioResult]], missing: dict[str, str]) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for header in ("Playbook", "Scenario", "Result", "Checks", "Time"):
        table.add_column(header, no_wrap=True, justify="right" if header in ("Checks", "Time") else "left")
    failures = any(r.status != "passed" for results in by_playbook.values() for r in results) or bool(missing)
    if failures:
        table.add_column("First failure")
    esc = output.escape
    for playbook in sorted({*by_playbook, *missing}):
        if playbook in missing:
            table.add_row(esc(playbook), "—", "[red]✗ none[/]", "", "", esc(missing[playbook]))
            continue
        for i, result in enumerate(by_playbook[playbook]):
            passed = sum(1 for c in result.checks if c.passed)
            verdict = "[green]✓ pass[/]" if result.status == "passed" else "[red]✗ fail[/]"
            first = result.failures[0].what if result.failures else ""
            cells = [esc(playbook) if i == 0 else "", esc(result.scenario.name), verdict]
            cells += [f"{passed}/{len(result.checks)}", f"{result.seconds:.1f} s"] + ([esc(first)] if failures else [])
            table.add_row(*cells)
    output.out.print(table)


def _details(failed: list[ScenarioResult]) -> None:
    out, esc = output.out, output.escape
    for result in failed:
        scenario = result.scenario
        out.print(
            f"\n[bold red]✗ {esc(str(scenario.call.playbook))}/{esc(scenario.name)}[/]  [dim]{esc(scenario.file)}[/]"
        )
        for check in result.failures:
            detail = f": {check.detail}" if check.detail else ""
            out.print(f"  [red]✗[/] {esc(check.what)}{esc(detail)}")
        out.print(f"  [dim]See the whole call: tars simulate {esc(scenario.file)}[/]")


def _summary(
    passed: int, failed: int, missing: dict[str, str], strays: list[str], seconds: float, junit: Path | None
) -> None:
    from tars.scenarios.playbook_scenarios import add_hint

    out = output.out
    parts = [f"[green]{passed} passed[/]"] + ([f"[red]{failed} failed[/]"] if failed else [])
    out.print("\n" + ", ".join(parts) + f" in {seconds:.1f} s")
    for playbook in sorted(missing):
        out.print(f"[red]✗ playbook '{output.escape(playbook)}' has no scenarios[/] [dim]({add_hint(playbook)})[/]")
    for stray in strays:
        out.print(f"[red]✗ {output.escape(stray)}[/]")
    if junit is not None:
        out.print(f"[dim]JUnit XML written to {output.escape(str(junit))}[/]")


def _json(
    ok: bool,
    results: list[ScenarioResult],
    suites: list[Any],
    missing: dict[str, str],
    strays: list[str],
    seconds: float,
) -> dict[str, Any]:
    playbooks = []
    for suite in suites:
        mine = [r for r in results if r.scenario.call.playbook == suite.playbook]
        playbooks.append({
            "playbook": suite.playbook, "scenarios": len(mine),
            "passed": sum(1 for r in mine if r.status == "passed"),
            "failed": sum(1 for r in mine if r.status != "passed"), "problem": missing.get(suite.playbook),
        })  # fmt: skip
    return {
        "ok": ok, "passed": sum(1 for r in results if r.status == "passed"),
        "failed": sum(1 for r in results if r.status != "passed"), "seconds": round(seconds, 2),
        "playbooks": playbooks, "problems": strays, "scenarios": [r.to_json() for r in results],
    }  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("test")(test)
