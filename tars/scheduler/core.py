"""The scheduler's loop: claim what is due, hand it out, follow calls up.

Each tick:

1. **Live sessions**: this server's live calls are recorded in the database
   (``Call.live_on``/``live_until``, renewed while live; ``tars sessions`` lists them), the
   messages waiting for them are said (``tars.scheduler.relay``), and the sessions of a
   server that died are reaped. If another server holds an owner call, this server claims
   no reminders: that server will, and will announce them in the call.
2. **Reminders**: claimed under a lease, as many as there are free delivery slots
   (``concurrency``), each delivered in its own task (``tars.scheduler.reminders``).
3. **Reminder calls that ended unannounced** (busy, no answer, voicemail, hung up first):
   the reminder's attempt fails and is retried with backoff.
4. **Goal-call retries**: a goal call that ended busy, unanswered or on voicemail gets its
   next attempt per the playbook's ``busy``/``no_answer``/``voicemail`` policy, inside its
   calling window.
5. **Scheduled goal calls** that are due are claimed and placed (``place_due_calls``).

**Between ticks** the loop sleeps until the next reminder or scheduled call it knows of
falls due, and at most ``poll_seconds`` (``scheduler.poll_seconds``, 2 s by default): that
bounds how late it sees work another process added (`tars remind add`, another server on
the database). Work this process stores wakes it at once (``tars.scheduler.wakeup``), as do
a delivery slot coming free, a call ending and a failed attempt. While the owner is on a
call with this server it ticks at least every ``LIVE_RENEW_SECONDS`` to renew the record
that says so.

Leases are per claim (``<server id>#<n>``), so a lease that ran out and was taken again,
even by this same server, is never mistaken for the new one.

The tunable values are the ``scheduler:`` section of tars.yaml (``Settings``); the number of
attempts is ``delivery.retries``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tars.scheduler import goal_calls, listen, relay, reminders
from tars.scheduler.jobs import Slot
from tars.scheduler.live import owner_session
from tars.scheduler.wakeup import watch
from tars.telephony.switchboard import wall

if TYPE_CHECKING:
    from tars.project import Project
    from tars.telephony.switchboard import Switchboard

log = logging.getLogger("tars.scheduler")

# Defaults of the ``scheduler:`` settings (schemas/tars.schema.json says the same).
#: The longest sleep between two ticks: how late work added by another process may be seen.
POLL_SECONDS = 2.0
#: How long a claim holds a reminder (or a scheduled call) before another server may take it.
LEASE_SECONDS = 120.0
#: First retry after this long; doubles per attempt (at most an hour).
BACKOFF_SECONDS = 60.0
#: Reminders delivered at once by one server.
CONCURRENCY = 64
#: A reminder first claimed this long after it fell due was missed by every server: late.
LATE_AFTER_SECONDS = 60.0
#: Deliveries recorded in one transaction, at most.
SETTLE_BATCH = 500
#: A live owner call is recorded for this long, renewed every ``LIVE_RENEW_SECONDS``.
LIVE_SECONDS = 10.0
LIVE_RENEW_SECONDS = 2.0
#: Recordings past ``recording.keep_days`` are looked for at start-up and then this often.
PRUNE_SECONDS = 3600.0


@dataclass(frozen=True)
class Settings:
    """The ``scheduler:`` section of tars.yaml, with today's defaults for what it leaves out."""

    poll_seconds: float = POLL_SECONDS
    lease_seconds: float = LEASE_SECONDS
    backoff_seconds: float = BACKOFF_SECONDS
    concurrency: int = CONCURRENCY
    late_after_seconds: float = LATE_AFTER_SECONDS

    @classmethod
    def from_project(cls, project: Project) -> Settings:
        section = project.section("scheduler")
        return cls(
            poll_seconds=float(section.get("poll_seconds", POLL_SECONDS)),
            lease_seconds=float(section.get("lease_seconds", LEASE_SECONDS)),
            backoff_seconds=float(section.get("backoff_seconds", BACKOFF_SECONDS)),
            concurrency=int(section.get("max_concurrent_deliveries", CONCURRENCY)),
            late_after_seconds=float(section.get("late_after_seconds", LATE_AFTER_SECONDS)),
        )


