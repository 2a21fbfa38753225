"""Changing one value in a YAML file the way a person would: only that line differs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tars.config.write_back import WriteBackError, set_value

PERSONA = """\
# yaml-language-server: $schema=../schemas/persona.schema.json
#
# A comment that must stay.
name: 'Ada'   # quoted, with a comment after it
language: de-DE
humor: 35     # aligned comment
greetings: {owner: "Hallo", contact: Hallo, unknown: Hallo}
style_notes: |
  Keep it short.
  Two lines.
"""


def changed(before: str, after: str) -> list[tuple[str, str]]:
    return [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]


def test_a_value_changes_on_its_line_alone(tmp_path: Path) -> None:
    path = tmp_path / "ada.yaml"
    path.write_text(PERSONA)
    path.chmod(0o640)
    edited = set_value(path, ["humor"], 75)
    assert (edited.old, edited.new) == (35, 75)
    after = path.read_text()
    assert changed(PERSONA, after) == [("humor: 35     # aligned comment", "humor: 75     # aligned comment")]
    assert path.stat().st_mode & 0o777 == 0o640
    set_value(path, ["name"], "Eve")
    assert "name: 'Eve'   # quoted, with a comment after it" in path.read_text()


def test_an_absent_key_is_added_after_its_neighbour(tmp_path: Path) -> None:
    path = tmp_path / "ada.yaml"
    path.write_text(PERSONA)
    set_value(path, ["honesty"], 80, insert_after=["humor"])
    lines = path.read_text().splitlines()
    assert lines[lines.index("humor: 35     # aligned comment") + 1] == "honesty: 80"
    assert len(lines) == len(PERSONA.splitlines()) + 1


@pytest.mark.parametrize(
    ("text", "keys", "message"),
    [
        ("name: [unclosed\n", ["name"], "is not valid YAML; fix it first"),
        ("- a list\n", ["name"], "does not hold a mapping"),
        ("persona: tars\n", ["persona", "use"], "has no mapping at persona"),
    ],
)
def test_a_file_it_cannot_change_is_left_as_it_was(tmp_path: Path, text: str, keys: list[str], message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(WriteBackError, match=message):
        set_value(path, keys, "x")
    assert path.read_text() == text
