"""`tars calls play / export / delete`: a recorded call played, written out as WAV or JSON,
and deleted with its recording; a clear word for every mistake."""

from __future__ import annotations

import datetime as dt
import json
import os
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
CALLER = "+15005550006"


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project with four calls: 1 recorded, 2 not, 3 recorded but its file
    gone, 4 still in progress; and 5 scheduled for tomorrow."""
    from tars.calls.recording import private_folder, recording_file
    from tars.loading import load_project
    from tars.store.calls import add_line, start_call
    from tars.store.database import connect

    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))
    monkeypatch.chdir(example_project)
    loaded = load_project(example_project)
    state = loaded.state_dir
    private_folder(state / "recordings")
    ended = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    with connect(loaded.database_url) as db, db.session() as s:
        for number in range(1, 5):
            live = number == 4
            call = start_call(
                s, direction="inbound", from_number=CALLER, to_number="+447700900999",
                status="in-progress" if live else "completed", started_at=ended - dt.timedelta(minutes=1),
                ended_at=None if live else ended,
            )  # fmt: skip
            add_line(s, int(call.id), "caller", f"This is call {number}", ended)
            if number in (1, 3, 4):
                call.recording_path = str(recording_file(state, int(call.id)))
        start_call(
            s, direction="outbound", from_number="+447700900999", to_number="+442079460123",
            playbook="book_appointment",
            scheduled_at=ended + dt.timedelta(days=30), callee="Bright Smile Dental",
        )  # fmt: skip
    for number in (1, 4):
        with wave.open(str(recording_file(state, number)), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(b"\x01\x00\x02\x00" * 8000)
        os.chmod(recording_file(state, number), 0o600)
    return example_project


def recording(root: Path, number: int) -> Path:
    return root / ".tars" / "recordings" / f"call-{number}.wav"


def test_play_hands_the_file_to_a_player(project: Path, tars: Callable[..., Any], tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    player = bin_dir / "aplay"
    player.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "played"}\n')
    player.chmod(0o755)
    result = tars("--project", project, "calls", "play", "1", env={"PATH": str(bin_dir)})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "played").read_text().split() == ["-q", str(recording(project, 1))]
    assert result.output.startswith("Playing call 1 (")


def test_play_without_a_player_says_where_the_file_is(project: Path, tars: Callable[..., Any], tmp_path: Path) -> None:
    result = tars("--project", project, "calls", "play", "1", env={"PATH": str(tmp_path)})
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert said.startswith("No audio player found (aplay, ffplay or afplay). The recording of call 1 is ")
    assert str(recording(project, 1)) in result.output.replace("\n", "")
    assert said.endswith("any audio player opens, or copy it elsewhere with `tars calls export 1`.")


def test_export_writes_the_recording_and_the_call(project: Path, tars: Callable[..., Any], tmp_path: Path) -> None:
    wav_out, json_out = tmp_path / "out.wav", tmp_path / "out.json"
    result = tars("--project", project, "calls", "export", "1", "--output", wav_out)
    assert result.exit_code == 0, result.output
    assert wav_out.read_bytes() == recording(project, 1).read_bytes()
    assert wav_out.stat().st_mode & 0o777 == 0o600
    result = tars("--project", project, "calls", "export", "2", "--format", "json", "-o", json_out)
    assert result.exit_code == 0, result.output
    exported = json.loads(json_out.read_text())
    assert exported["id"] == 2 and exported["recording_path"] is None
    assert [line["text"] for line in exported["transcript"]] == ["This is call 2"]
    piped = tars("--project", project, "calls", "export", "2", "-f", "json", "-o", "-")  # for a pipe
    assert piped.exit_code == 0 and json.loads(piped.output) == exported
    default = tars("--project", project, "calls", "export", "1")  # call-1.wav, here
    assert default.exit_code == 0 and (project / "call-1.wav").exists()


def test_delete_takes_the_call_and_its_recording(project: Path, tars: Callable[..., Any]) -> None:
    assert recording(project, 1).exists()
    result = tars("--project", project, "calls", "delete", "1")
    assert result.exit_code == 0, result.output
    assert result.output == f"✓ Deleted call 1 ({CALLER}) and its recording\n"
    assert not recording(project, 1).exists()
    gone = tars("--project", project, "calls", "show", "1")
    assert gone.exit_code == 1 and "no call '1'" in gone.output
    listed = json.loads(tars("--project", project, "calls", "list", "--json").output)
    assert sorted(c["id"] for c in listed) == [2, 3, 4, 5]
    assert recording(project, 4).exists()  # other recordings stay
    from sqlmodel import select

    from tars.loading import load_project
    from tars.store.database import connect
    from tars.store.models import TranscriptLine

    with connect(load_project(project).database_url) as db, db.session() as s:
        lines = s.exec(select(TranscriptLine.call_id)).all()
    assert sorted(lines) == [2, 3, 4]  # call 1's transcript went with it


@pytest.mark.parametrize(
    ("args", "golden"),
    [
        (("play", "2"), "recording_not_recorded.txt"),
        (("play", "3"), "recording_file_gone.txt"),
        (("export", "2"), "recording_export_not_recorded.txt"),
        (("export", "1", "--output", "tars.yaml"), "recording_export_exists.txt"),
        (("play", "9"), "recording_no_such_call.txt"),
        (("delete", "4"), "recording_delete_live.txt"),
        (("delete", "5"), "recording_delete_scheduled.txt"),
        (("delete", "9"), "recording_delete_no_such_call.txt"),
    ],
)
def test_mistakes_get_a_clear_answer(
    project: Path, tars: Callable[..., Any], update_goldens: bool, args: tuple[str, ...], golden: str
) -> None:
    before = sorted(p.name for p in (project / ".tars" / "recordings").iterdir())
    result = tars("--project", project, "calls", *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in (project / ".tars" / "recordings").iterdir()) == before
    path = GOLDEN / golden
    if update_goldens:
        path.write_text(result.output, encoding="utf-8")
    assert result.output == path.read_text(encoding="utf-8")


def test_a_format_that_does_not_exist_is_a_usage_error(project: Path, tars: Callable[..., Any]) -> None:
    result = tars("--project", project, "calls", "export", "1", "--format", "mp3")
    assert result.exit_code == 2
    assert "'mp3' is not one of 'wav', 'json'" in result.output


def test_the_rendered_first_words_carry_the_notice_of_a_recorded_role(project: Path, tars: Callable[..., Any]) -> None:
    config = project / "tars.yaml"
    unknown = "    tools: [take_message, end_call]\n"
    config.write_text(config.read_text().replace(unknown, unknown + "    recording: {enabled: true, announce: true}\n"))
    shown = tars("--project", project, "persona", "show", "--rendered", "--role", "unknown")
    assert shown.exit_code == 0, shown.output
    first = shown.output.split("# first words\n", 1)[1].strip()
    assert first.endswith("may I take a message? Please note that this call is recorded.")
    owner = tars("--project", project, "persona", "show", "--rendered", "--role", "owner")
    assert "recorded" not in owner.output.split("# first words\n", 1)[1]
