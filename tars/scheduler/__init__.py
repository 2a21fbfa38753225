"""The scheduler inside `tars serve`: reminders that fire, goal calls placed later, retries.

    Scheduler(board).start()      # with the server's switchboard (tars.server.run.running)
    await scheduler.stop()

Every ``tick`` it claims, in the database, what has fallen due — reminders
(``tars.store.reminders.claim_due``) and scheduled goal calls
(``tars.store.call_queue.claim_due_calls``) — each under a lease, so several servers on one
database never deliver one twice and one that dies mid-delivery loses only its lease. See
``core`` for the loop, ``reminders`` for delivering one reminder, ``goal_calls`` for
retries and scheduled calls, ``window`` for calling windows.
"""

from __future__ import annotations

from tars.scheduler.core import Scheduler

__all__ = ["Scheduler"]
