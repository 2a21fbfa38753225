"""Personas that change on the fly: by voice on the owner's call, written back to the YAML in
git with one changed line, in effect at once and on every later call; refused to anyone else."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tars.cli.app import app
from tars.emulators.gemini.emulator import CallTool, Say, ScriptedBrain
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then

HELEN = "+447700900456"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout


def in_git(root: Path) -> None:
    git(root, "init", "--quiet")
    git(root, "add", "-A")
    git(root, "-c", "user.name=Test", "-c", "user.email=test@example.com", "commit", "--quiet", "-m", "the example")


def changed_lines(root: Path, file: str) -> list[str]:
    """The lines ``git diff`` shows as removed or added in ``file`` (headers left out)."""
    diff = git(root, "diff", "--unified=0", "--", file).splitlines()
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def persona_cli(root: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--project", str(root), "persona", *args])


def history_rows(project: Any) -> list[Any]:
    from tars.store.database import connect
    from tars.store.persona_changes import history

    with connect(project.database_url) as db, db.session() as s:
        return history(s)


def greet_and_hang_up() -> ScriptedBrain:
    """Greets with the words TARS asked for and ends the call at once."""
    inner = greet_then()

    def step(session: Any, event: Any) -> list[Any]:
        [say] = inner.steps[0](session, event)
        return [say, CallTool("end_call", {"reason": "done"})]

    return ScriptedBrain([step])


async def ask_then_call_again(line: Line, owner: str, words: str) -> str:
    """The owner rings and says ``words``; once that call ends, rings again: the second
    call's greeting."""
    call = await line.call_in(from_=owner)
    await call.wait_for_agent_utterance(timeout=20)
    await call.say(words)
    assert await call.wait_ended(timeout=30) == "completed"
    again = await line.call_in(from_=owner)
    hello = await again.wait_for_agent_utterance(timeout=20)
    assert await again.wait_ended(timeout=30) == "completed"
    return str(hello.text)


def said_when_asked(*tool_and_after: Any) -> ScriptedBrain:
    """Greets; when the owner speaks, calls the tool; on its result, follows the rest."""
    return greet_then(*tool_and_after)


async def test_owner_sets_humour_by_voice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    in_git(project.root)
    first = said_when_asked(
        CallTool("change_persona", {"setting": "humor", "value": "75 percent", "reason": "lighten up"}),
        [Say("Humour at seventy-five percent, sir."), CallTool("end_call", {"reason": "done"})],
    )
    second = greet_and_hang_up()
    brains = iter([first, second])
    async with Line(project, lambda: next(brains)) as line:
        await ask_then_call_again(line, project.owner.phone, "set humour to 75 percent")
        await line.settle()
        before, after = (s.system_instruction for s in line.gemini.sessions)

    # The file: exactly one line changed, comments and layout kept.
    assert changed_lines(project.root, "personas/tars.yaml") == ["-humor: 35", "+humor: 75"]
    # The same call's model was told, in the tool's result.
    result = first.events[2].response
    assert result["to"] == "75" and result["from"] == "35"
    assert "Humour: 75/100" in result["now_in_effect"]
    # The next call starts with it; the first started without.
    assert "Humour: 35/100" in before and "Humour: 75/100" in after
    # Recorded, and shown by `tars persona history`.
    [row] = history_rows(project)
    assert (row.setting, row.old, row.new, row.result, row.source) == ("humor", "35", "75", "applied", "call")
    assert row.call_id is not None and row.reason == "lighten up"
    shown = persona_cli(project.root, "history")
    assert shown.exit_code == 0, shown.output
    assert "humor" in shown.output and "35 → 75" in shown.output and "lighten up" in shown.output


async def test_a_value_out_of_range_is_refused_and_the_file_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    original = (project.root / "personas/tars.yaml").read_bytes()
    brain = said_when_asked(
        CallTool("change_persona", {"setting": "humor", "value": "150"}),
        [Say("I'm afraid humour only goes to a hundred."), CallTool("end_call", {"reason": "done"})],
    )
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("set humour to 150 percent")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()

    answer = brain.events[2].response
    assert answer == {"error": "humour goes from 0 to 100; 150 is out of range, so it stays at 35"}
    assert (project.root / "personas/tars.yaml").read_bytes() == original
    [row] = history_rows(project)
    assert (row.result, row.setting, row.new) == ("refused", "humor", "150")
    assert "out of range" in (row.detail or "")


