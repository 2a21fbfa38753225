"""State of the emulated Gemini Live service: sessions, options and records.

A ``LiveSession`` is one model conversation. It outlives a websocket: a client
that reconnects with a ``sessionResumption.handle`` gets the same session back
(same brain, same transcript), which is what pipecat relies on when it
reconnects after a dropped connection without reseeding the history. Everything
the client sent is kept here, normalised and time-stamped, for assertions.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from aiohttp import web

from tars.emulators import speech
from tars.emulators.gemini.brain import Brain, BrainFactory
from tars.emulators.gemini.delivery import REALISTIC
from tars.emulators.gemini.limits import AUDIO_SESSION_LIMIT_S, CONNECTION_LIMIT_S, GO_AWAY_LEAD_S, HANDLE_LIFETIME_S
from tars.emulators.gemini.models import ModelCatalogue


class ClientFrame(NamedTuple):
    """One received client frame, normalised. ``raw_key`` is the key as sent."""

    t: float
    key: str
    raw_key: str
    data: dict[str, Any]
    connection: int


class Violation(NamedTuple):
    """A protocol violation the emulator closed the socket for."""

    t: float
    code: int
    reason: str
    session_id: str | None


@dataclass
class LiveOptions:
    """Behaviour knobs shared by every connection of one emulator."""

    api_key: str
    brain_factory: BrainFactory
    response_delay_ms: int = 0
    pacing: float = 0.0  # 1.0 = real time, 0 = as fast as possible
    chunk_ms: int = 100
    end_silence_ms: int = 500
    end_of_turn_after_bytes: int | None = None
    speech_body_ms: int | None = None  # fixed voiced length of model speech (None: grows with text)
    speech_threshold: float = speech.DEFAULT_THRESHOLD
    models: ModelCatalogue = field(default_factory=ModelCatalogue)
    # How model output is delivered (delivery): audio parts per serverContent message,
    # transcriptions in fragments of this many characters (None: one per sentence, after its
    # audio), audio messages sent together before a pause (pacing then slower than real time).
    # Untidy as the service by default (delivery.REALISTIC); delivery.TIDY is the opt-out.
    parts_per_message: int = REALISTIC["parts_per_message"]
    transcription_chars: int | None = REALISTIC["transcription_chars"]
    burst_messages: int = REALISTIC["burst_messages"]
    session_limit_s: float | None = AUDIO_SESSION_LIMIT_S  # None: sessions never time out
    connection_limit_s: float | None = CONNECTION_LIMIT_S  # None: connections never time out
    go_away_lead_s: float = GO_AWAY_LEAD_S
    handle_lifetime_s: float | None = HANDLE_LIFETIME_S  # None: handles never expire
    keep_frames: bool = False  # keep every sent frame whole in LiveSession.frames_sent
    # How long a connect takes before setupComplete (TLS, the upgrade, the setup): 0 here; a
    # benchmark sets a realistic 700 ms (the figure issue 18 takes for the real service).
    connect_delay_ms: int = 0


@dataclass
class LiveSession:
    """A model conversation; survives reconnects made with its resumption handle."""

    id: str
    brain: Brain
    setup: dict[str, Any]
    setups: list[dict[str, Any]] = field(default_factory=list)
    frames: list[ClientFrame] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # audio data replaced by its size
    history: list[dict[str, str]] = field(default_factory=list)  # client_content turns
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (user|model, text)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    searches: list[dict[str, Any]] = field(default_factory=list)  # groundingMetadata sent (Search)
    cancellations: list[dict[str, Any]] = field(default_factory=list)  # toolCallCancellation sent (t, ids, by)
    context_results: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # SILENT results
    violations: list[Violation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # emulator-side failures (bugs)
    handles: list[str] = field(default_factory=list)
    connections: int = 0
    connected: bool = False
    started: bool = False
    interruptions: int = 0
    audio_bytes_in: int = 0
    # (when the caller audio that ended a turn arrived, when the reply's first audio frame
    # was sent), monotonic: the emulator's own share of a turn's latency, for benchmarks
    turn_timings: list[tuple[float, float]] = field(default_factory=list)
    max_frame_bytes: int = 0
    # (when the conversation was started, its first audio frame sent), monotonic: the model's
    # own share of the first words, for benchmarks
    asked_at: float | None = None
    first_audio_at: float | None = None
    opened_at: float = field(default_factory=time.monotonic)  # the first setup
    ended: tuple[int, str] | None = None  # (close code, reason) once the service ended it
    closed_at: float | None = None  # when its latest connection ended (handles expire from then)
    frames_sent: list[dict[str, Any]] = field(default_factory=list)  # only with keep_frames
    state: dict[str, Any] = field(default_factory=dict)  # free scratch space for brains
    stalled: bool = False  # a Stall("session"): every connection of this session stays quiet
    unanswered: list[tuple[int, str]] = field(default_factory=list)  # (connection, text) heard in a stall
    _pending_text: list[str] = field(default_factory=list, repr=False)
    _calls: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = field(default_factory=dict, repr=False)
    _stale_calls: set[str] = field(default_factory=set, repr=False)
    _async_calls: set[str] = field(default_factory=set, repr=False)  # NON_BLOCKING ids among _calls
    _call_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def model(self) -> str:
        return str(self.setup.get("model", ""))

    @property
    def system_instruction(self) -> str:
        content = self.setup.get("systemInstruction") or {}
        if isinstance(content, str):
            return content
        return "".join(p.get("text", "") for p in content.get("parts", []))

    @property
    def tools(self) -> dict[str, dict[str, Any]]:
        """Offered function declarations by name (parameter schemas included)."""
        out: dict[str, dict[str, Any]] = {}
        for tool in self.setup.get("tools", []) or []:
            for decl in tool.get("functionDeclarations", []) or []:
                out[decl.get("name", "")] = decl
        return out

    @property
    def google_search(self) -> bool:
        """Whether the setup offers Gemini's own Google Search tool (``{"googleSearch": {}}``)."""
        return any(isinstance(t, dict) and "googleSearch" in t for t in self.setup.get("tools", []) or [])

    @property
    def tool_names(self) -> list[str]:
        return list(self.tools)

    @property
    def generation_config(self) -> dict[str, Any]:
        return dict(self.setup.get("generationConfig") or {})

    @property
    def text_mode(self) -> bool:
        modalities = self.generation_config.get("responseModalities") or ["AUDIO"]
        return "AUDIO" not in modalities

    @property
    def compression(self) -> dict[str, Any] | None:
        """The ``contextWindowCompression`` the latest setup asked for, if any."""
        value = self.setup.get("contextWindowCompression")
        return dict(value) if isinstance(value, dict) else None

    @property
    def compressed(self) -> bool:
        """Sliding-window compression is on (the only mechanism the API offers)."""
        return self.compression is not None and self.compression.get("slidingWindow") is not None

    def transcribes(self, direction: str) -> bool:
        """Did the setup ask for ``input`` or ``output`` audio transcription?"""
        return f"{direction}AudioTranscription" in self.setup

    def frames_of(self, key: str) -> list[ClientFrame]:
        return [f for f in self.frames if f.key == key]

    def user_texts(self) -> list[str]:
        return [t for role, t in self.transcript if role == "user"]

    def model_texts(self) -> list[str]:
        return [t for role, t in self.transcript if role == "model"]


