"""The fakes' ``state`` file: jobs outlive the fake's process, as on a real provider."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from _helpers import client_for

from creative_client import (
    CreativeClient,
    CreativeError,
    GenerationRequest,
    JobStatus,
    NotFoundError,
)
from creative_client.testing import FakeDeepixels, FakeNeocu, FakeProcess, fake_for

#: A fake's job id with a state file: two letters of its provider, a run tag, a number.
TAGGED_ID = re.compile(r"^[a-z0-9]{2}-[a-z0-9]{6}-\d{6}$")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


async def test_a_job_outlives_its_fake_and_ends_by_the_wall_clock(
    provider: str, tmp_path: Path
) -> None:
    """A second fake on the file has the first one's jobs, each ending when its duration is
    up by the wall clock (not sooner), with its outputs and its failure."""
    state = tmp_path / "state.jsonl"
    duration = 1.5
    started = time.time()
    async with (
        fake_for(provider, job_duration=duration, state=state) as first,
        client_for(first) as client,
    ):
        ok = await client.submit(GenerationRequest(prompt="a red fox"))
        bad = await client.submit("a broken fox [fail]")
    assert TAGGED_ID.match(ok.id) and TAGGED_ID.match(bad.id)
    assert ok.id.startswith(provider[:2] + "-") and bad.id.startswith(provider[:2] + "-")
    assert len(lines(state)) == 2

    async with fake_for(provider, state=state) as second:
        stats = second.stats()
        assert (stats["loaded"], stats["jobs"], stats["active"]) == (2, 0, 0)
        async with client_for(second) as client:
            early = await client.get(ok.id)
            assert early.status in (JobStatus.QUEUED, JobStatus.RUNNING)
            done = await client.wait(ok.id, timeout=10)
            assert time.time() - started >= duration
            failed = await client.wait(bad.id, timeout=10)
            assert done.status is JobStatus.SUCCEEDED
            assert failed.status is JobStatus.FAILED
            assert done.outputs
            assert all(a.url.startswith(second.root_url) for a in done.outputs)
            paths = await client.download(done, tmp_path / "media")
            assert paths[0].read_bytes().startswith(b"fake media ")
        assert second.stats()["active"] == 0  # loaded jobs never were in flight here


async def test_a_jobs_request_body_outlives_its_fake(tmp_path: Path) -> None:
    """What the job was asked for (here Deepixels' ``num_outputs``) is in the file too."""
    state = tmp_path / "state.jsonl"
    async with FakeDeepixels(state=state) as first, client_for(first) as client:
        job = await client.submit(GenerationRequest(prompt="a fox", input={"num_outputs": 2}))
    async with FakeDeepixels(state=state) as second, client_for(second) as client:
        done = await client.wait(job.id, timeout=10)
    assert len(done.outputs) == 2


async def test_a_job_survives_a_sigkilled_fake_process(tmp_path: Path) -> None:
    """The job is on disk as soon as the submit is answered: a fake killed right after
    still hands it to the next process, which runs it to its end."""
    state = tmp_path / "deepixels.jsonl"
    with FakeProcess("deepixels", job_duration=0.5, state=state) as fake:
        async with CreativeClient("deepixels", "key", base_url=fake.base_url, model="m") as client:
            job = await client.submit("a red fox")
        fake.kill()

    with FakeProcess("deepixels", state=state) as fake:
        async with CreativeClient("deepixels", "key", base_url=fake.base_url, model="m") as client:
            again = await client.get(job.id)
            assert again.id == job.id and again.raw["input"] == {"prompt": "a red fox"}
            done = await client.wait(job.id, timeout=10)
        assert done.status is JobStatus.SUCCEEDED and len(done.outputs) == 1
        assert done.outputs[0].url.startswith(fake.root_url)
        assert fake.stats()["loaded"] == 1 and fake.stats()["jobs"] == 0


async def test_a_job_whose_answer_never_left_is_on_disk_too(tmp_path: Path) -> None:
    """Written when made, not when answered: a held submit killed with its fake is kept."""
    state = tmp_path / "deepixels.jsonl"
    with FakeProcess("deepixels", hold_submits_after=0, state=state) as fake:
        async with CreativeClient("deepixels", "key", base_url=fake.base_url, model="m") as client:
            submit = asyncio.create_task(client.submit("held fox"))
            deadline = time.monotonic() + 10
            for _ in range(500):
                if fake.stats()["jobs"] == 1 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
            assert fake.stats()["jobs"] == 1
            fake.kill()
            with pytest.raises(CreativeError):
                await asyncio.wait_for(submit, 30)

    async with FakeDeepixels(state=state) as second:
        assert [job.prompt for job in second.jobs.values()] == ["held fox"]


async def test_broken_lines_are_skipped_and_the_next_job_still_lands(tmp_path: Path) -> None:
    """A line cut short by a killed process, junk, another version: skipped. The next job
    is written on a line of its own, not glued onto the cut one."""
    state = tmp_path / "state.jsonl"
    async with FakeDeepixels(state=state) as first, client_for(first) as client:
        kept = [(await client.submit(f"fox {n}")).id for n in range(2)]
    whole = lines(state)[0]
    cut = json.loads(whole) | {"id": "de-cutcut-000009"}
    with state.open("a") as file:
        file.write("not json\n[1, 2]\n")
        file.write(json.dumps(json.loads(whole) | {"v": 99, "id": "de-future-000001"}) + "\n")
        file.write(json.dumps(cut)[:60])  # no newline: the process died mid-line

    async with FakeDeepixels(state=state) as second, client_for(second) as client:
        assert sorted(second.jobs) == sorted(kept)
        with pytest.raises(NotFoundError):
            await client.get("de-cutcut-000009")
        added = await client.submit("fox after the cut")

    async with FakeDeepixels(state=state) as third, client_for(third) as client:
        assert sorted(third.jobs) == sorted([*kept, added.id])
        assert (await client.get(added.id)).id == added.id


async def test_fakes_sharing_a_file_never_make_the_same_id(tmp_path: Path) -> None:
    """Two fakes on one file at once (same seed), then a third after them: every id is
    new, and each fake finds the other's jobs (read again from the file on a miss)."""
    state = tmp_path / "state.jsonl"
    async with (
        FakeDeepixels(state=state, seed=1) as one,
        FakeDeepixels(state=state, seed=1) as two,
        client_for(one) as to_one,
        client_for(two) as to_two,
    ):
        jobs = await asyncio.gather(
            *(client.submit(f"fox {n}") for n in range(20) for client in (to_one, to_two))
        )
        ids = [job.id for job in jobs]
        assert len(set(ids)) == 40 and all(TAGGED_ID.match(i) for i in ids)
        assert set(one.jobs).isdisjoint(two.jobs)
        theirs = next(iter(two.jobs))
        assert (await to_one.get(theirs)).id == theirs
    assert len(lines(state)) == 40

    async with FakeDeepixels(state=state, seed=1) as three, client_for(three) as client:
        assert three.stats()["loaded"] == 40
        later = [(await client.submit(f"fox {n}")).id for n in range(5)]
    assert set(later).isdisjoint(ids) and len(set(later)) == 5

    async with FakeDeepixels() as stateless, client_for(stateless) as client:
        assert (await client.submit("fox")).id == "de-000001"  # no state: ids as ever


async def test_each_provider_keeps_to_its_own_jobs_in_a_shared_file(tmp_path: Path) -> None:
    state = tmp_path / "both.jsonl"
    async with (
        FakeDeepixels(state=state) as deepixels,
        FakeNeocu(state=state) as neocu,
        client_for(deepixels) as to_deepixels,
        client_for(neocu) as to_neocu,
    ):
        from_deepixels = await to_deepixels.submit("a red fox")
        from_neocu = await to_neocu.submit("a blue fox")
        with pytest.raises(NotFoundError):
            await to_neocu.get(from_deepixels.id)
        with pytest.raises(NotFoundError):
            await to_deepixels.get(from_neocu.id)
    assert {json.loads(line)["provider"] for line in lines(state)} == {"deepixels", "neocu"}

    async with FakeDeepixels(state=state) as deepixels, FakeNeocu(state=state) as neocu:
        assert list(deepixels.jobs) == [from_deepixels.id]
        assert list(neocu.jobs) == [from_neocu.id]


async def test_an_unusable_state_file_fails_at_start_naming_it(tmp_path: Path) -> None:
    fake = FakeDeepixels(state=tmp_path)  # a folder, not a file
    with pytest.raises(OSError, match=re.escape(str(tmp_path))):
        await fake.start()
    assert fake.base_url == ""  # nothing left listening

    nested = tmp_path / "new" / "folder" / "state.jsonl"
    async with FakeNeocu(state=nested):
        assert nested.exists()  # the missing folders are made

    process = FakeProcess("neocu", state=tmp_path)
    with pytest.raises(RuntimeError, match=re.escape(str(tmp_path))):
        process.start()
