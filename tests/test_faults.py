"""Fault injection at scale: a batch keeps going, loses nothing and never submits twice.

The fakes draw each fault from the seed and the request itself, so every run of
these tests meets the same faults whatever order concurrent requests arrive in.
"""

from __future__ import annotations

import collections

from _helpers import API_KEY, client_for

from creative_client import (
    GenerationRequest,
    JobStatus,
    Outcome,
    RetryPolicy,
    SubmissionUncertainError,
)
from creative_client.testing import FakeServer, Faults, fake_for

JOBS = 2000

#: Enough tries that 17% faulty reads do not run out of them: 0.17**8 per read.
PATIENT = RetryPolicy(max_attempts=8, max_time=30.0, base_delay=0.001, max_delay=0.01)

#: 10% 5xx (half HTML pages), 5% 429 with Retry-After, 2% cut mid-answer.
READ_FAULTS = Faults(server_error=0.10, html=0.5, rate_limit=0.05, retry_after="0", drop=0.02)

#: 5% of submits create the job, then answer 5xx, hang or cut the connection.
SUBMIT_FAULTS = Faults(server_error=0.05 / 3, html=0.0, hang=0.05 / 3, drop=0.05 / 3)


async def _run(fake: FakeServer, **options: object) -> list[Outcome]:
    async with client_for(fake, retry=PATIENT, concurrency=64, **options) as client:
        requests = (GenerationRequest(prompt=f"p{i}") for i in range(JOBS))
        return [o async for o in client.as_completed(requests)]


def _report(fake: FakeServer, outcomes: list[Outcome]) -> str:
    kinds = collections.Counter(
        "succeeded" if o.ok else type(o.error).__name__ if o.error else "failed" for o in outcomes
    )
    return (
        f"{fake.name}: {len(outcomes)} jobs, server saw {fake.count('submit')} submits and "
        f"{fake.count('get')} reads; faults sent {dict(sorted(fake.faults_sent.items()))}; "
        f"outcomes {dict(kinds)}"
    )


async def test_two_thousand_jobs_through_faulty_reads(provider: str) -> None:
    async with fake_for(
        provider, api_key=API_KEY, read_faults=READ_FAULTS, odd_case=True, job_duration=0.0, seed=7
    ) as fake:
        # Instant jobs: each needs one good read, so the reads and faults are the same
        # in every run (the draws depend on the seed and the request, not on timing).
        outcomes = await _run(fake)
    print(_report(fake, outcomes))
    assert len(outcomes) == JOBS
    failures = [o.error for o in outcomes if not o.ok]
    assert not failures, failures[:3]
    assert all(o.job is not None and o.job.status is JobStatus.SUCCEEDED for o in outcomes)
    assert fake.count("submit") == JOBS  # exactly one submit per job
    assert len(fake.jobs) == JOBS
    # The faults really happened, in about the shares asked for.
    reads = fake.count("get")
    sent = fake.faults_sent
    five_xx = sum(n for kind, n in sent.items() if kind.startswith("get:5"))
    assert 0.07 < (five_xx + sent["get:html"]) / reads < 0.13
    assert 0.3 < sent["get:html"] / (five_xx + sent["get:html"]) < 0.7
    assert 0.03 < sent["get:429"] / reads < 0.07
    assert 0.01 < sent["get:cut"] / reads < 0.03
    # Every status came back in odd letter case, and was understood.
    assert all(o.job is not None and o.job.raw_status != "completed" for o in outcomes)


async def test_ambiguous_submits_end_uncertain_and_are_never_resent(provider: str) -> None:
    async with fake_for(
        provider, api_key=API_KEY, submit_faults=SUBMIT_FAULTS, job_duration=0.02, seed=11
    ) as fake:
        # A hung submit is given up after 2 s; nothing else here comes near that.
        outcomes = await _run(fake, request_timeout=2.0)
    print(_report(fake, outcomes))
    assert len(outcomes) == JOBS
    assert fake.count("submit") == JOBS  # none submitted again
    assert len(fake.jobs) == JOBS  # every submit created its job, the ambiguous ones too
    uncertain = [o for o in outcomes if isinstance(o.error, SubmissionUncertainError)]
    ambiguous = {job.prompt for job in fake.jobs.values() if job.ambiguous}
    faults = sum(n for k, n in fake.faults_sent.items() if k.startswith("submit:"))
    assert 0.03 * JOBS < faults < 0.07 * JOBS
    assert {k.split(":")[1] for k in fake.faults_sent} >= {"hang", "cut"}
    assert len(uncertain) == faults == len(ambiguous)
    assert {o.request.prompt for o in uncertain} == ambiguous
    for outcome in uncertain:
        assert isinstance(outcome.error, SubmissionUncertainError)
        sent = outcome.error.request  # what was sent, so the caller can decide
        assert sent is not None and sent.prompt == outcome.request.prompt
        assert outcome.job is None
    others = [o for o in outcomes if not isinstance(o.error, SubmissionUncertainError)]
    assert len(others) == JOBS - faults
    assert all(o.ok and o.job is not None for o in others), [o.error for o in others][:3]
