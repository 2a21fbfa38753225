"""Call recordings on disk: deleted with their call, and after ``recording.keep_days``.

A recording is a file under the state folder (``recordings/call-<id>.wav``, written by
``tars.calls.recording``) named by ``Call.recording_path``. Only files inside this project's
``recordings`` folder are ever deleted: a path in the database that points anywhere else
is cleared, its file left alone. Each ``tars serve`` prunes the recordings in its own state
folder (at start-up and every hour, ``tars.scheduler``).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from tars.store.calls import get_call
from tars.store.columns import UTCDateTime
from tars.store.errors import InvalidValue
from tars.store.models import Call

log = logging.getLogger("tars.store")

#: Calls that may still be writing their recording: not deleted.
LIVE_STATUSES = ("queued", "ringing", "in-progress")


def recording_of(state_dir: Path, call: Call) -> Path | None:
    """The call's recording file if it is one of this project's and still there."""
    path = _inside(state_dir, call.recording_path)
    return path if path is not None and path.is_file() else None


def _inside(state_dir: Path, stored: str | None) -> Path | None:
    if not stored:
        return None
    folder = (state_dir / "recordings").resolve()
    path = Path(stored).resolve()
    return path if path.parent == folder else None


def remove_recording(state_dir: Path, stored: str | None) -> bool:
    """Delete the file a ``recording_path`` names (if it is in this project's recordings
    folder); True if a file was deleted."""
    path = _inside(state_dir, stored)
    if path is None:
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def delete_call(session: Session, state_dir: Path, call: int | str) -> Call:
    """Delete a call that has ended: its row, transcript and tool invocations, and its
    recording. Raises NotFound, or InvalidValue for a call still under way."""
    found = get_call(session, call)
    if found.status in LIVE_STATUSES:
        if found.status == "queued" and found.sid is None and found.scheduled_at is not None:
            raise InvalidValue(
                f"call {found.id} is scheduled, not over", f"cancel it first with `tars calls cancel {found.id}`"
            )
        state = "still ringing" if found.status == "ringing" else "still in progress"
        if found.status == "queued":
            state = "about to be placed"
        raise InvalidValue(f"call {found.id} is {state}", "delete it once it has ended")
    session.delete(found)  # its transcript lines and tool invocations go with it (ON DELETE CASCADE)
    session.flush()
    remove_recording(state_dir, found.recording_path)
    return found


def prune_recordings(session: Session, state_dir: Path, keep_days: int, now: dt.datetime) -> list[int]:
    """Delete the recordings of calls that ended more than ``keep_days`` days before ``now``
    (the calls and their transcripts stay); returns the ids of those calls."""
    cutoff = now - dt.timedelta(days=keep_days)
    ended = func.coalesce(col(Call.ended_at), col(Call.started_at), col(Call.created_at), type_=UTCDateTime)
    old = session.exec(
        select(Call).where(
            col(Call.recording_path).is_not(None), col(Call.status).not_in(LIVE_STATUSES), ended < cutoff
        )
    ).all()
    for call in old:
        remove_recording(state_dir, call.recording_path)
        call.recording_path = None
        session.add(call)
    session.flush()
    return [int(call.id or 0) for call in old]
