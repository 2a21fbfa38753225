"""`tars serve` asks the Gemini API (the emulator here) whether its models exist before it starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tars.emulators.gemini.emulator import GeminiEmulator
from tests.server.harness import API_KEY, make_project


@pytest.fixture
def gemini(monkeypatch: pytest.MonkeyPatch) -> Iterator[GeminiEmulator]:
    with GeminiEmulator(api_key=API_KEY).running_in_thread() as emu:
        monkeypatch.setenv("TARS_GEMINI_CA_FILE", emu.ca_file)
        yield emu


def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gemini: GeminiEmulator, *edits: tuple[str, str]) -> str:
    from tars.cli.app import app

    changes = [("tars.yaml", "  voice: Charon\n", f"  voice: Charon\n  base_url: {gemini.base_url}\n")]
    project = make_project(tmp_path / "p", monkeypatch, [*changes, *(("tars.yaml", a, b) for a, b in edits)])
    result = CliRunner().invoke(app, ["--project", str(project.root), "serve", "--port", "1"])
    assert result.exit_code == 1, result.output
    return " ".join(result.output.split())


def test_a_misspelt_live_model_stops_serve_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gemini: GeminiEmulator
) -> None:
    said = serve(tmp_path, monkeypatch, gemini, ("models/gemini-3.8-live", "models/gemini-3.8-lvie"))
    assert "model.live_model is 'models/gemini-3.8-lvie', which is not a model the Gemini API offers." in said
    assert "model.text_model" not in said
    assert [path for _, method, path in gemini.requests if method == "GET"] == [
        "/v1beta/models/gemini-3.8-lvie",
        "/v1beta/models/gemini-3.5-flash",
    ]


def test_a_misspelt_text_model_stops_serve_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gemini: GeminiEmulator
) -> None:
    said = serve(tmp_path, monkeypatch, gemini, ("gemini-3.5-flash", "gemini-3.5-flsh"))
    assert "model.text_model is 'gemini-3.5-flsh', which is not a model the Gemini API offers." in said


def test_a_text_model_as_the_live_model_stops_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gemini: GeminiEmulator
) -> None:
    said = serve(tmp_path, monkeypatch, gemini, ("models/gemini-3.8-live", "models/gemini-3.5-flash"))
    assert "model.live_model is 'models/gemini-3.5-flash', which does not support bidiGenerateContent." in said


def test_a_refused_api_key_stops_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gemini: GeminiEmulator) -> None:
    gemini.api_key = "another-key"
    said = serve(tmp_path, monkeypatch, gemini)
    assert "The Gemini API refused model.api_key when asked about model.live_model" in said
    assert "API key not valid" in said
