"""YAML means what it says: no Norway problem, no octal, no sexagesimal; ${VAR}s resolve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tars.config.diagnostics import ConfigError
from tars.config.secrets import Environment, FromEnv, interpolate, mask_text
from tars.config.yaml_loader import Document, load_text


def _load(text: str) -> Document:
    return load_text(text.encode(), Path("t.yaml"), "t.yaml")


def _value(text: str) -> Any:
    return _load(f"v: {text}\n").data["v"]


@pytest.mark.parametrize("text", ["on", "off", "no", "yes", "y", "n", "On", "NO", "Yes", "Off", "Y"])
def test_yaml_11_booleans_stay_strings(text: str) -> None:
    assert _value(text) == text
    assert _load(f"{text}: 1\n").data == {text: 1}  # as keys too: `on:` in a workflow


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("false", False), ("True", True), ("FALSE", False), ("null", None), ("~", None), ("", None)],
)
def test_true_false_and_null(text: str, expected: Any) -> None:
    assert _value(text) is expected


@pytest.mark.parametrize(
    "text",
    ["09:30", "9:30", "1:20:30", "0123", "007", "0o17", "0x1F", "0b101", "1_000", "+447700900123", "+3", "12:00"],
)
def test_numbers_that_are_not_numbers_stay_strings(text: str) -> None:
    assert _value(text) == text


@pytest.mark.parametrize(
    ("text", "expected"), [("0", 0), ("42", 42), ("-7", -7), ("1.5", 1.5), ("1e3", 1000.0), ("-.5", -0.5)]
)
def test_plain_numbers(text: str, expected: Any) -> None:
    value = _value(text)
    assert value == expected and type(value) is type(expected)


def test_positions_of_keys_and_values() -> None:
    doc = _load("a:\n  b: [1, two]\n  'c d': x\n")
    assert doc.position(("a", "b", 1)) == (2, 10)
    assert doc.position(("a", "b"), key=True) == (2, 3)
    assert doc.position(("a", "c d")) == (3, 10)
    assert doc.position(("a", "missing", 3)) == (2, 3)  # nearest parent that exists


def test_merge_keys_work_and_explicit_keys_win() -> None:
    doc = _load("base: &b {x: 1, y: 2}\nmine:\n  <<: *b\n  y: 3\n")
    assert doc.data["mine"] == {"x": 1, "y": 3}


def test_a_project_with_yaml_11_words_and_times_validates(example_project: Path, tars: Any) -> None:
    """`no:` as an outcome case, an unquoted 09:30 and +44… mean what they look like."""
    playbook = example_project / "playbooks" / "book_appointment.yaml"
    text = playbook.read_text()
    text = text.replace("enum: [booked, no_slot, declined]", "enum: [booked, no_slot, declined, no, on]")
    text = text.replace(
        "        declined: wrap_up\n", "        declined: wrap_up\n        no: wrap_up\n        on: wrap_up\n"
    )
    playbook.write_text(text)
    config = example_project / "tars.yaml"
    text = config.read_text().replace('from: "09:00"', "from: 09:30")
    config.write_text(text.replace('phone: "+447700900123"', "phone: +447700900123"))

    result = tars("--project", example_project, "validate")
    assert result.exit_code == 0, result.output
    shown = json.loads(tars("--project", example_project, "config", "show", "--json").stdout)
    assert shown["directory"]["dentist"]["hours"][0]["from"] == "09:30"
    assert shown["owner"]["phone"] == "+447700900123"


# ----------------------------------------------------------------- ${VAR} references


def _resolve(value: str, env: dict[str, str], dotenv: dict[str, str] | None = None) -> tuple[Any, list[str]]:
    doc = _load("v: placeholder\n")
    doc.data = {"v": value}
    problems = interpolate(doc, Environment(dotenv or {}, env))
    return doc.data["v"], [p.message for p in problems]


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {}, "d"),
        ("${A}-${B}", {"A": "1", "B": "2"}, "1-2"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("$$5 a month", {}, "$5 a month"),
        ("costs $5", {}, "costs $5"),
        ("$${1nope}", {}, "${1nope}"),
    ],
)
def test_references_resolve(value: str, env: dict[str, str], expected: str) -> None:
    resolved, problems = _resolve(value, env)
    assert problems == []
    assert resolved == expected


def test_resolved_values_remember_their_variables() -> None:
    resolved, _ = _resolve("${A}:${B:-b}", {"A": "a"})
    assert isinstance(resolved, FromEnv) and resolved.variables == ("A", "B")
    literal, _ = _resolve("$${A}", {})
    assert not isinstance(literal, FromEnv)


def test_environment_wins_over_dotenv() -> None:
    assert _resolve("${A}", {"A": "env"}, {"A": "file"})[0] == "env"
    assert _resolve("${A}", {}, {"A": "file"})[0] == "file"


@pytest.mark.parametrize(
    ("value", "env", "message"),
    [
        ("${A}", {}, "environment variable A is not set; export it or add 'A=…' to .env beside tars.yaml"),
        ("${A:?give me A}", {}, "environment variable A is not set: give me A"),
        ("${A:?give me A}", {"A": ""}, "environment variable A is empty: give me A"),
        ("${A?}", {}, "environment variable A is not set; export it or add 'A=…' to .env beside tars.yaml"),
        (
            "${A",
            {},
            "'${A' is not a valid reference: its closing '}' is missing; write ${NAME}, "
            "${NAME:-default} or ${NAME:?message} (and $$ for a literal dollar sign)",
        ),
        (
            "${1A}",
            {},
            "'${1A}' is not a valid reference: a name is letters, digits and underscores, "
            "not starting with a digit; write ${NAME}, ${NAME:-default} or ${NAME:?message} "
            "(and $$ for a literal dollar sign)",
        ),
    ],
)
def test_reference_problems(value: str, env: dict[str, str], message: str) -> None:
    assert _resolve(value, env)[1] == [message]


def test_dotenv_beside_tars_yaml(example_project: Path, tars: Any) -> None:
    config = example_project / "tars.yaml"
    config.write_text(config.read_text().replace("${GEMINI_API_KEY:-}", "${GEMINI_API_KEY}"))
    assert tars("--project", example_project, "validate").exit_code == 1
    (example_project / ".env").write_text("# local secrets\nGEMINI_API_KEY=from-the-dotenv-file\n")
    assert tars("--project", example_project, "validate").exit_code == 0


def test_masking() -> None:
    assert mask_text("token abcdef and abcdefgh", {"abcdef", "abcdefgh"}) == "token •••••• and ••••••"
    # A short secret is masked where it stands on its own, not inside longer numbers.
    assert mask_text("pin 123, call 41234", {"123"}) == "pin ••••••, call 41234"


def test_config_error_sorts_and_dedupes() -> None:
    from tars.config.diagnostics import Diagnostic

    b = Diagnostic("b.yaml", 1, 1, "$", "x")
    a2 = Diagnostic("a.yaml", 2, 1, "$", "y")
    a1 = Diagnostic("a.yaml", 1, 5, "$", "z")
    assert ConfigError([b, a2, a1, b]).diagnostics == [a1, a2, b]


@pytest.mark.parametrize(
    ("lines", "may"),
    [
        (["# yaml-language-server: $schema=../schemas/playbook.schema.json", "", "name: a"], False),
        (["name: a", "greeting: hello"], False),
        (["name: a", "token: ${TOKEN}"], True),
        (["name: a", "note: |", "  # ${NOT_A_COMMENT}"], True),  # a block scalar's line, not a comment
        (["name: a", 'token: "\\x24{TOKEN}"'], True),  # an escape that spells a '$'
    ],
)
def test_only_files_that_could_hold_a_reference_are_walked_for_one(lines: list[str], may: bool) -> None:
    from tars.config.sources import _may_reference

    assert _may_reference(lines) is may


def test_a_reference_in_a_block_scalar_line_that_looks_like_a_comment_resolves(tmp_path: Path) -> None:
    from tars.config.sources import read_sources

    (tmp_path / "tars.yaml").write_text("# header\nnote: |\n  # ${WHO}\n")
    sources = read_sources(tmp_path, Environment(env={"WHO": "Helen"}))
    assert sources.config.data["note"] == "# Helen\n"
