"""Where pipecat's loguru lines go (see ``tars.logs``)."""

from __future__ import annotations

from tars.logs import CurrentStderr, send_loguru_to_stderr

__all__ = ["CurrentStderr", "send_loguru_to_stderr"]
