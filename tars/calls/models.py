"""The Gemini models calls use, asked about before ``tars serve`` takes its first call.

A misspelt ``model.live_model`` would otherwise pass every check and fail on the first
real call, when the Live API closes the session (1008, "models/X is not found"). So the
server asks the service's ``models.get`` (google-genai ``client.models.get``) about both
settings first and names the one it does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tars.endpoints import Endpoints

log = logging.getLogger("tars.models")

CHECK_TIMEOUT_MS = 10_000  # an unreachable service delays the start this long at most

#: Each setting, the model the schema defaults it to, and the method it must support.
WANTED = (
    ("model.live_model", "models/gemini-3.8-live", "bidiGenerateContent"),
    ("model.text_model", "gemini-3.5-flash", "generateContent"),
)


def model_problems(model: Mapping[str, Any], endpoints: Endpoints) -> list[str]:
    """One sentence per setting whose model the Gemini API does not offer (empty: all is well).

    A refused API key is a problem too. If the service cannot be reached at all, that is
    logged and not held against the settings: the calls will say so themselves."""
    from google import genai
    from google.genai import errors, types

    options = (endpoints.http_options() or types.HttpOptions()).model_copy(update={"timeout": CHECK_TIMEOUT_MS})
    client = genai.Client(api_key=endpoints.gemini_api_key or "unset", http_options=options)
    problems: list[str] = []
    for setting, default, method in WANTED:
        name = str(model.get(setting.split(".")[1]) or default)
        try:
            found = client.models.get(model=name)
        except errors.ClientError as exc:
            if exc.code == 404:
                problems.append(f"{setting} is {name!r}, which is not a model the Gemini API offers.")
                continue
            problems.append(f"The Gemini API refused model.api_key when asked about {setting}: {exc.message}")
            break
        except Exception as exc:  # unreachable, 5xx: not a verdict on the setting
            log.warning("could not ask the Gemini API about %s %r: %s", setting, name, exc)
            break
        actions = found.supported_actions or []
        if actions and method not in actions:
            problems.append(f"{setting} is {name!r}, which does not support {method}.")
    return problems
