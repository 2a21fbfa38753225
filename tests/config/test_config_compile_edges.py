"""Cases found by probing the cross-reference pass: projects the schema pass lets through
to the graph compiler, which must answer with diagnostics, never a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tars.config.diagnostics import ConfigError
from tars.loading import load_project

OUTCOME = """\
      status: {type: string, enum: [booked, no_slot, declined]}
      when: {type: string, format: date-time, description: The booked slot.}
      notes: {type: string}
"""


def test_outcome_properties_as_a_list(example_project: Path) -> None:
    playbook = example_project / "playbooks" / "book_appointment.yaml"
    text = playbook.read_text()
    assert OUTCOME in text
    playbook.write_text(text.replace("    properties:\n" + OUTCOME, "    properties: [status, when]\n"))
    with pytest.raises(ConfigError) as caught:
        load_project(example_project)
    assert any(d.path.startswith("$.outcome.schema.properties") for d in caught.value.diagnostics)


def test_enum_written_as_a_string_is_not_spelt_out(example_project: Path, tars: Any) -> None:
    playbook = example_project / "playbooks" / "book_appointment.yaml"
    text = playbook.read_text()
    playbook.write_text(text.replace("enum: [booked, no_slot, declined]", "enum: booked"))
    result = tars("--project", example_project, "validate")
    assert result.exit_code == 1
    assert "outcome schema is not valid JSON Schema" in result.output
    assert "one of: b, o, o, k, e, d" not in result.output