@pytest.mark.parametrize("caller", ["contact", "unknown"])
async def test_only_the_owner_may_change_the_persona(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caller: str
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    if caller == "contact":
        from tars.store.contacts import Rules, add_contact
        from tars.store.database import connect

        with connect(project.database_url) as db, db.session() as s:
            add_contact(s, Rules.of(project), name="Helen Price", phone=HELEN)
    number = HELEN if caller == "contact" else "+15005550006"
    original = (project.root / "personas/tars.yaml").read_bytes()
    brain = said_when_asked(
        CallTool("change_persona", {"setting": "humor", "value": "100"}),  # forged: never offered
        [Say("I cannot do that."), CallTool("end_call", {"reason": "done"})],
    )
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=number)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("set the humour to 100")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        [session] = line.gemini.sessions

    assert not {"change_persona", "switch_persona", "persona_settings"} & set(session.tool_names)
    assert brain.events[2].response == {
        "refused": f"'change_persona' is not available to the {caller} role on this call"
    }
    assert (project.root / "personas/tars.yaml").read_bytes() == original
    from tars.store.calls import call_details

    with line.db() as db, db.session() as s:
        record = call_details(s, call.sid)
    assert [(t.tool, t.allowed) for t in record.tools][:1] == [("change_persona", False)]


async def test_switching_persona_by_voice_commits_when_autocommit_is_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(
        tmp_path / "p", monkeypatch, [("tars.yaml", "persona: tars\n", "persona: {use: tars, autocommit: true}\n")]
    )
    butler = (project.root / "personas/tars.yaml").read_text()
    (project.root / "personas/ada.yaml").write_text(
        butler.replace("name: TARS", "name: Ada").replace("language: en-GB", "language: de-DE")
        .replace("owner: Good {{ time_of_day }}, sir. TARS", 'owner: "{{ salutation }}, sir. Ada')
        .replace("What can I do for you?", 'What can I do for you?"', 1)
    )  # fmt: skip
    in_git(project.root)
    brain = said_when_asked(
        CallTool("switch_persona", {"name": "Ada", "reason": "try the German one"}),
        [Say("Ada from now on."), CallTool("end_call", {"reason": "done"})],
    )
    second = greet_and_hang_up()
    brains = iter([brain, second])
    async with Line(project, lambda: next(brains)) as line:
        hello = await ask_then_call_again(line, project.owner.phone, "switch to Ada")
        await line.settle()
        later = line.gemini.sessions[1]

    assert brain.events[2].response.get("persona") == "Ada", brain.events[2].response
    # Committed: the work tree is clean again, and the commit says what and why.
    assert git(project.root, "status", "--porcelain") == ""
    message = git(project.root, "log", "-1", "--format=%B")
    assert "persona: use ada instead of tars" in message and "try the German one" in message
    assert git(project.root, "show", "--stat", "--format=", "HEAD").split()[0] == "tars.yaml"
    [row] = history_rows(project)
    assert row.commit and git(project.root, "rev-parse", "HEAD").strip() == row.commit
    # The next call speaks as Ada, in German.
    assert hello.split(",")[0] in ("Guten Morgen", "Guten Tag", "Guten Abend")
    assert "You are Ada" in later.system_instruction and "German (de-DE)" in later.system_instruction
    assert later.generation_config["speechConfig"]["languageCode"] == "de-DE"


async def test_a_playbook_calls_as_the_persona_it_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.server.harness import Receptionist, place

    root = tmp_path / "p"
    make_project(root, monkeypatch)
    butler = (root / "personas/tars.yaml").read_text()
    (root / "personas/ada.yaml").write_text(
        butler.replace("name: TARS", "name: Ada").replace("voice: Charon", "voice: Kore")
    )
    book = root / "playbooks/book_appointment.yaml"
    book.write_text(book.read_text().replace("role: delegate", "role: delegate\npersona: ada", 1))
    from tars.loading import load_project

    project = load_project(root)
    async with Line(project, Receptionist) as line:
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call = await line.twilio.next_call(timeout=10)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("We have Wednesday at 3pm")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        [session] = line.gemini.sessions

    assert placed["http"] == 201
    assert "You are Ada, a personal phone assistant." in session.system_instruction
    voice = session.generation_config["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"]
    assert voice == "Kore"
    assert project.persona.name == "TARS"  # the owner's own calls keep the active persona
