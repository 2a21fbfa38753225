"""The web view of a running TARS: `tars serve`'s own port, under ``/``.

Live calls with their transcript as it is spoken (server-sent events, read from the database,
so any worker serves any call), past calls with transcript, outcome, summary and tool log,
reminders and scheduled calls, and the few actions a person expects: cancel a scheduled call
or a reminder, end a live call. Server-rendered Jinja2 templates (``templates/``) and one
small plain script (``static/``), all served by TARS: no build step, nothing from a CDN.

Only the owner, signed in with the API token, sees any of it (``tars.web.access``).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tars.web.routes import STATIC, router


def mount(app: FastAPI) -> None:
    """Add the web view to `tars serve`'s app (the Twilio routes and /healthz stay as they are)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
