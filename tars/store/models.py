"""The tables. Every timestamp is timezone-aware UTC (``UTCDateTime``); statuses are plain
strings checked by the database; free-form data (playbook inputs, outcomes, tool arguments)
is JSON.

Changing a table here means a new migration in ``migrations/versions`` (and bumping
``schema.HEAD``); a test compares the migrated database with these models.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, ForeignKey, Index, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel

from tars.store.columns import UTCDateTime

# Stable constraint names, so later migrations (and SQLite batch mode) can refer to them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

REMINDER_STATUSES = ("pending", "delivering", "delivered", "failed", "cancelled")
CHANNELS = ("call", "sms", "webhook", "default")
CALL_STATUSES = (
    "queued",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "no-answer",
    "failed",
    "voicemail",
)
CALL_DIRECTIONS = ("inbound", "outbound")
OUTCOME_SOURCES = ("recorded", "extracted", "unknown")
MESSAGE_STATUSES = ("pending", "delivered", "failed")
#: Messages between live calls and the owner (``CallMessage``).
CALL_MESSAGE_KINDS = ("question", "note", "report")
CALL_MESSAGE_STATUSES = ("pending", "delivered", "answered", "expired", "failed")


#: JSON where Python None is SQL NULL (not the JSON text 'null').
_JSON = JSON(none_as_null=True)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


def _fk(target: str, ondelete: str) -> Any:
    return Column(Integer, ForeignKey(target, ondelete=ondelete), nullable=True, index=True)


class Contact(SQLModel, table=True):
    """Someone the owner knows. Unknown numbers have no row; ``role`` is a role name from
    tars.yaml (``contact`` by default) or ``blocked``."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    #: The name casefolded and without accents: unique, so "Zoë" and "zoe" are one person.
    name_key: str = Field(max_length=200, unique=True)
    phone: str = Field(max_length=32, index=True)  # E.164
    email: str | None = Field(default=None, max_length=320)
    relationship: str | None = Field(default=None, max_length=100)
    #: ISO 8601: "1990-04-15", or "--04-15" when the year is not known (as vCard writes it).
    birthday: str | None = Field(default=None, max_length=10)
    notes: str | None = Field(default=None, sa_type=Text)
    role: str = Field(default="contact", max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Reminder(SQLModel, table=True):
    """Something to tell the owner at ``due``. A deliverer takes a *lease* on it
    (``claim_due``); if the deliverer dies, the lease runs out and another one takes it."""

    __table_args__ = (
        _one_of("status", REMINDER_STATUSES, "status"),
        _one_of("channel", CHANNELS, "channel"),
        Index("ix_reminder_status_due", "status", "due"),
    )

    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(sa_type=Text)
    due: dt.datetime = Field(sa_type=UTCDateTime)
    #: The owner's timezone when it was made: repeats keep wall-clock time in it.
    timezone: str = Field(max_length=64)
    #: RFC 5545 RRULE ("FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0") or None.
    recurrence: str | None = Field(default=None, max_length=500)
    #: DTSTART of the repeat (its first occurrence): anchors COUNT and INTERVAL.
    series_start: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    channel: str = Field(default="default", max_length=16)
    contact_id: int | None = Field(default=None, sa_column=_fk("contact.id", "SET NULL"))
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_type=Text)
    delivered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: After a failed attempt: not before this time.
    retry_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: The last delivery came late: it fell due while no TARS server was running.
    late: bool = Field(default=False)
    #: None for the owner's own reminders; "birthday" for one TARS keeps for a contact's
    #: birthday (``contact_id``), moved or cancelled when the contact changes.
    kind: str | None = Field(default=None, max_length=16)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Call(SQLModel, table=True):
    """One phone call, in or out: who, why (playbook and inputs), how it went.

    A goal call for later is a ``queued`` row with ``scheduled_at`` and no ``sid`` yet; the
    scheduler claims it with a lease (``lease_owner``/``lease_expires_at``) and places it. A
    retry after busy or no answer is a new row (``attempt`` + 1, ``retry_of`` the call it
    retries); ``follow_up`` records on the ended call what was decided: "retry" or "none".
    ``reminder_id`` marks a call placed to announce a reminder. While the owner is on a call,
    the server holding its media stream renews ``live_on``/``live_until`` so other servers
    leave the owner's reminders to it (they are announced in that call).

    The newer columns are plain integers without foreign keys on purpose: adding them is an
    ``ALTER TABLE … ADD COLUMN`` on SQLite, never a table copy (which, with foreign keys on,
    would cascade-delete every transcript line).

    What outlives one media stream is here too, so any server can take the next webhook or
    stream of a call: ``callee`` (the name the call is placed to), ``late`` and
    ``reminder_lease`` (a reminder call's claim), the playbook's ``step`` and ``run_state``
    across a keypad handover (``resume_digits`` is set while the fresh stream is awaited),
    ``requested_by`` (the owner's call that asked for this goal call) and ``report_via``,
    ``after_outcome`` (tool calls to run once the outcome is known: "then email me"),
    ``window_override`` (placed outside its calling window with ``tars call --now``), and
    the live session: ``role`` and the ``live_on``/``live_until`` heartbeat of the server
    holding the stream.
    """

    __table_args__ = (
        _one_of("status", CALL_STATUSES, "status"),
        _one_of("direction", CALL_DIRECTIONS, "direction"),
        Index("ix_call_retry_of", "retry_of", unique=True),  # one retry per attempt, whoever schedules it
        Index("ix_call_status_scheduled_at", "status", "scheduled_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sid: str | None = Field(default=None, max_length=64, unique=True)  # Twilio call SID
    direction: str = Field(max_length=16)
    from_number: str = Field(max_length=32)
    to_number: str = Field(max_length=32)
    contact_id: int | None = Field(default=None, sa_column=_fk("contact.id", "SET NULL"))
    playbook: str | None = Field(default=None, max_length=200)
    inputs: dict[str, Any] | None = Field(default=None, sa_type=_JSON)
    status: str = Field(default="queued", max_length=16)
    started_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: dict[str, Any] | None = Field(default=None, sa_type=_JSON)
    #: "recorded" (the model called record_outcome), "extracted" (read after the call from the
    #: transcript lines it cites) or "unknown" (nothing supports one; ``outcome`` says why).
    outcome_source: str | None = Field(default=None, max_length=16)
    summary: str | None = Field(default=None, sa_type=Text)
    recording_path: str | None = Field(default=None, max_length=1000)
    failure_reason: str | None = Field(default=None, sa_type=Text)
    #: A queued call to place at this time (None: placed at once).
    scheduled_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempt: int = Field(default=1)
    retry_of: int | None = Field(default=None)
    follow_up: str | None = Field(default=None, max_length=16)  # None, "retry" or "none"
    reminder_id: int | None = Field(default=None, index=True)
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    live_on: str | None = Field(default=None, max_length=200)
    live_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    callee: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=64)
    late: bool = Field(default=False)
    reminder_lease: str | None = Field(default=None, max_length=200)
    step: str | None = Field(default=None, max_length=200)
    run_state: dict[str, Any] | None = Field(default=None, sa_type=_JSON)
    resume_digits: str | None = Field(default=None, max_length=64)
    requested_by: int | None = Field(default=None)
    report_via: str | None = Field(default=None, max_length=16)
    after_outcome: list[Any] | None = Field(default=None, sa_type=_JSON)
    window_override: str | None = Field(default=None, sa_type=Text)  # placed outside its calling window, and why
    #: "voice" (a phone call) or "text" (a text session: SMS, n8n or ``tars send``).
    kind: str = Field(default="voice", max_length=8, sa_column_kwargs={"server_default": "voice"})
    #: A text session from n8n: where its signed result is POSTed when it ends.
    reply_to: str | None = Field(default=None, sa_type=Text)
    #: Web pages Google Search grounding drew on (``google_search``): [{"uri", "title", "query"}].
    sources: list[Any] | None = Field(default=None, sa_type=_JSON)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TranscriptLine(SQLModel, table=True):
    """One thing said on a call."""

    __tablename__ = "transcript_line"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(
        sa_column=Column(Integer, ForeignKey("call.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    speaker: str = Field(max_length=32)  # "assistant", "caller", "system", …
    text: str = Field(sa_type=Text)


class ToolInvocation(SQLModel, table=True):
    """A tool the model asked for on a call, whether the gate allowed it, and what came back."""

    __tablename__ = "tool_invocation"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(
        sa_column=Column(Integer, ForeignKey("call.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    tool: str = Field(max_length=200)
    arguments: dict[str, Any] | None = Field(default=None, sa_type=_JSON)
    result: Any = Field(default=None, sa_type=_JSON, nullable=True)
    allowed: bool
    reason: str | None = Field(default=None, sa_type=Text)
    duration_ms: int | None = Field(default=None)


#: A transfer's kind: ``cold`` (the caller is dialled straight through) or ``warm`` (the caller holds
#: while the target is briefed and says yes); ``join`` is the owner taking over a goal call.
TRANSFER_KINDS = ("cold", "warm", "join")
#: Where a transfer stands: ``refused`` (the rules said no; ``reason`` says why), ``ringing``,
#: ``connected`` (the two are talking), then ``completed``, or ``busy``, ``no-answer``,
#: ``declined``, ``failed`` (the caller is back with TARS).
TRANSFER_RESULTS = ("refused", "ringing", "connected", "completed", "busy", "no-answer", "declined", "failed")


class CallTransfer(SQLModel, table=True):
    """One attempt to put a call through: who asked, to whom (``target`` as the rules name it,
    ``number`` dialled), cold or warm, and how it went. Any server takes its webhooks: the
    caller's call SID and the target leg's SID live here, not in memory."""

    __tablename__ = "call_transfer"
    __table_args__ = (_one_of("kind", TRANSFER_KINDS, "kind"), _one_of("result", TRANSFER_RESULTS, "result"))

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(
        sa_column=Column(Integer, ForeignKey("call.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    kind: str = Field(max_length=8)
    target: str = Field(max_length=200)
    target_name: str | None = Field(default=None, max_length=200)
    number: str | None = Field(default=None, max_length=32)
    requested_by: str | None = Field(default=None, max_length=200)
    about: str | None = Field(default=None, sa_type=Text)
    brief: str | None = Field(default=None, sa_type=Text)
    result: str = Field(default="ringing", max_length=16)
    reason: str | None = Field(default=None, sa_type=Text)
    leg_sid: str | None = Field(default=None, max_length=64)
    resumed: bool = Field(default=False)
    started_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    answered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    talk_seconds: int | None = Field(default=None)


class Message(SQLModel, table=True):
    """A message taken for the owner (by ``take_message``), waiting to reach them."""

    __table_args__ = (_one_of("status", MESSAGE_STATUSES, "status"),)

    id: int | None = Field(default=None, primary_key=True)
    call_id: int | None = Field(default=None, sa_column=_fk("call.id", "SET NULL"))
    caller_number: str | None = Field(default=None, max_length=32)
    caller_name: str | None = Field(default=None, max_length=200)
    text: str = Field(sa_type=Text)
    status: str = Field(default="pending", max_length=16)
    delivered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CallMessage(SQLModel, table=True):
    """A message between a live call and the owner: a goal call's ``question`` (answered in
    ``answer``), a one-way ``note``, or a finished goal call's ``report``.

    ``to_call_id`` is the owner's live call it is said in (``channel`` "call"), or None when
    it went by SMS (``channel`` "sms", carrying ``code`` so the reply reaches this question).
    Stored before it is sent, so a restart loses nothing; any server delivers it.
    """

    __tablename__ = "call_message"
    __table_args__ = (
        _one_of("kind", CALL_MESSAGE_KINDS, "kind"),
        _one_of("status", CALL_MESSAGE_STATUSES, "status"),
        Index("ix_call_message_status_code", "status", "code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    from_call_id: int | None = Field(default=None, index=True)
    to_call_id: int | None = Field(default=None, index=True)
    text: str = Field(sa_type=Text)
    code: str | None = Field(default=None, max_length=8)
    channel: str | None = Field(default=None, max_length=16)
    status: str = Field(default="pending", max_length=16)
    answer: str | None = Field(default=None, sa_type=Text)
    expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PinLockout(SQLModel, table=True):
    """Wrong owner PINs, counted across calls: one row per calling number and one for all
    callers (``scope`` "*"). After too many failures ``locked_until`` is set, with a backoff
    that doubles on each lockout; a right PIN clears the number's row. Wrong API tokens at the
    web view's sign-in are counted the same way, under scopes starting ``web:``."""

    __tablename__ = "pin_lockout"

    scope: str = Field(primary_key=True, max_length=64)
    failures: int = Field(default=0)
    lockouts: int = Field(default=0)
    locked_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UsedStreamToken(SQLModel, table=True):
    """A signed stream token that opened a media stream: each is accepted once. Kept until
    it expires (it could not verify after that anyway), then swept."""

    __tablename__ = "used_stream_token"

    mac: str = Field(primary_key=True, max_length=64)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime, index=True)


class PersonaChange(SQLModel, table=True):
    """A change to a persona asked for by voice or with ``tars persona`` — applied or refused.

    ``setting`` is a persona key (humor, honesty, …) or ``active`` for the persona in use;
    ``old``/``new`` are as written in YAML; ``result`` is ``applied`` or ``refused``, with
    ``detail`` saying why; ``commit`` is the git commit that recorded it (autocommit)."""

    __tablename__ = "persona_change"
    __table_args__ = (CheckConstraint("result IN ('applied', 'refused')", name="result"),)

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    persona: str = Field(max_length=128)
    setting: str = Field(max_length=32)
    old: str | None = Field(default=None, max_length=256)
    new: str = Field(max_length=256)
    by: str = Field(max_length=128)  # who asked: "owner (call 12)", "cli"
    source: str = Field(max_length=16)  # "call" or "cli"
    call_id: int | None = Field(default=None, sa_column=_fk("call.id", "SET NULL"))
    reason: str | None = Field(default=None, sa_type=Text)
    result: str = Field(default="applied", max_length=16)
    detail: str | None = Field(default=None, sa_type=Text)
    commit: str | None = Field(default=None, max_length=64)


#: What a refused inbound request was refused for (``SecurityEvent.kind``).
SECURITY_KINDS = ("twilio_signature", "stream_token", "pin_lockout", "api_token")


class SecurityEvent(SQLModel, table=True):
    """An inbound request TARS refused: a webhook with a bad Twilio signature, a media stream
    with bad or used parameters, a PIN refused while PIN entry is locked (or the lockout
    itself), a local API request with a wrong token. ``detail`` says what was refused and why,
    never a secret; ``source`` is the client address or the calling number."""

    __tablename__ = "security_event"
    __table_args__ = (_one_of("kind", SECURITY_KINDS, "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    kind: str = Field(max_length=32)
    detail: str = Field(sa_type=Text)
    source: str | None = Field(default=None, max_length=128)


class SecurityAlert(SQLModel, table=True):
    """When the owner was last told of each kind of security event: at most one message per
    kind per ``tars.store.security_events.ALERT_EVERY``, however many processes refuse."""

    __tablename__ = "security_alert"

    kind: str = Field(primary_key=True, max_length=32)
    sent_at: dt.datetime = Field(sa_type=UTCDateTime)


class HookRequest(SQLModel, table=True):
    """A signed request to ``/hooks/…`` (n8n): its id, accepted once. Kept until its
    timestamp could not verify any more, then swept."""

    __tablename__ = "hook_request"

    request_id: str = Field(primary_key=True, max_length=128)
    source: str = Field(max_length=32)  # "n8n"
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime, index=True)


class CallEmbedding(SQLModel, table=True):
    """What a call is about, as a vector (``tars calls search --semantic``): one per call,
    float32 little-endian in a plain BLOB/bytea (brute-force cosine; no vector extension).

    ``digest`` is a hash of the text that was embedded and the model: when the call's
    summary or transcript changes, or another model is configured, it is embedded again."""

    __tablename__ = "call_embedding"

    call_id: int = Field(
        sa_column=Column(Integer, ForeignKey("call.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    )
    model: str = Field(max_length=200)
    dimensions: int
    digest: str = Field(max_length=64)
    vector: bytes = Field(sa_type=LargeBinary)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