class Connection(Protocol):
    """A live websocket serving a session, as the registry and the emulator's controls use it.

    ``live.LiveConnection`` is the one there is; it reads and writes this module's
    sessions, so this module names it by what is used rather than importing it.
    """

    ws: web.WebSocketResponse

    @property
    def still_open(self) -> bool: ...

    def abort(self) -> None: ...

    async def send(self, frame: dict[str, Any]) -> None: ...

    async def send_raw(self, frame: dict[str, Any]) -> None: ...

    async def interrupt(self) -> None: ...

    def _user(self, text: str) -> None: ...


class LiveRegistry:
    """All sessions, live connections and resumption handles of one emulator."""

    def __init__(self) -> None:
        self.sessions: list[LiveSession] = []
        self.handles: dict[str, LiveSession] = {}
        self.connections: dict[str, Connection] = {}  # session id -> live connection
        self.violations: list[Violation] = []
        self.errors: list[str] = []
        self.rejected: list[tuple[float, int, str]] = []  # refused before a session existed
        self.refuse_resumption = False
        self.accepting = True
        self.setup_hold: asyncio.Event | None = None  # set: setups wait for it (a slow connect)
        self.stalled = False  # a Stall("service"): no connection or session answers any more
        self._ids = itertools.count(1)

    def new_session(self, brain: Brain, setup: dict[str, Any]) -> LiveSession:
        session = LiveSession(id=f"session-{next(self._ids)}", brain=brain, setup=setup)
        self.sessions.append(session)
        return session

    def end(self, session: LiveSession, code: int, reason: str) -> None:
        """The service ended ``session``: none of its handles resumes it any more."""
        session.ended = (code, reason)
        for handle in session.handles:
            self.handles.pop(handle, None)

    def issue_handle(self, session: LiveSession) -> str:
        handle = f"{session.id}/{secrets.token_hex(8)}"
        self.handles[handle] = session
        session.handles.append(handle)
        return handle
