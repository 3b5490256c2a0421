"""client.download(): our own file names, whole files only, retries, caps, only http(s)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _helpers import API_KEY, client_for

from creative_client import (
    Asset,
    AssetKind,
    InvalidRequestError,
    Job,
    JobStatus,
    NotFoundError,
    ProviderResponseError,
)
from creative_client.testing import FakeServer, Reply


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _job_with(fake: FakeServer, *urls: str, kind: AssetKind = AssetKind.IMAGE) -> Job:
    outputs = tuple(Asset(url=u, kind=kind) for u in urls)
    return Job(id="j-1", provider=fake.name, status=JobStatus.SUCCEEDED, outputs=outputs)


async def test_outputs_land_under_our_names_without_the_key(
    fake: FakeServer, tmp_path: Path
) -> None:
    async with client_for(fake) as client:
        job = await client.generate(prompt="a red fox")
        paths = await client.download(job, tmp_path / "out")
    assert [p.name for p in paths] == [f"{job.id}-0.png"]
    assert paths[0].read_text().startswith("fake media")
    assert _files(tmp_path / "out") == [f"{job.id}-0.png"]  # no temporary file left
    files = [r for r in fake.requests if r.endpoint == "file"]
    assert len(files) == 1
    assert API_KEY not in str(files[0].headers)  # outputs live elsewhere: never send the key


async def test_the_name_is_ours_and_stays_in_the_folder(fake: FakeServer, tmp_path: Path) -> None:
    # A URL path that tries to climb out, and a caller's name with separators in it.
    url = f"{fake.root_url}/files/..%2F..%2Fevil.sh"
    job = _job_with(fake, url, url)
    async with client_for(fake) as client:
        paths = await client.download(job, tmp_path, name="../../batch/row 7")
    assert [p.parent for p in paths] == [tmp_path, tmp_path]
    assert [p.name for p in paths] == ["_.._batch_row_7-0.sh", "_.._batch_row_7-1.sh"]


async def test_only_http_urls_and_nothing_sent_otherwise(fake: FakeServer, tmp_path: Path) -> None:
    job = _job_with(fake, f"{fake.root_url}/files/a.png", "file:///etc/passwd")
    async with client_for(fake) as client:
        with pytest.raises(InvalidRequestError, match="not an http"):
            await client.download(job, tmp_path)
    assert fake.count("file") == 0


async def test_failed_reads_are_retried(fake: FakeServer, tmp_path: Path) -> None:
    fake.inject("file", Reply(status=503), Reply(kind="cut"), Reply.html(502))
    job = _job_with(fake, f"{fake.root_url}/files/x.mp4", kind=AssetKind.VIDEO)
    async with client_for(fake) as client:
        paths = await client.download(job, tmp_path)
    assert [p.name for p in paths] == ["j-1-0.mp4"]
    assert paths[0].read_text() == "fake media x.mp4\n"
    assert fake.count("file") == 4
    assert _files(tmp_path) == ["j-1-0.mp4"]


async def test_a_missing_file_is_not_found_and_leaves_nothing(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.inject("file", Reply(status=404, body="no such file", content_type="text/plain"))
    job = _job_with(fake, f"{fake.root_url}/files/x.png")
    async with client_for(fake) as client:
        with pytest.raises(NotFoundError):
            await client.download(job, tmp_path)
    assert _files(tmp_path) == []


@pytest.mark.parametrize("reply", [Reply(body=b"x" * 5000), Reply(kind="endless")])
async def test_a_file_over_the_cap_is_refused(
    fake: FakeServer, tmp_path: Path, reply: Reply
) -> None:
    fake.inject("file", reply)
    job = _job_with(fake, f"{fake.root_url}/files/x.png")
    async with client_for(fake) as client:
        with pytest.raises(ProviderResponseError, match="over the download cap of 4096 bytes"):
            await client.download(job, tmp_path, max_size=4096)
    assert _files(tmp_path) == []


async def test_cancelling_a_download_leaves_no_file(fake: FakeServer, tmp_path: Path) -> None:
    fake.inject("file", Reply(kind="trickle", delay=0.05, body=b"x" * 100))
    job = _job_with(fake, f"{fake.root_url}/files/x.png")
    async with client_for(fake) as client:
        task = asyncio.create_task(client.download(job, tmp_path))
        await asyncio.sleep(0.3)  # the temporary file is open, the body half read
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert _files(tmp_path) == []
