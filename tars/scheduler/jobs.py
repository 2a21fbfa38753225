"""What the scheduler's jobs (reminder deliveries, goal-call retries and placements) see of
the scheduler that runs them: its switchboard, its clock, its claims and its settings.

A Protocol, so ``reminders`` and ``goal_calls`` need not import the loop in ``core`` that
imports them; ``Slot`` is one of the delivery places the loop hands out.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from tars.telephony.switchboard import Switchboard


class Runner(Protocol):
    board: Switchboard
    lease_seconds: float
    backoff_seconds: float
    late_after: dt.timedelta
    sending: int

    @property
    def max_attempts(self) -> int: ...

    def now(self) -> dt.datetime: ...

    def token(self) -> str: ...

    def wake(self) -> None: ...

    def slot_freed(self) -> None: ...

    async def settle(self, reminder_id: int, lease: str, late: bool) -> bool: ...


class Slot:
    """One of ``concurrency`` deliveries under way. Freed once the message has gone out (or
    failed): recording it happens in batches, and need not hold up the next delivery."""

    def __init__(self, runner: Runner):
        self._runner: Runner | None = runner
        runner.sending += 1

    def free(self) -> None:
        if self._runner is not None:
            self._runner.slot_freed()
            self._runner = None
