"""What a call's model is built from: the setup decided before the first audio frame, the
tools it is offered, and the Live service (``GatedGeminiLive``) made from both.

One path builds the service, whether a stream is already open (``CallSession.build``) or the
call is still ringing (``tars.calls.preopen``), so a session opened ahead is the one the
call would have opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import AdapterType, ToolsSchema
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService

from tars.caller import Caller
from tars.calls.live_service import GatedGeminiLive, LiveCall, compression
from tars.endpoints import Endpoints
from tars.project import Project, thaw
from tars.tools.catalog import MODEL_TOOLS, goal_call_declaration, long_running, transfer_declaration


@dataclass(frozen=True)
class CallSetup:
    """Everything a session needs to know before the first audio frame."""

    call_id: int
    call_sid: str
    stream_sid: str
    caller: Caller
    purpose: str  # "inbound", "goal", "reminder"
    system_instruction: str
    opening: str  # the first user-side message: what to say first
    tools: tuple[str, ...]
    resume: str | None = None  # a resumption handle: the model session this stream continues
    earlier: tuple[tuple[str, str], ...] = ()  # (speaker, text) said on the call's earlier streams


def function_schemas(
    project: Project,
    names: Sequence[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    descriptions: Mapping[str, str] | None = None,
    role_name: str | None = None,
) -> ToolsSchema:
    """The tools offered to the model, as pipecat FunctionSchemas (JSON Schema parameters)."""
    schemas = []
    role = project.roles.get(role_name) if role_name else None
    if role is not None and role.playbooks is not None and "make_goal_call" in names:
        # make_goal_call is declared with the playbooks this role may start, and no others.
        allowed = {n: project.playbooks[n] for n in role.playbooks if n in project.playbooks}
        description, parameters = goal_call_declaration(allowed)
        overrides = {**(overrides or {}), "make_goal_call": parameters}
        descriptions = {**(descriptions or {}), "make_goal_call": description}
    if role is not None and role.transfer is not None and "transfer_call" in names:
        description, parameters = transfer_declaration(role.transfer.to, project.owner.name)
        overrides = {**(overrides or {}), "transfer_call": parameters}
        descriptions = {**(descriptions or {}), "transfer_call": description}
    for name in names:
        if name in MODEL_TOOLS:
            continue
        tool = project.tools.get(name)
        params = dict((overrides or {}).get(name) or (thaw(tool.parameters) if tool else {}))
        description = (descriptions or {}).get(name) or (tool.description if tool else name)
        schemas.append(
            FunctionSchema(
                name=name,
                description=description,
                properties=params.get("properties", {}),
                required=list(params.get("required", [])),
            )
        )
    # Gemini's own tools ride along in the setup: {"googleSearch": {}} for google_search
    # (https://ai.google.dev/gemini-api/docs/live-tools#google-search).
    native = [{"google_search": {}}] if "google_search" in names else []
    return ToolsSchema(standard_tools=schemas, custom_tools={AdapterType.GEMINI: native} if native else None)


def live_service(
    project: Project, endpoints: Endpoints, setup: CallSetup, playbook: Any, call: LiveCall
) -> GatedGeminiLive:
    """The Live service for one call (``playbook``: its ``PlaybookRun``, or None)."""
    settings = project.section("model")
    persona = project.persona_for(playbook.plan.playbook if playbook else None)
    return GatedGeminiLive(
        api_key=endpoints.gemini_api_key or "unset",
        settings=GeminiLiveLLMService.Settings(
            model=settings.get("live_model"),
            voice=persona.voice or settings.get("voice"),
            # Native-audio models choose the language from the instruction (persona_lines
            # says which); speechConfig.languageCode is what the others speak.
            language=persona.language,
            system_instruction=setup.system_instruction,
            context_window_compression=compression(settings),
        ),
        tools=function_schemas(
            project,
            setup.tools,
            playbook.tool_schemas() if playbook else None,
            playbook.descriptions() if playbook else None,
            setup.caller.role,
        )
        if setup.tools
        else None,
        http_options=endpoints.http_options(),
        session=call,
        long_running=long_running(setup.tools, project.tools),
        resume=setup.resume,
    )
