"""The fast schema check (jsonschema-rs) agrees with the explaining one (jsonschema), secrets
included, and a valid project is checked without importing jsonschema at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tars.config.diagnostics import ConfigError
from tars.config.schema import _fast_valid, validator_for
from tars.config.sources import read_sources
from tars.loading import load_project
from tests.config.test_config_corpus import CASES, build_case


def _documents(root: Path) -> list[tuple[str, Any]]:
    try:
        sources = read_sources(root)
    except ConfigError:
        return []  # the YAML itself is broken: no schema check happens
    return [
        ("tars", sources.config),
        *(("persona", d) for d in sources.personas.values()),
        *(("playbook", d) for d in sources.playbooks.values()),
    ]


@pytest.mark.parametrize("name", CASES)
def test_fast_and_explaining_validators_agree_on_the_corpus(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    case = build_case(name, root)
    for key, value in case.get("env", {}).items():
        monkeypatch.setenv(key, value)
    for kind, doc in _documents(root):
        slow_valid = not any(True for _ in validator_for(kind).iter_errors(doc.data))
        assert _fast_valid(doc.data, kind) == slow_valid, f"{name}: {doc.name}"


def test_a_reference_in_a_persona_or_playbook_is_checked(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jsonschema-rs refuses str subclasses: a ${VAR} value (FromEnv) must reach it as text."""
    persona = next((example_project / "personas").glob("*.yaml"))
    text = persona.read_text()
    persona.write_text(text.replace("\nname: ", '\nname: "${BOT_NAME}"\n_was: ', 1))
    monkeypatch.setenv("BOT_NAME", "Robin")
    with pytest.raises(ConfigError) as info:
        load_project(example_project)
    assert [d.code for d in info.value.diagnostics] == ["schema.unknown_key"]  # _was, and nothing else

    persona.write_text(text.replace("\nname: ", '\nname: "${BOT_NAME}"\n#: ', 1))
    assert load_project(example_project).persona.name == "Robin"


def test_a_secret_whose_value_is_also_written_out_is_still_valid(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast check flags a secret whose text appears in plain text in the file; then the
    explaining validator decides, and a ${VAR} is fine whatever its value."""
    config = example_project / "tars.yaml"
    owner_name = load_project(example_project).owner.name
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", owner_name)
    assert "${TWILIO_AUTH_TOKEN" in config.read_text()
    assert load_project(example_project).owner.name == owner_name


def test_a_secret_in_plain_text_is_refused(example_project: Path) -> None:
    config = example_project / "tars.yaml"
    text = config.read_text()
    start = text.index("auth_token: ") + len("auth_token: ")
    config.write_text(text[:start] + "hunter2-is-my-token" + text[text.index("\n", start) :])
    with pytest.raises(ConfigError) as info:
        load_project(example_project)
    assert [d.code for d in info.value.diagnostics] == ["schema.secret"]
