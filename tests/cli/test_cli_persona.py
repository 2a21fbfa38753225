"""`tars persona`: list, show what the model is told, change by hand with one changed line in
git, switch, and a clear word for every mistake."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))
    git(example_project, "init", "--quiet")
    git(example_project, "add", "-A")
    git(example_project, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "start")
    return example_project


def diff_lines(root: Path) -> list[str]:
    diff = git(root, "diff", "--unified=0").splitlines()
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_list_and_show(repo: Path, tars: Callable[..., Any]) -> None:
    listed = tars("--project", repo, "persona", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [tars_persona] = __import__("json").loads(listed.output)
    assert tars_persona["key"] == "tars" and tars_persona["active"] and tars_persona["humor"] == 35
    shown = tars("--project", repo, "persona", "show")
    assert "humor             35" in shown.output and "language          en-GB" in shown.output


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("owner", ["The caller is Alex Morgan, the person you work for. Address them as sir.", "change_persona"]),
        ("contact", ["one of Alex Morgan's contacts (role: contact)", "Good ", "This is TARS"]),
        ("unknown", ["is not in Alex Morgan's contacts", "may I take a message?"]),
        ("delegate", ["You are calling <who is called> on behalf of Alex Morgan", "Your goal: "]),
    ],
)
def test_show_rendered_prints_what_the_model_is_told(
    repo: Path, tars: Callable[..., Any], role: str, expected: list[str]
) -> None:
    result = tars("--project", repo, "persona", "show", "--rendered", "--role", role)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"# system instruction (TARS, role {role}, now)\n")
    assert "Speak British English (en-GB)" in result.output
    assert "Humour: 35/100: a dry aside now and then" in result.output
    for words in expected:
        assert words in result.output
    if role in ("contact", "unknown"):
        assert "change_persona" not in result.output


def test_set_writes_one_line_and_history_shows_it(repo: Path, tars: Callable[..., Any]) -> None:
    result = tars("--project", repo, "persona", "set", "humor", "75", "--reason", "more jokes")
    assert result.exit_code == 0, result.output
    assert "humour of TARS: 35 → 75 in personas/tars.yaml" in result.output
    assert diff_lines(repo) == ["-humor: 35", "+humor: 75"]
    # A setting the file leaves to its default is added beside its neighbours, one line.
    git(repo, "checkout", "--", ".")
    text = (repo / "personas/tars.yaml").read_text()
    (repo / "personas/tars.yaml").write_text(text.replace("honesty: 90\n", ""))
    git(repo, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "--quiet", "-am", "default honesty")
    assert tars("--project", repo, "persona", "set", "honesty", "-10").exit_code == 0  # a step from the default 90
    assert diff_lines(repo) == ["+honesty: 80"]
    assert (repo / "personas/tars.yaml").read_text().index("honesty: 80") > text.index("humor: 35")
    history = tars("--project", repo, "persona", "history", "--json")
    rows = __import__("json").loads(history.output)
    assert [(r["setting"], r["old"], r["new"], r["by"]) for r in rows] == [
        ("honesty", "90", "80", "command line"),
        ("humor", "35", "75", "command line"),
    ]
    assert rows[1]["reason"] == "more jokes"


def test_use_switches_the_persona_in_tars_yaml(repo: Path, tars: Callable[..., Any]) -> None:
    butler = (repo / "personas/tars.yaml").read_text()
    (repo / "personas/ada.yaml").write_text(butler.replace("name: TARS", "name: Ada"))
    git(repo, "add", "personas/ada.yaml")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "ada")
    result = tars("--project", repo, "persona", "use", "Ada")
    assert result.exit_code == 0, result.output
    assert diff_lines(repo) == ["-persona: tars", "+persona: ada"]
    listed = __import__("json").loads(tars("--project", repo, "persona", "list", "--json").output)
    assert [p["key"] for p in listed if p["active"]] == ["ada"]


@pytest.mark.parametrize(
    ("args", "golden"),
    [
        (("set", "humor", "150"), "persona_out_of_range.txt"),
        (("set", "wit", "50"), "persona_unknown_setting.txt"),
        (("set", "verbosity", "rambling"), "persona_bad_word.txt"),
        (("set", "voice", "Gandalf"), "persona_unknown_voice.txt"),
        (("use", "marvin"), "persona_unknown_persona.txt"),
        (("show", "--rendered", "--role", "boss"), "persona_unknown_role.txt"),
    ],
)
def test_mistakes_get_a_clear_answer_and_the_files_stay_as_they_were(
    repo: Path, tars: Callable[..., Any], update_goldens: bool, args: tuple[str, ...], golden: str
) -> None:
    result = tars("--project", repo, "persona", *args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert git(repo, "status", "--porcelain") == ""
    path = GOLDEN / golden
    if update_goldens:
        path.write_text(result.output, encoding="utf-8")
    assert result.output == path.read_text(encoding="utf-8")


def test_a_refused_change_is_recorded(repo: Path, tars: Callable[..., Any]) -> None:
    tars("--project", repo, "persona", "set", "humour", "101")
    [row] = __import__("json").loads(tars("--project", repo, "persona", "history", "--json").output)
    assert (row["setting"], row["new"], row["result"]) == ("humor", "101", "refused")
