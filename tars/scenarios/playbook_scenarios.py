"""Each playbook's own scenarios: ``playbooks/scenarios/<playbook>/<scenario>.yaml``.

They are goal calls (``direction: outbound``) that follow their folder's playbook: at least
a success and a failure path each. `tars test` plays them all; `tars call --simulate` plays
one (by default the first whose expected outcome counts as a success for the playbook).
The project loader reads only ``playbooks/*.yaml``, so these are never taken for playbooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tars.config.diagnostics import ConfigError, Diagnostic, suggestion
from tars.project import Project
from tars.scenarios.scenario import Scenario, load_scenarios

FOLDER = Path("playbooks") / "scenarios"


class NotFound(LookupError):
    """A playbook or scenario name that does not exist; ``hint`` says what does."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


@dataclass
class Suite:
    """One playbook's scenario files (none: the playbook has no scenarios yet)."""

    playbook: str
    files: list[Path] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return FOLDER / self.playbook


def folder_of(project: Project, playbook: str) -> Path:
    return project.root / FOLDER / playbook


def scenario_files(project: Project, playbook: str) -> list[Path]:
    folder = folder_of(project, playbook)
    return sorted(p for p in folder.glob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))


def suites(project: Project, names: Sequence[str] = ()) -> list[Suite]:
    """The suites of the named playbooks (all, if none are named), in the order given.

    Raises NotFound for a name that is no playbook, and for a named playbook without
    scenarios (all playbooks: such a suite comes back empty, for the caller to report)."""
    known = sorted(project.playbooks)
    for name in names:
        if name not in project.playbooks:
            raise NotFound(
                f"'{name}' is not a playbook{suggestion(name, known)}", f"playbooks: {', '.join(known) or 'none'}"
            )
    found = [Suite(name, scenario_files(project, name)) for name in dict.fromkeys(names or known)]
    for suite in found:
        if names and not suite.files:
            raise NotFound(f"playbook '{suite.playbook}' has no scenarios", add_hint(suite.playbook))
    return found


def add_hint(playbook: str) -> str:
    return (
        f"add a goal call scripted for both ends as {FOLDER / playbook}/NAME.yaml "
        f"(see {FOLDER}/book_appointment/ in a project made with `tars init`)"
    )


def strays(project: Project) -> list[str]:
    """Folders under playbooks/scenarios/ that belong to no playbook, each with a suggestion."""
    root = project.root / FOLDER
    if not root.is_dir():
        return []
    return [
        f"{FOLDER / p.name}/ belongs to no playbook{suggestion(p.name, project.playbooks)}"
        for p in sorted(root.iterdir())
        if p.is_dir() and p.name not in project.playbooks
    ]


def load(project: Project, found: Sequence[Suite]) -> None:
    """Load every suite's scenarios (into ``suite.scenarios``), or raise one ConfigError with the
    problems of all of them: a scenario must be a goal call following its folder's playbook."""
    problems: list[Diagnostic] = []
    for suite in found:
        try:
            suite.scenarios = load_scenarios(suite.files, project, base=project.root)
        except ConfigError as exc:
            problems.extend(exc.diagnostics)
            continue
        for path, scenario in zip(suite.files, suite.scenarios, strict=True):
            problems.extend(_belongs(path, scenario, suite.playbook))
    if problems:
        raise ConfigError(problems)


def _belongs(path: Path, scenario: Scenario, playbook: str) -> list[Diagnostic]:
    from tars.config.yaml_loader import load_file

    if scenario.call.outbound and scenario.call.playbook == playbook:
        return []
    doc = load_file(path, scenario.file)
    if not scenario.call.outbound:
        message = f"a scenario of playbook '{playbook}' is a goal call: write direction: outbound"
        return [doc.diagnostic(("call",), message, code="scenario.playbook")]
    message = (
        f"this scenario is in {FOLDER / playbook}/ but follows playbook '{scenario.call.playbook}'; "
        f"move it to {FOLDER / str(scenario.call.playbook)}/ or follow '{playbook}'"
    )
    return [doc.diagnostic(("call", "playbook"), message, code="scenario.playbook")]


def is_success(scenario: Scenario, project: Project) -> bool:
    """The scenario expects an outcome the playbook counts as achieved (a person answers)."""
    book = project.playbooks[str(scenario.call.playbook)]
    outcome = scenario.expect.get("outcome")
    if scenario.call.answer != "human" or not isinstance(outcome, dict):
        return False
    if book.success_field is None:
        return True
    return outcome.get(book.success_field) in book.success_values


def simulation_scenario(project: Project, playbook: str, name: str | None = None) -> Scenario:
    """The scenario `tars call --simulate` plays: ``name``, else the first success, else the first
    answered by a person, else the first. Raises NotFound or ConfigError."""
    [suite] = suites(project, [playbook])
    if name is not None:
        stems = [p.stem for p in suite.files]
        if name not in stems:
            raise NotFound(
                f"playbook '{playbook}' has no scenario '{name}'{suggestion(name, stems)}",
                f"its scenarios ({suite.folder}/): {', '.join(stems)}",
            )
        suite.files = [p for p in suite.files if p.stem == name]
    load(project, [suite])
    ranked = sorted(
        suite.scenarios, key=lambda s: (not is_success(s, project), s.call.answer != "human")
    )  # sorted() is stable: file order within each rank
    return ranked[0]
