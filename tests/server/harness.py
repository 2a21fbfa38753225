"""The end-to-end harness now lives in ``tars.sim.line`` (shared with `tars simulate`)."""

from __future__ import annotations

from tars.sim.line import ACCOUNT, API_KEY, PUBLIC, TOKEN, Line, make_project

__all__ = ["ACCOUNT", "API_KEY", "PUBLIC", "TOKEN", "Line", "make_project"]