class Scheduler:
    """Runs in the server's event loop; all database work goes through ``board.db``."""

    def __init__(
        self,
        board: Switchboard,
        *,
        poll_seconds: float | None = None,
        lease_seconds: float | None = None,
        backoff_seconds: float | None = None,
        concurrency: int | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        """Settings from tars.yaml (``scheduler:``); the keyword arguments override them."""
        self.board = board
        self.id = board.id
        settings = Settings.from_project(board.project)
        self.poll_seconds = settings.poll_seconds if poll_seconds is None else poll_seconds
        self.lease_seconds = settings.lease_seconds if lease_seconds is None else lease_seconds
        self.backoff_seconds = settings.backoff_seconds if backoff_seconds is None else backoff_seconds
        self.concurrency = settings.concurrency if concurrency is None else concurrency
        self.late_after = dt.timedelta(seconds=settings.late_after_seconds)
        self.clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(dt.UTC))
        self.inflight: set[asyncio.Task[Any]] = set()
        self.sending = 0  # deliveries holding a slot (see Slot)
        self.ticks = 0
        self._claims = itertools.count(1)
        self._task: asyncio.Task[Any] | None = None
        self._wake: asyncio.Event | None = None
        self._more_due = False
        self._next_due: dt.datetime | None = None  # the next reminder, as of the last tick
        self._next_call: dt.datetime | None = None  # the next scheduled goal call, likewise
        self._unwatch: Callable[[], None] | None = None
        self._stopping = False
        self._live_renewed_at = float("-inf")
        self._live_ids: frozenset[int] = frozenset()
        self._pruned_at = float("-inf")
        self._writes = asyncio.Lock()
        self._settling: list[tuple[int, str, bool, asyncio.Future[bool]]] = []
        self._settler: asyncio.Task[Any] | None = None
        board.outbox.live_owner = lambda: owner_session(board)

    # ------------------------------------------------------------------ settings from tars.yaml
    def now(self) -> dt.datetime:
        return self.clock()

    @property
    def max_attempts(self) -> int:
        """One attempt plus ``delivery.retries`` retries."""
        return 1 + int(self.board.project.section("delivery").get("retries", 3))

    def token(self) -> str:
        return f"{self.id}#{next(self._claims)}"

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            loop = asyncio.get_running_loop()
            unwatch = watch(self.board.database, self.wake, loop)
            engine = self.board.database.engine
            unlisten = listen.listen(engine, self.wake, loop) if listen.supported(engine) else None

            def stop_watching() -> None:
                unwatch()
                if unlisten is not None:
                    unlisten()

            self._unwatch = stop_watching
            self._task = asyncio.ensure_future(self._run())

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let deliveries under way finish (up to ``grace`` seconds). A delivery
        cut short keeps its lease and is delivered again when the lease runs out."""
        self._stopping = True
        if self._unwatch is not None:
            await asyncio.to_thread(self._unwatch)  # the listening thread may take a moment to stop
            self._unwatch = None
        if self._task is not None:
            self.wake()  # the loop ends after its current step: a claim under way is delivered
            _done, running = await asyncio.wait({self._task}, timeout=grace)
            for task in running:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._task = None
        if self.inflight:
            _done, pending = await asyncio.wait(set(self.inflight), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        if self._settler is not None and not self._settler.done():
            await asyncio.wait({self._settler}, timeout=grace)

    def wake(self) -> None:
        """Tick now (something may have fallen due or a slot came free)."""
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()  # before the tick: a wake during it means "tick again now"
            try:
                await self.tick()
                pause = self._pause()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed; trying again")
                pause = self.poll_seconds  # not at once: what it knew may be what failed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    def _pause(self) -> float:
        """Until the next reminder or scheduled call falls due, at most ``poll_seconds``; while
        the owner is on a call here, at most ``LIVE_RENEW_SECONDS`` (the live record is renewed)."""
        pause = self.poll_seconds
        if self._live_ids:
            pause = min(pause, LIVE_RENEW_SECONDS)
        now = self.now()
        for due in (self._next_due, self._next_call):
            if due is not None:
                pause = min(pause, max((due - now).total_seconds(), 0.0))
        return pause

    @property
    def next_due(self) -> dt.datetime | None:
        """When the next reminder or scheduled call falls due, as far as the last tick saw."""
        return min((t for t in (self._next_due, self._next_call) if t is not None), default=None)

    @property
    def active(self) -> bool:
        return not (self._stopping or self.board.shutting_down)

    async def tick(self) -> None:
        """One round: live calls, reminders, reminder-call follow-ups, retries, scheduled calls."""
        self.ticks += 1
        if not self.active:
            return
        await self._renew_live_calls()
        if asyncio.get_running_loop().time() - self._pruned_at >= PRUNE_SECONDS:
            await self.prune_recordings()
        await relay.deliver_messages(self)
        await relay.reap(self)
        await self._claim_reminders()
        await reminders.follow_up_reminder_calls(self)
        await goal_calls.schedule_retries(self)
        if self.active:
            await goal_calls.place_due_calls(self)
            from tars.store.call_queue import next_scheduled_call

            self._next_call = await self.board.db(next_scheduled_call)

    # ------------------------------------------------------------------ recordings
    async def prune_recordings(self) -> list[int]:
        """Delete the recordings of calls that ended more than ``recording.keep_days`` ago
        (the calls stay); the ids of those calls. ``tars serve`` runs it at start-up, then
        the loop every ``PRUNE_SECONDS``."""
        from tars.store.recordings import prune_recordings

        self._pruned_at = asyncio.get_running_loop().time()
        keep = self.board.project.section("recording").get("keep_days")
        if not keep:
            return []
        state, now = self.board.project.state_dir, self.now()
        pruned: list[int] = await self.write(lambda s: prune_recordings(s, state, int(keep), now))
        if pruned:
            log.info("deleted the recordings of %d calls older than %s days", len(pruned), keep)
        return pruned

    # ------------------------------------------------------------------ database writes
    async def write(self, work: Callable[[Any], Any]) -> Any:
        """The scheduler's own writes (claims, delivery records) one at a time, so they never
        wait on each other for SQLite's write lock."""
        async with self._writes:
            return await self.board.db(work)

    async def settle(self, reminder_id: int, lease: str, late: bool) -> bool:
        """Record a delivery; deliveries that finish together are written in one transaction.
        False if the lease had been lost (see ``tars.store.reminders.complete``)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._settling.append((reminder_id, lease, late, future))
        if self._settler is None or self._settler.done():
            self._settler = asyncio.ensure_future(self._settle_all())
        return await future

    async def _settle_all(self) -> None:
        from tars.store.reminders import complete_many

        while self._settling:
            batch, self._settling = self._settling[:SETTLE_BATCH], self._settling[SETTLE_BATCH:]
            deliveries = [(rid, lease, late) for rid, lease, late, _ in batch]
            now = self.now()
            try:
                recorded = await self.write(lambda s, d=deliveries, now=now: complete_many(s, d, now))
            except Exception as exc:
                if len(batch) > 1:  # one bad row must not fail the deliveries written with it
                    log.warning("recording %d deliveries at once failed (%s); one by one", len(batch), exc)
                    for item in batch:
                        await self._settle_one(item, now)
                elif not batch[0][-1].done():
                    batch[0][-1].set_exception(exc)
                continue
            for (*_, future), ok in zip(batch, recorded, strict=True):
                if not future.done():
                    future.set_result(ok)

    async def _settle_one(self, item: tuple[int, str, bool, asyncio.Future[bool]], now: dt.datetime) -> None:
        from tars.store.reminders import complete_many

        reminder_id, lease, late, future = item
        try:
            [ok] = await self.write(lambda s: complete_many(s, [(reminder_id, lease, late)], now))
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(ok)

    # ------------------------------------------------------------------ live sessions
    async def _renew_live_calls(self) -> None:
        """This server's live calls are sessions in the database: a heartbeat, renewed."""
        from tars.store.call_queue import mark_live

        ids = frozenset(s.setup.call_id for s in list(self.board.sessions.values()) if not s.ending)
        clock = asyncio.get_running_loop().time()
        if not ids or (ids == self._live_ids and clock - self._live_renewed_at < LIVE_RENEW_SECONDS):
            self._live_ids = ids
            return
        until = wall() + dt.timedelta(seconds=LIVE_SECONDS)
        await self.board.db(lambda s: mark_live(s, ids, self.id, until))
        self._live_ids, self._live_renewed_at = ids, clock

    # ------------------------------------------------------------------ reminders
    async def _claim_reminders(self) -> None:
        from tars.store.call_queue import owner_live_elsewhere
        from tars.store.reminders import claim_due

        self._more_due = False
        self._next_due = None
        holder = await self.board.db(lambda s: owner_live_elsewhere(s, self.id, wall()))
        channels = None
        if holder is not None:  # reminders said in the owner's call are left to that server
            channels = reminders.sent_during_owner_call(self.board.project)
            log.debug("the owner is on a call held by %s; reminders said in calls are announced there", holder)
            if not channels:
                return
        while self.active:
            free = self.concurrency - self.sending
            if free <= 0:
                self._more_due = True  # a slot coming free wakes the loop
                return
            token = self.token()
            claimed = await self.write(
                lambda s, limit=free, token=token: claim_due(
                    s, self.now(), token, self.lease_seconds, limit=limit, channels=channels
                )
            )
            for reminder in claimed:
                self._spawn(reminders.deliver(self, reminder, token, Slot(self)))
            if len(claimed) < free:
                from tars.store.reminders import next_due

                self._next_due = await self.board.db(lambda s: next_due(s, channels))
                return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.inflight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a delivery crashed: %r", task.exception())

    def slot_freed(self) -> None:
        self.sending -= 1
        if self._more_due:
            self.wake()
