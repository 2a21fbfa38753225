"""The models the emulated Gemini API offers, and how it answers for one it does not.

The real service knows a fixed list of models, each with the methods it supports
(``supportedGenerationMethods`` on the ``Model`` resource: ``bidiGenerateContent`` for
the Live models, ``generateContent`` for text). The emulator keeps such a catalogue,
changeable per emulator and per test, so that a misspelt ``model.live_model`` or
``model.text_model`` fails here as it would against Google:

* Live, unknown model or one without ``bidiGenerateContent``: the websocket closes with
  **1008** and ``models/X is not found for API version v1beta, or is not supported for
  bidiGenerateContent. Call ListModels ...`` (google/adk-python#21 and #3964: "received
  1008 (policy violation) models/gemini-2.0-flash is not found for API version v1alpha,
  or is not supported for bidiGenerateContent. Call ListModels").
* REST ``generateContent`` on an unknown model: **404 NOT_FOUND** with the same sentence
  for ``generateContent`` (google/adk-python#200: "404 NOT_FOUND. {'error': {'code': 404,
  'message': 'models/gemini-2.0-flash-live-001 is not found for API version v1beta, or is
  not supported for generateContent. Call ListModels to see the list of available models
  and their supported methods.', 'status': 'NOT_FOUND'}}").
* REST ``models.get`` (``GET /v1beta/models/X``): the ``Model`` resource, or 404
  NOT_FOUND. The resource's fields (``name``, ``baseModelId``, ``version``,
  ``displayName``, ``inputTokenLimit``, ``outputTokenLimit``,
  ``supportedGenerationMethods``) follow the documented ``Model`` type
  (ai.google.dev/api/python/google/generativeai/types/Model).

Beside the methods, the catalogue says how each Live model treats function calls
(``traits``), which the real models differ on; ``cancellation`` follows them:

* ``CANCELS_BLOCKING_ON_INPUT``: the 3.x Live models cancel a BLOCKING call that is
  still unanswered when new client input arrives (speech, ``clientContent`` or realtime
  text), with ``toolCallCancellation``, "a previously issued ToolCallMessage with the
  specified ids should have been not executed and should be cancelled ... This message
  occurs only in cases where the clients interrupt server turns" (google-genai
  ``LiveServerToolCallCancellation``, googleapis.github.io/java-genai); pipecat#1564:
  "Gemini's function calls run in the same task as the normal completions. So, when
  interrupted, Gemini disregards the function call and keeps moving on".
* ``NON_BLOCKING_TOOLS``: the model honours ``behavior: NON_BLOCKING`` declarations and
  the ``scheduling`` of their responses (INTERRUPT, WHEN_IDLE, SILENT:
  https://ai.google.dev/gemini-api/docs/live-api/tools#async-function-calling). pipecat
  1.14 gates it the same way (``_supports_non_blocking_tools``: "Before 3.8, Gemini 3.x
  models did not support NON_BLOCKING function declarations").
* ``NON_BLOCKING_BY_DEFAULT``: a declaration without ``behavior`` runs NON_BLOCKING
  ("The 3.8 Live family flipped the default: function calls execute NON_BLOCKING unless
  the declaration explicitly asks for BLOCKING", pipecat 1.14
  ``_tools_default_to_non_blocking``; the Vertex page says so of the Live API as a whole:
  "all function calls are non-blocking by default", docs.cloud.google.com/
  gemini-enterprise-agent-platform/models/live-api/asynchronous-function-calling).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

LIVE_METHODS = ("bidiGenerateContent",)
TEXT_METHODS = ("generateContent", "streamGenerateContent", "countTokens")
#: An embedding model (gemini-embedding-001); see embed.py.
EMBED_METHODS = ("embedContent", "batchEmbedContents", "countTokens")

#: What the emulator offers unless told otherwise: the models TARS is configured with by
#: default (``schemas/tars.schema.json``: ``model.live_model`` and ``model.text_model``).
DEFAULT_MODELS: Mapping[str, tuple[str, ...]] = {
    "gemini-3.8-live": LIVE_METHODS,
    "gemini-3.5-flash": TEXT_METHODS,
    "gemini-embedding-001": EMBED_METHODS,
}

CANCELS_BLOCKING_ON_INPUT = "cancels_blocking_calls_on_input"
NON_BLOCKING_TOOLS = "non_blocking_tools"
NON_BLOCKING_BY_DEFAULT = "non_blocking_by_default"
#: The 3.x Live models (module docstring); a 3.0-3.7 model (say ``gemini-3.1-flash-live-preview``)
#: is added with ``(CANCELS_BLOCKING_ON_INPUT,)`` alone, a 2.x one with ``(NON_BLOCKING_TOOLS,)``.
LIVE_3_8_TRAITS = (CANCELS_BLOCKING_ON_INPUT, NON_BLOCKING_TOOLS, NON_BLOCKING_BY_DEFAULT)
DEFAULT_TRAITS: Mapping[str, tuple[str, ...]] = {"gemini-3.8-live": LIVE_3_8_TRAITS}


def bare(model: str) -> str:
    """``models/gemini-x`` -> ``gemini-x`` (the SDK accepts and sends both spellings)."""
    return model.removeprefix("models/")


class ModelCatalogue:
    """Model names (without ``models/``) and the methods each supports."""

    def __init__(
        self,
        models: Mapping[str, Iterable[str]] | None = None,
        traits: Mapping[str, Iterable[str]] | None = None,
    ):
        source = DEFAULT_MODELS if models is None else models
        self.models: dict[str, tuple[str, ...]] = {bare(k): tuple(v) for k, v in source.items()}
        known = DEFAULT_TRAITS if traits is None else traits
        self.traits: dict[str, frozenset[str]] = {bare(k): frozenset(v) for k, v in known.items()}

    def add(self, name: str, methods: Iterable[str] = TEXT_METHODS, traits: Iterable[str] = ()) -> None:
        self.models[bare(name)] = tuple(methods)
        self.traits[bare(name)] = frozenset(traits)

    def remove(self, name: str) -> None:
        self.models.pop(bare(name), None)
        self.traits.pop(bare(name), None)

    def has(self, model: str, trait: str) -> bool:
        """Does ``model`` behave as ``trait`` says (module docstring)?"""
        return trait in self.traits.get(bare(model), frozenset())

    def supports(self, model: str, method: str) -> bool:
        return method in self.models.get(bare(model), ())

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and bare(model) in self.models

    def resource(self, model: str) -> dict[str, Any]:
        """The ``Model`` resource ``models.get`` answers with."""
        name = bare(model)
        methods = self.models[name]
        live = "bidiGenerateContent" in methods
        return {
            "name": f"models/{name}",
            "baseModelId": name,
            "version": "001",
            "displayName": name,
            "description": "An emulated Gemini model.",
            "inputTokenLimit": 131072 if live else 1048576,
            "outputTokenLimit": 8192 if live else 65536,
            "supportedGenerationMethods": list(methods),
        }


def not_found(model: str, api_version: str, method: str) -> str:
    """The service's sentence for a model that is unknown or lacks ``method``."""
    return (
        f"models/{bare(model)} is not found for API version {api_version}, or is not supported "
        f"for {method}. Call ListModels to see the list of available models and their supported methods."
    )
