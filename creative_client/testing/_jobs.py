"""A fake's jobs: what it received, the jobs it made, their phases, the state file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._contract import FakeContract, Phase
from ._state import JobStore, run_tag
from ._timing import Durations
from ._webhook_sender import WebhookSender, on_loopback

if TYPE_CHECKING:
    from aiohttp import web


@attrs.frozen
class RecordedRequest:
    """A request the fake received, as it arrived (headers included: never log these)."""

    endpoint: str
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    at: float = 0.0  # time.monotonic() on arrival

    @classmethod
    def of(cls, endpoint: str, request: web.Request, body: bytes) -> RecordedRequest:
        """The record of ``request`` (its ``body`` read) to ``endpoint``, arriving now."""
        query, headers = dict(request.query), dict(request.headers)
        return cls(endpoint, request.method, request.path, query, headers, body, time.monotonic())

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@attrs.define
class FakeJob:
    """A job the fake made: its submit body, when it began, how long it runs, if it fails."""

    id: str
    created: float
    wall_created: float
    duration: float
    fails: bool
    body: Mapping[str, Any]
    reported: bool = False
    prompt: str = ""
    #: Created by a submit that was then answered with a fault (5xx, cut, hang).
    ambiguous: bool = False
    #: Read from the state file (made by an earlier or another process): its clock is
    #: ``wall_created``, as ``created`` (monotonic) means nothing outside its process.
    loaded: bool = False
    #: The model its submit named (``FakeJobs.model_of``), None for providers without.
    model: str | None = None
    #: Reads of it answered with its document (``FakeJobs.answered``).
    reads: int = 0
    #: When a read first answered it ended (``time.monotonic()``), None until then.
    seen: float | None = None

    @property
    def ended(self) -> float:
        """When it ends or ended, ``created + duration`` (``time.monotonic()``; for a
        loaded job, its wall-clock end moved onto this process's monotonic clock)."""
        if self.loaded:
            return self.wall_created + self.duration + (time.monotonic() - time.time())
        return self.created + self.duration


class FakeJobs(FakeContract):
    """Making, finding and ageing jobs; the half of ``FakeServer`` that is not HTTP."""

    jobs: dict[str, FakeJob]
    prompts: Counter[str]
    active: int
    peak_active: int
    loaded: int
    failure_rate: float
    job_duration: float
    job_spread: float
    durations: Durations | None
    odd_case: bool
    hold_submits_after: int | None
    webhooks: WebhookSender
    _rng: random.Random
    _next_id: int
    _id_prefix: str
    _store: JobStore | None
    _released: asyncio.Event

    @property
    def webhooks_sent(self) -> int:
        """Webhook calls made (each copy counts)."""
        return self.webhooks.sent

    @property
    def webhooks_lost(self) -> int:
        """Webhook calls dropped on purpose (``webhook_loss``)."""
        return self.webhooks.lost

    @property
    def callback_times(self) -> dict[str, float]:
        """When each job's first webhook call went out (``time.monotonic()``)."""
        return self.webhooks.times

    def new_job(self, body: Mapping[str, Any], prompt: str, *, ambiguous: bool = False) -> FakeJob:
        self._next_id += 1
        fails = "[fail]" in prompt or self._rng.random() < self.failure_rate
        model = self.model_of(body)
        job = FakeJob(
            id=f"{self._id_prefix}-{self._next_id:06d}",
            created=time.monotonic(),
            wall_created=time.time(),
            duration=self._duration(model),
            fails=fails,
            body=body,
            prompt=prompt,
            ambiguous=ambiguous,
            model=model,
        )
        self.jobs[job.id] = job
        self.prompts[prompt] += 1
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        if self._store is not None:
            self._store.append(job)
        url = self.webhook_of(body)
        if url is not None and on_loopback(url):
            self.webhooks.later(job, url, self.document)
        return job

    def find(self, job_id: str) -> FakeJob | None:
        """The job of that id, read again from the state file if not known yet."""
        job = self.jobs.get(job_id)
        if job is None and self._store is not None:
            self.refresh()
            job = self.jobs.get(job_id)
        return job

    def refresh(self) -> None:
        """Take in the jobs other processes appended to the state file since it was read."""
        if self._store is not None:
            # A file gone or unreadable mid-run means nothing new: a get must not turn 500.
            with contextlib.suppress(OSError):
                self._adopt(self._store.read_new())

    def _adopt(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            if record["id"] in self.jobs:  # ours, or a duplicate line: the first one stands
                continue
            self.jobs[record["id"]] = FakeJob(
                id=record["id"],
                created=0.0,
                wall_created=float(record["wall_created"]),
                duration=float(record["duration"]),
                fails=record["fails"],
                body=record["body"],
                reported=True,  # never counted in ``active``: not in flight here
                prompt=record["prompt"],
                loaded=True,
                model=self.model_of(record["body"]),
            )
            self.loaded += 1

    def _pick_id_prefix(self) -> None:
        """A prefix with a fresh run tag, unless this fake already made ids with one."""
        if self._next_id:
            return
        for _ in range(100):  # a tag already in the file is a 1-in-2e9 chance per run
            prefix = f"{self.name[:2]}-{run_tag()}"
            if not any(job_id.startswith(prefix + "-") for job_id in self.jobs):
                break
        self._id_prefix = prefix

    def model_of(self, body: Mapping[str, Any]) -> str | None:
        """The model a submit body names, for ``durations`` and ``timings``: its
        ``"model"`` string, else None (Neocu's bodies name none). A fake whose bodies
        name it otherwise overrides this."""
        model = body.get("model")
        return model if isinstance(model, str) else None

    def duration_refusal(self, body: Mapping[str, Any]) -> str | None:
        """Why a job of this submit body cannot be made: ``durations`` gives its model
        no duration (a mix without ``*``); None when it can."""
        durations = self.durations
        if durations is None:
            return None
        model = self.model_of(body)
        return None if durations.covers(model) else durations.uncovered(model)

    def answered(self, job: FakeJob) -> None:
        """Count a read of ``job`` answered with its document, made just now; the first
        such read after the job ended is when it was ``seen``. (On the read path: an
        increment, and a float stored once.)"""
        job.reads += 1
        # ``reported`` is set by ``phase`` when it first found the job ended: a document
        # made since says so. A loaded job is ``reported`` from the start: ask its clock.
        if (
            job.seen is None
            and job.reported
            and (not job.loaded or time.time() - job.wall_created >= job.duration)
        ):
            job.seen = time.monotonic()

    def timings(self) -> dict[str, dict[str, Any]]:
        """Per job id: its ``model``, ``duration``, when it ``ended`` and was first
        ``seen`` ended by a read (None if never), and how many ``reads`` were answered.

        Times are this process's ``time.monotonic()``: only differences between them
        mean anything (``seen - ended`` is how late a client noticed). GET
        ``/_fake/timings`` answers the same.
        """
        return {
            job.id: {
                "model": job.model,
                "duration": job.duration,
                "ended": job.ended,
                "seen": job.seen,
                "reads": job.reads,
            }
            for job in self.jobs.values()
        }

    def _duration(self, model: str | None) -> float:
        if self.durations is not None:
            return self.durations.draw(self._rng, model)
        spread = self.job_spread
        if not spread:
            return self.job_duration
        return self.job_duration * self._rng.uniform(1 - spread, 1 + spread)

    async def hold(self) -> None:
        """Hold a submit's answer, if ``hold_submits_after`` says so, until ``release()``."""
        if self.hold_submits_after is not None and self._next_id > self.hold_submits_after:
            await self._released.wait()

    def release(self) -> None:
        """Answer the held submits, and hold no more."""
        self.hold_submits_after = None
        self._released.set()

    def phase(self, job: FakeJob) -> Phase:
        # A loaded job's monotonic start belongs to another process: use the wall clock.
        elapsed = time.time() - job.wall_created if job.loaded else time.monotonic() - job.created
        if elapsed >= job.duration:
            if not job.reported:
                job.reported = True
                self.active -= 1
            return "failed" if job.fails else "completed"
        return "queued" if elapsed < job.duration * 0.2 else "running"

    def status_text(self, text: str) -> str:
        """A status string as a document shows it: in odd letter case, with ``odd_case``."""
        if not self.odd_case:
            return text
        return text.upper() if self._rng.random() < 0.5 else text.capitalize()
