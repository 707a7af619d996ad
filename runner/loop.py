"""The runner: claim what is due, start it, sleep until the next due time or a wake-up.

:meth:`Runner.tick` is the whole scheduling step and takes its time from the injected
clock, so tests drive it with a fake clock and a real store. :meth:`Runner.run` is a thin
loop around it; :meth:`Runner.shutdown` lets running jobs finish for a grace period, then
stops them and records them as interrupted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from runner import housekeeper, logs, orphans, schedules
from runner.clock import Clock
from runner.errors import StoreError
from runner.functions import Functions
from runner.jobs import JobContext, run_job
from runner.metrics import Metrics
from runner.results import CleanupReport, JobResult
from runner.specs import CleanupSpec, Settings
from runner.store.sql import Claim, Finished, Started, Store

log = logging.getLogger("runner.loop")

RETENTION_EVERY = timedelta(hours=1)
# How long the first ended run of a batch waits for others before its record is written
# (by itself, or first in the transaction of the claim run_once makes next). It bounds
# what a kill -9 can lose: a run that ended in the last few milliseconds stays "running"
# in the database and is recovered as failed ("runner stopped").
GROUP_COMMIT_WAIT = 0.002
# The longest an idle runner trusts "nothing changed" before querying anyway. It is also
# the longest an idle runner sleeps when the database announces writes (see run), and
# then the trust lasts ANNOUNCED_CHECK: a wake-up for the clock need not query.
FULL_CHECK = timedelta(minutes=1)
ANNOUNCED_CHECK = timedelta(minutes=10)
# How long before a run's time the loop claims it: twice the slowest of the last
# CLAIMS_MEASURED claims (a write transaction: a few ms, tens when the machine is busy or
# another write holds the lock), within these bounds. The run then starts at its time from
# a timer, so the claim's round trip makes no run late. A run claimed ahead holds its
# slot from the claim; a runner killed in between leaves it "running", recovered as
# failed ("runner stopped") and retried by policy. The window is long (10 s at 100 claims
# a second) because slow claims come in bursts a short one forgets between.
MIN_CLAIM_LEAD = timedelta(milliseconds=20)
MAX_CLAIM_LEAD = timedelta(milliseconds=500)
CLAIMS_MEASURED = 1000


def _log_failure(task: asyncio.Task[list[CleanupReport]]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("housekeeping failed", exc_info=task.exception())


@dataclass
class _Run:
    started: Started
    task: asyncio.Task[None]
    reason: list[str] = field(default_factory=list)  # why it was cancelled, if it was
    ended: bool = False  # the job has returned; its result is being recorded


async def run_housekeeping(
    store: Store,
    policies: Sequence[CleanupSpec],
    settings: Settings,
    now: datetime,
    runner_id: str,
    protected_files: Sequence[str] = (),
    dry_run: bool = False,
    finished: Callable[[CleanupReport], None] = lambda _report: None,
) -> list[CleanupReport]:
    """Run ``policies`` under the housekeeper settings and store the reports;
    ``finished`` hears of each as its policy is done."""
    keeper = settings.housekeeper
    reports = await housekeeper.run(policies, keeper, now, protected_files, dry_run, finished)
    if keeper.report_enabled:
        await store.save_cleanup_reports(reports, runner_id, now)
    return reports


class Runner:
    """Executes due events from ``store`` under ``settings``' limits."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        runner_id: str | None = None,
        revision: Callable[[], str | None] = lambda: None,
        protected_files: Sequence[str] = (),
        metrics: Metrics | None = None,
        functions: Functions | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        # Names events may call: the program's registrations, then the config's (read live).
        self.functions = functions or Functions(lambda: self.settings.functions)
        self.clock = clock
        self.runner_id = runner_id or orphans.default_runner_id()
        self.revision = revision
        self.wake = asyncio.Event()
        self.runs: dict[int, _Run] = {}
        self._stopping = False
        self._last_retention: datetime | None = None
        self._last_renewal: datetime | None = None
        self.protected_files = list(protected_files)
        self.metrics = metrics or Metrics()
        self.last_tick: datetime | None = None
        self.sleeping_until: datetime | None = None  # the loop's next turn, while it waits
        self.housekeeping: asyncio.Task[list[CleanupReport]] | None = None
        self._next_housekeeping: datetime | None = None
        self._ended: list[Finished] = []
        self._recover_at: datetime | None = None  # when unrecorded runs can be recovered
        self._recorder: asyncio.Task[None] | None = None
        # Set whenever a batch of ended runs has been recorded, or, while run_once waits
        # to claim (_claim_waits), is ready for its claim to record.
        self.recorded = asyncio.Event()
        self._claim_waits = False
        self._claim_times: deque[timedelta] = deque(maxlen=CLAIMS_MEASURED)
        self._claim_lead = MIN_CLAIM_LEAD

    def reconfigure(self, settings: Settings) -> None:
        """Work under new settings (a reloaded config) from now on: the limits at the next
        claim, a changed housekeeping schedule or zone at once."""
        if (settings.housekeeper.schedule, settings.timezone) != (
            self.settings.housekeeper.schedule,
            self.settings.timezone,
        ):
            self._next_housekeeping = None  # computed again from the new schedule
        self.settings = settings
        self.wake.set()  # look at the database again, under the new limits

    # --- one step -----------------------------------------------------------------------

    async def tick(self, due_by: datetime | None = None) -> datetime | None:
        """Start everything due by ``due_by`` (default now) that the limit allows. A run
        whose time is after now is claimed now and starts at its time, never before.

        Returns when the next thing is due (None: nothing is scheduled). A time not after
        ``due_by`` (or now) means something is due that could not be claimed: the limit is
        reached, or another runner holds it.
        """
        next_due: datetime | None = None
        claimed = False
        # Runs that ended and wait for their record free their slots in the claim's
        # transaction, which records them first.
        while not self._stopping and (free := self._free() + len(self._ended)) > 0:
            claim = await self._claim_and_start(free, due_by)
            next_due, claimed = claim.next_due, True
            horizon = due_by or self.clock.now()
            if not claim.decisions or next_due is None or next_due > horizon:
                break
        self._start_recorder()  # runs that ended during the claim, or with no claim to come
        return next_due if claimed else await self.store.next_due()

    async def _claim_and_start(self, limit: int, due_by: datetime | None = None) -> Claim:
        """One claim of up to ``limit`` events due by ``due_by`` (default now), which
        first records the runs that ended meanwhile; a run due after now starts at its
        time."""
        now = self.clock.now()
        due = now if due_by is None else due_by
        lease = self.settings.lease_seconds
        batch, self._ended = self._ended, []
        try:
            claim = await self.store.start_due(
                now, self.runner_id, limit, self.revision(), lease, due, batch
            )
        except BaseException:
            self._ended[:0] = batch  # not recorded: the recorder tries on its own
            self._start_recorder()
            raise
        self._recorded(batch, claim.recorded)
        for event, decision in claim.decisions:
            for record in decision.records:
                if record.outcome != "running":
                    self.metrics.count(event.spec.name, record.outcome)
                    extra = {"event": event.spec.name, "scheduled_time": record.scheduled_time}
                    log.info("occurrence %s: %s", record.outcome, record.error, extra=extra)
        for run in claim.started:
            self._launch(run)
        return claim

    def _launch(self, started: Started) -> None:
        """Hold a slot for ``started`` from now on; it starts at its time (see _begin)."""
        self.metrics.running.inc()
        run = _Run(started, asyncio.create_task(self._execute(started)))
        self.runs[started.execution_id] = run

    async def _begin(self, started: Started) -> datetime:
        """Wait for the run's time, then start it: stop the run it replaces and log the
        start. Returns the instant it started."""
        record = started.record
        await self.clock.wait_until(record.start_at)
        now = self.clock.now()
        if started.replaces_running:
            self._cancel_event_runs(
                started.spec.name,
                "replaced by a newer run (overlap: replace)",
                but=started.execution_id,
            )
        extra = {
            "event": started.spec.name,
            "execution_id": started.execution_id,
            "attempt": record.attempt,
            "trigger": record.trigger,
            "trace_session_id": record.trace_session_id,
        }
        if record.trigger == "schedule":
            lateness = (now - record.scheduled_time).total_seconds()
            self.metrics.lateness.observe(max(lateness, 0.0))
            extra["lateness_s"] = round(lateness, 3)
        logs.with_fields(log, logging.INFO, extra, "run started")
        return now

    def _forget(self, execution_id: int) -> None:
        if self.runs.pop(execution_id, None) is not None:
            self.metrics.running.dec()

    async def _execute(self, started: Started) -> None:
        """Run ``started`` and queue its result for recording. A run that fails before
        its result is queued (a bug, not a job's failure) gives its slot back; its record
        stays ``running`` until recovery."""
        try:
            await self._run(started)
        except Exception:
            log.exception("run %d crashed", started.execution_id)
            self._forget(started.execution_id)

    async def _run(self, started: Started) -> None:
        record = started.record
        context = JobContext(
            started.spec.name,
            started.execution_id,
            record.scheduled_time,
            record.attempt,
            record.trace_session_id,
        )

        async def remember(pgid: int) -> None:
            await self._record_process(started.execution_id, pgid)

        started_at: datetime | None = None
        try:
            started_at = await self._begin(started)
            result = await run_job(started.spec, context, self.functions, remember)
        except asyncio.CancelledError:
            run = self.runs.get(started.execution_id)
            reason = run.reason[0] if run and run.reason else "runner shutting down"
            result = JobResult("interrupted", error=reason)
        run = self.runs.get(started.execution_id)
        if run is not None:
            run.ended = True  # from here on, stopping must not cancel the recording
        ended_at = self.clock.now()
        started_at = started_at or ended_at  # stopped before its time came: it never ran
        name, seconds = started.spec.name, (ended_at - started_at).total_seconds()
        self.metrics.ran(name, result.outcome, seconds)
        self._ended.append(
            Finished(
                started.execution_id,
                started.spec,
                result,
                started_at,
                ended_at,
                record.trace_session_id,
            )
        )
        self._start_recorder()

    def _start_recorder(self) -> None:
        if self._ended and (self._recorder is None or self._recorder.done()):
            self._recorder = asyncio.create_task(self._record())

    async def _record_process(self, execution_id: int, pgid: int) -> None:
        """Best effort: a job runs whether or not its process group could be recorded."""
        try:
            process = orphans.identify(pgid) | {"runner_id": self.runner_id}
            await self.store.record_process(execution_id, process, self.clock.now())
        except (OSError, StoreError):
            log.exception("could not record a job's process group")

    async def stop_orphans(self) -> None:
        """Stop the process groups that runners which died on this host left running, so
        no retry runs beside them; records another host must judge are kept for it."""
        for execution_id, process in (await self.store.orphaned_processes()).items():
            try:
                orphans.stop_group(process)
                ours = orphans.same_machine(process)
            except (OSError, ValueError, KeyError):
                ours = True  # a record that cannot be read is of no use to anyone
            if ours:
                await self.store.forget_process(execution_id)

    async def _record(self) -> None:
        """Record ended runs in group commits: whatever ended while the previous
        transaction was being written goes into the next, so a burst costs one
        transaction per batch and a lone run is recorded at once. While run_once waits
        to claim, the batch is left for its claim, which records it in the same
        transaction.

        A run stays in :attr:`runs` (holding its slot and its lease) until its record is
        written, so the next claim sees it as ended. If writing fails, the runs stay
        ``running`` in the database; their leases expire and recovery records them.
        """
        while self._ended:
            if len(self._ended) < len(self.runs):
                # Others are still running: give those about to end a moment to join.
                await asyncio.sleep(GROUP_COMMIT_WAIT)
            if not self._ended:
                return  # a claim took them meanwhile (a turn of run())
            if self._claim_waits and not self._stopping:
                self.recorded.set()  # run_once claims now, taking the batch
                return
            batch, self._ended = self._ended, []
            full = self._free() <= 0
            try:
                kept = await self.store.finish(batch, self.runner_id)
            except Exception:
                log.exception("could not record the end of %d runs", len(batch))
                # Their leases, no longer renewed, expire; recovery then records them.
                lease = timedelta(seconds=self.settings.lease_seconds)
                self._recover_at = self.clock.now() + lease
                kept = None
            self._recorded(batch, kept)
            self.recorded.set()
            if full:
                self.wake.set()  # a slot is free again for what waits

    def _recorded(self, batch: list[Finished], kept: set[int] | None) -> None:
        """Free the slots of ``batch``, whose record is written (``kept``: the runs this
        runner still held) or failed (None)."""
        for finished in batch:
            self._forget(finished.execution_id)
            if kept is not None:
                self._log_end(finished, finished.execution_id in kept)

    @staticmethod
    def _log_end(finished: Finished, kept: bool) -> None:
        result = finished.result
        fields = {
            "event": finished.spec.name,
            "execution_id": finished.execution_id,
            "trace_session_id": finished.trace_session_id,
            "error": result.error,
            "lease_lost": not kept,
        }
        level = logging.INFO if result.outcome == "succeeded" else logging.WARNING
        logs.with_fields(log, level, fields, "run %s", result.outcome)

    def _cancel_event_runs(self, name: str, reason: str, but: int | None = None) -> None:
        for run in list(self.runs.values()):
            mine = run.started.spec.name == name and run.started.execution_id != but
            if mine and not run.ended:
                run.reason.append(reason)
                run.task.cancel()

    # --- upkeep -------------------------------------------------------------------------

    async def upkeep(self) -> None:
        """Renew the leases of running jobs, start housekeeping when its schedule says,
        and, hourly, delete old history."""
        now = self.clock.now()
        self._start_housekeeping(now)
        every = timedelta(seconds=self.settings.lease_seconds / 3)
        if self._last_renewal is None or now - self._last_renewal >= every:
            self._last_renewal = now
            await self._renew_leases(now)
            # Runs of runners that died (their leases expired) are recorded and retried:
            # other runners' on a shared database, else only runs whose end we failed to
            # record (an SQLite file has one runner, and start-up recovered the rest).
            unrecorded = self._recover_at is not None and now >= self._recover_at
            if self.store.shared or unrecorded:
                self._recover_at = None
                recovered = await self.store.recover(now)
                if recovered:
                    log.warning("recovered %d runs left running", recovered)
                await self.stop_orphans()
        if self.settings.auto_cleanup_enabled and (
            self._last_retention is None or now - self._last_retention >= RETENTION_EVERY
        ):
            self._last_retention = now
            cutoff = now - timedelta(days=self.settings.retention_days)
            removed = await self.store.purge_history(cutoff)
            if removed:
                log.info(
                    "history retention: deleted %d executions",
                    removed,
                    extra={"before": cutoff.isoformat()},
                )

    async def _renew_leases(self, now: datetime) -> None:
        if not self.runs:
            return
        lease = self.settings.lease_seconds
        held = await self.store.renew_leases(list(self.runs), self.runner_id, now, lease)
        for execution_id in set(self.runs) - held:
            run = self.runs[execution_id]
            run.reason.append("lease lost: the run was taken over")
            run.task.cancel()

    def _start_housekeeping(self, now: datetime) -> None:
        """Every runner cleans its own files, on ``housekeeper.schedule``, in the background."""
        keeper = self.settings.housekeeper
        if not keeper.enabled:
            self._next_housekeeping = None
            return
        due = self._next_housekeeping
        busy = self.housekeeping is not None and not self.housekeeping.done()
        if due is not None and (now < due or busy):
            return  # the common case, on every turn of the loop: nothing to compute
        schedule = schedules.Cron(keeper.schedule, ZoneInfo(self.settings.timezone))
        self._next_housekeeping = schedule.next_after(now)
        if due is not None:
            self.housekeeping = asyncio.create_task(self._housekeep(now))
            self.housekeeping.add_done_callback(_log_failure)

    async def _housekeep(self, now: datetime) -> list[CleanupReport]:
        policies = await self.store.cleanup_policies()
        args = (self.settings, now, self.runner_id, self.protected_files)
        reports = await run_housekeeping(self.store, policies, *args)
        self.count_cleanup(reports)
        return reports

    def count_cleanup(self, reports: Sequence[CleanupReport]) -> None:
        """Add housekeeping reports (scheduled or asked for) to the metrics; a dry run
        deletes and frees nothing."""
        for report in reports:
            self.metrics.cleanup_errors.labels(report.policy).inc(len(report.errors))
            if not report.dry_run:
                self.metrics.cleanup_files.labels(report.policy).inc(report.deleted)
                self.metrics.cleanup_bytes.labels(report.policy).inc(report.bytes_freed)

    # --- the loop -----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; :meth:`run` returns at its next turn."""
        self._stopping = True
        self.wake.set()

    async def run(self) -> None:
        """Tick and sleep until :meth:`stop`. A turn claims once the next run is within the
        claim lead (see :meth:`claim_lead`), and then claims all that is due within twice
        the lead; each run so claimed starts at its time: the claim's round trip to the
        database is paid before the run's time, not after it. Then it sleeps until the lead
        before the next due time, a wake-up (new config, a run ending, an API call, a
        write to the database), or ``check_interval`` at the longest.

        A turn that no one asked for (the ``check_interval`` came round and nothing was
        due) looks at the database only if someone else may have written to it, so an
        idle runner costs next to nothing; at least every :data:`FULL_CHECK` it looks
        anyway. Where the database announces every write (an SQLite file, via inotify),
        an idle runner with no run in progress sleeps until the next thing is due, for
        :data:`FULL_CHECK` at the longest (which catches a step of the wall clock), and
        queries anyway only every :data:`ANNOUNCED_CHECK`.
        """
        announced = self.store.notify_writes(self.wake.set)
        trust = ANNOUNCED_CHECK if announced else FULL_CHECK
        next_due: datetime | None = None
        look = True
        last_look = claimed_by = self.clock.now()
        while not self._stopping:
            self.wake.clear()
            now = self.last_tick = self.clock.now()
            self.metrics.heartbeat.set(now.timestamp())
            # Claim when the next run is within the lead, and then all that is due within
            # twice the lead: a claim for a few runs rather than one claim per run.
            soon = now + self.claim_lead()
            horizon = soon + self.claim_lead()
            due = next_due is not None and next_due <= soon
            if due or look or self.store.changed() or now - last_look >= trust:
                last_look = now
                try:
                    next_due, claimed_by = await self._look(soon, horizon, due)
                except StoreError:
                    log.exception("database error; trying again")
                    next_due = claimed_by = now  # due at the next turn, after a sleep
            try:
                await self.upkeep()
            except StoreError:
                log.exception("database error; trying again")
            now = self.clock.now()
            self.sleeping_until = self._sleep_deadline(now, next_due, announced, claimed_by)
            await self.clock.sleep_until(self.sleeping_until, self.wake)
            self.sleeping_until = None
            look = self.wake.is_set()

    def claim_lead(self) -> timedelta:
        """How long before its time a run is claimed: twice the slowest of the last
        :data:`CLAIMS_MEASURED` claims, within :data:`MIN_CLAIM_LEAD` and
        :data:`MAX_CLAIM_LEAD`."""
        return self._claim_lead

    def _measured(self, claim: timedelta) -> None:
        self._claim_times.append(claim)
        slowest = max(self._claim_times)
        self._claim_lead = min(MAX_CLAIM_LEAD, max(MIN_CLAIM_LEAD, 2 * slowest))

    async def _look(
        self, soon: datetime, horizon: datetime, due: bool
    ) -> tuple[datetime | None, datetime]:
        """Claim what is due by ``horizon`` if anything is due by ``soon``. When nothing is
        known to be (a wake-up, a change, a periodic look), ask first: a read that writes
        nothing, where most wake-ups (this runner's own writes, announced) find nothing to
        claim, taken once any write in progress has committed. Returns when the next thing
        is due (as :meth:`tick` does) and the horizon looked up to."""
        if not due:
            next_due = await self.store.next_due(settled=True)
            if next_due is None or next_due > soon:
                return next_due, soon
        began = self.clock.now()
        next_due = await self.tick(horizon)
        self._measured(self.clock.now() - began)
        return next_due, horizon

    def _sleep_deadline(
        self, now: datetime, next_due: datetime | None, announced: bool, claimed_by: datetime
    ) -> datetime:
        """When the loop turns next, unless woken: the claim lead before the next due time
        (at once if that has passed) or upkeep, within ``check_interval``, or within
        :data:`FULL_CHECK` when writes are announced and nothing runs (no lease to renew,
        no run to recover). Something due by ``claimed_by`` (the last look's horizon)
        that was not claimed waits for a run to end (which wakes us) or for another runner
        to take it: no spinning."""
        idle = not self.runs and self._recover_at is None  # no lease to renew or recover
        quiet = announced and idle and (next_due is None or next_due > now)
        longest = now + (FULL_CHECK if quiet else timedelta(seconds=self.settings.check_interval))
        claim_at = None
        if next_due is not None and next_due > claimed_by:  # not blocked: its turn comes
            claim_at = next_due - self.claim_lead()
            if claim_at <= now:
                return now  # it came within the lead while the last turn went on
        upkeep = [self._next_housekeeping]
        if self.settings.auto_cleanup_enabled and self._last_retention is not None:
            upkeep.append(self._last_retention + RETENTION_EVERY)
        sooner = [t for t in (claim_at, *upkeep) if t is not None and now < t < longest]
        return min(sooner, default=longest)

    def _free(self) -> int:
        return self.settings.max_concurrent_executions - len(self.runs)

    async def run_once(self) -> None:
        """Burst mode: start what is due now, wait for it all to finish, return. What falls
        due meanwhile is left for later, so a job slower than its interval ends it too."""
        cutoff = self.clock.now()
        while True:
            self.recorded.clear()
            await self.tick(cutoff)
            if not self.runs:
                return
            # The runs that end are recorded by the next claim (one transaction, not two).
            self._claim_waits = True
            try:
                await self.recorded.wait()
            finally:
                self._claim_waits = False

    async def shutdown(self, grace: float) -> None:
        """Stop claiming; give running jobs ``grace`` seconds, then stop them (interrupted)."""
        self.stop()
        tasks = [r.task for r in self.runs.values()]
        if tasks:
            log.info("waiting up to %gs for %d running jobs", grace, len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for run in list(self.runs.values()):
                if run.task in pending and not run.ended:
                    run.reason.append(f"interrupted: the runner stopped after {grace:g}s grace")
                    run.task.cancel()
            if pending:
                await asyncio.wait(pending)
        self._start_recorder()  # ended runs left for a claim that will not come
        if self._recorder is not None:
            await self._recorder
        if self.housekeeping is not None and not self.housekeeping.done():
            await asyncio.wait([self.housekeeping], timeout=grace)
