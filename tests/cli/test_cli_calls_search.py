"""`tars calls search`: every mistake gets a sentence saying what is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(
    ("args", "golden"),
    [
        (("?!",), "search_no_words.txt"),
        (("dentist", "--since", "the day the music died"), "search_bad_since.txt"),
        (("dentist", "--with", "Zebedee"), "search_nobody.txt"),
        (("dentist", "--kind", "voicemail"), "search_bad_kind.txt"),
        (("dentist", "--semantic"), "search_semantic_no_key.txt"),
    ],
)
def test_search_mistakes_get_a_clear_answer(
    example_project: Path,
    tars: Callable[..., Any],
    update_goldens: bool,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    golden: str,
) -> None:
    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))
    result = tars("--project", example_project, "calls", "search", *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    path = GOLDEN / golden
    if update_goldens:
        path.write_text(result.output, encoding="utf-8")
    assert result.output == path.read_text(encoding="utf-8")
