"""The pre-commit hook: its definition parses, matches the right files, and its entry works."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tars.scaffold import scaffold

HOOKS = Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml"


@pytest.fixture(scope="module")
def hook() -> dict[str, object]:
    hooks = yaml.safe_load(HOOKS.read_text())
    assert isinstance(hooks, list)
    [found] = [h for h in hooks if h["id"] == "tars-validate"]
    return found


def test_hook_definition(hook: dict[str, object]) -> None:
    assert hook["entry"] == "tars validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    assert {"id", "name", "entry", "language", "files"} <= set(hook)


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("tars.yaml", True),
        ("tars.yml", True),
        ("assistant/tars.yaml", True),
        ("personas/butler.yaml", True),
        ("assistant/playbooks/book_appointment.yml", True),
        ("playbooks/drafts/x.yaml", True),
        ("mytars.yaml", False),
        ("schemas/tars.schema.json", False),
        ("playbooks/notes.md", False),
        (".github/workflows/ci.yaml", False),
    ],
)
def test_hook_files_pattern(path: str, matches: bool, hook: dict[str, object]) -> None:
    assert bool(re.search(str(hook["files"]), path)) is matches


def _entry(hook: dict[str, object]) -> list[str]:
    """The hook's entry as pre-commit would run it from this environment."""
    argv = shlex.split(str(hook["entry"]))
    installed = Path(sys.executable).with_name(argv[0])
    if installed.exists():
        return [str(installed), *argv[1:]]
    found = shutil.which(argv[0])
    return [found, *argv[1:]] if found else [sys.executable, "-m", "tars", *argv[1:]]


def test_hook_entry_on_a_project_in_a_subfolder(tmp_path: Path, hook: dict[str, object]) -> None:
    repo = tmp_path / "repo"
    scaffold(repo / "assistant")
    pattern = re.compile(str(hook["files"]))
    files = sorted(
        p.relative_to(repo).as_posix() for p in repo.rglob("*") if pattern.search(p.relative_to(repo).as_posix())
    )
    assert "assistant/tars.yaml" in files and len(files) >= 5

    done = subprocess.run([*_entry(hook), *files], cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is valid" in done.stdout

    playbook = repo / "assistant" / "playbooks" / "book_appointment.yaml"
    playbook.write_text(playbook.read_text().replace("next: find_slot", "next: find_slott"))
    done = subprocess.run(
        [*_entry(hook), "assistant/playbooks/book_appointment.yaml"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "playbooks/book_appointment.yaml:" in done.stdout
    assert "'find_slott' is not a step; did you mean 'find_slot'?" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
