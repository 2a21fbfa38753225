"""Whatever is in the files, validation answers with diagnostics, never a traceback.

Random text, random bytes and damaged copies of the shipped example go through the
library (fast, many cases) and through the real CLI (fewer cases): the project is valid
or invalid, and nothing else escapes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tars.config.diagnostics import ConfigError
from tars.config.yaml_loader import Document, load_text
from tars.loading import load_project
from tars.project import Project
from tars.scaffold import example_project, scaffold

EXAMPLE = example_project()
SHIPPED = ["tars.yaml", *(f"personas/{p.name}" for p in sorted((EXAMPLE / "personas").glob("*.yaml")))]
SHIPPED += [f"playbooks/{p.name}" for p in sorted((EXAMPLE / "playbooks").glob("*.yaml"))]

FAST = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLI = settings(FAST, max_examples=25)

# YAML-flavoured text: the characters that make YAML interesting, more often than chance.
_yaml_alphabet = st.sampled_from(
    [
        *" \t\n:-?[]{},#&*!|>'\"%@`$\\",
        *["\r\n", "---", "...", "<<", "${", "}", "\ufeff"],
        *"abcXYZ019_+.~",
        *["true", "no", "on", "null", "09:30", "0123", "\u00e9", "\x85"],
    ]
)
yaml_text = st.lists(_yaml_alphabet | st.text(max_size=3), max_size=60).map("".join)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few lines deleted, duplicated or swapped, characters flipped, tabs or quotes inserted."""
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "swap", "flip", "insert", "indent"]))
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "indent":
            lines[i] = draw(st.sampled_from(["\t", " ", "   ", "- "])) + lines[i]
        else:
            line = lines[i]
            k = draw(st.integers(0, len(line)))
            char = draw(st.sampled_from(list("\t\"':#-[]{}&*!|>$%@ \n\\")) | st.characters(codec="utf-8"))
            end = k + 1 if action == "flip" else k
            lines[i] = line[:k] + char + line[end:]
    return "".join(lines)


def _load(raw: bytes) -> Document | ConfigError:
    try:
        return load_text(raw, Path("fuzz.yaml"), "fuzz.yaml")
    except ConfigError as exc:
        return exc


def _check_error(exc: ConfigError) -> None:
    assert exc.diagnostics, "a ConfigError must say what is wrong"
    for d in exc.diagnostics:
        assert d.message and d.path.startswith("$"), d
        assert d.line >= 0 and d.col >= 0, d


@FAST
@given(yaml_text)
def test_random_yaml_text_loads_or_explains(text: str) -> None:
    result = _load(text.encode("utf-8", errors="surrogatepass"))
    if isinstance(result, ConfigError):
        _check_error(result)


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_load_or_explain(raw: bytes) -> None:
    result = _load(raw)
    if isinstance(result, ConfigError):
        _check_error(result)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "project"
    scaffold(root)
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, pristine: Path) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("fuzz") / "project"
    shutil.copytree(pristine, root)
    yield root


def _damage(root: Path, pristine: Path, rel: str, text: str) -> None:
    """Reset ``root`` to the example, then write the damaged file."""
    for name in SHIPPED:
        shutil.copyfile(pristine / name, root / name)
    (root / rel).write_text(text, encoding="utf-8", errors="surrogatepass")


@st.composite
def damaged_file(draw: st.DrawFn) -> tuple[str, str]:
    rel = draw(st.sampled_from(SHIPPED))
    return rel, draw(mutated((EXAMPLE / rel).read_text(encoding="utf-8")))


@FAST
@given(damaged_file())
def test_damaged_project_validates_or_explains(workspace: Path, pristine: Path, case: tuple[str, str]) -> None:
    rel, text = case
    _damage(workspace, pristine, rel, text)
    try:
        project = load_project(workspace)
    except ConfigError as exc:
        _check_error(exc)
    else:
        assert isinstance(project, Project)


@CLI
@given(damaged_file())
def test_damaged_project_through_the_cli(workspace: Path, pristine: Path, tars: Any, case: tuple[str, str]) -> None:
    rel, text = case
    _damage(workspace, pristine, rel, text)
    for args in (["validate"], ["validate", "--json"]):
        result = tars("--project", workspace, *args)
        assert result.exit_code in (0, 1), result.output
        assert "Traceback" not in result.output
        assert "crashed" not in result.output


@CLI
@given(st.binary(max_size=200))
def test_random_bytes_through_the_cli(workspace: Path, pristine: Path, tars: Any, raw: bytes) -> None:
    _damage(workspace, pristine, "tars.yaml", "")
    (workspace / "tars.yaml").write_bytes(raw)
    result = tars("--project", workspace, "validate")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
