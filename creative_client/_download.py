"""Downloading a job's outputs: names made here, bodies streamed to a temporary file
and renamed into place, sizes capped, only http(s).

Sent through the client's transport (``creative_client/_transport.py``) for its rate
limit, retries and error mapping, on a session that carries no API key.
"""

from __future__ import annotations

import asyncio
import functools
import mimetypes
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from ._http import HttpCall
from ._models import Asset, AssetKind, Job, JobStatus
from ._options import positive
from ._transport import Transport
from .errors import InvalidRequestError, ProviderResponseError

#: The default cap on one downloaded file.
DEFAULT_MAX_DOWNLOAD = 512 * 1024 * 1024

_FALLBACK_EXT = {
    AssetKind.IMAGE: ".png",
    AssetKind.VIDEO: ".mp4",
    AssetKind.AUDIO: ".mp3",
    AssetKind.THREE_D: ".glb",
    AssetKind.OTHER: ".bin",
}
_EXTRA_TYPES = {"model/gltf-binary": ".glb", "audio/mpeg": ".mp3", "image/jpeg": ".jpg"}
_SAFE_EXT = re.compile(r"\.[a-z0-9]{1,8}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(name: str) -> str:
    """``name`` as a file-name stem that stays inside its folder: no separators, no
    leading dots, nothing but letters, digits, ``.``, ``_`` and ``-``."""
    stem = _UNSAFE.sub("_", name).lstrip(".")[:100]
    return stem or "output"


def extension(content_type: str | None, kind: AssetKind) -> str:
    """The file extension for a body of ``content_type``; the kind's usual one otherwise."""
    if content_type:
        mime = content_type.split(";", 1)[0].strip().lower()
        ext = _EXTRA_TYPES.get(mime) or mimetypes.guess_extension(mime)
        if ext and _SAFE_EXT.fullmatch(ext):
            return ext
    return _FALLBACK_EXT[kind]


async def download(
    transport: Transport,
    job: Job,
    dest_dir: str | os.PathLike[str],
    name: str | None,
    max_size: int,
    limit: asyncio.Semaphore,
) -> list[Path]:
    """Fetch every output of ``job`` into ``dest_dir`` as ``{name}-{n}.{ext}``."""
    if not isinstance(job, Job):
        raise InvalidRequestError("download() takes a Job", provider=transport.name)
    if job.status is not JobStatus.SUCCEEDED:
        raise InvalidRequestError(
            f"job {job.id} is {job.status}, not succeeded: nothing to download"
            + ("" if job.status.is_terminal else " yet (wait() for it first)"),
            provider=transport.name,
        )
    positive("max_size", max_size, integer=True)
    for asset in job.outputs:
        scheme = urlsplit(asset.url).scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidRequestError(
                f"output {asset.url[:100]!r} is not an http(s) URL; nothing was downloaded",
                provider=job.provider,
            )
    folder = Path(dest_dir)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    stem = safe_stem(name if name is not None else job.id)

    async def one(n: int, asset: Asset) -> Path:
        part = folder / f".{stem}-{n}.{secrets.token_hex(4)}.part"
        call = HttpCall("GET", asset.url, urlsplit(asset.url).path or "/")
        try:
            async with limit:
                content_type = await fetch(transport, call, part, max_size)
            final = folder / f"{stem}-{n}{extension(content_type, asset.kind)}"
            await asyncio.to_thread(part.replace, final)
            return final
        finally:
            _discard(part)

    tasks = [asyncio.ensure_future(one(n, a)) for n, a in enumerate(job.outputs)]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        # One failed (or we were cancelled): stop the others, wait for their clean-up.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _discard(part: Path) -> None:
    """Remove a temporary file, at once: this runs on cancellation too, where awaiting a
    thread could be cut short and leave the file behind (an unlink is quick)."""
    part.unlink(missing_ok=True)


async def fetch(transport: Transport, call: HttpCall, dest: Path, max_size: int) -> str | None:
    """Stream a GET's body into ``dest`` and return its Content-Type; retried like a
    read. Sent without the API key: outputs live on other hosts (CDNs, buckets)."""
    send = functools.partial(_fetch, transport, dest=dest, max_size=max_size)
    return await transport.retried_read(call, send)


async def _fetch(transport: Transport, call: HttpCall, dest: Path, max_size: int) -> str | None:
    session = await transport.bare_session()
    host = urlsplit(call.url).hostname or "?"
    try:
        async with session.get(call.url, timeout=transport.download_timeout) as resp:
            if not 200 <= resp.status < 300:
                data = await resp.content.read(1024)
                retry_after = resp.headers.get("Retry-After") if resp.status == 429 else None
                raise transport.errors.for_status(
                    resp.status, data, retry_after, host=host, path=call.path
                )
            length = resp.content_length
            size = 0
            if length is None or length <= max_size:
                size = await _stream_to(resp, dest, max_size)
            if size > max_size or (length is not None and length > max_size):
                raise ProviderResponseError(
                    f"{host}{call.path} is over the download cap of {max_size} bytes",
                    provider=transport.name,
                    status=resp.status,
                )
            return resp.headers.get("Content-Type")
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise transport.errors.lost(call, exc, host) from exc


async def _stream_to(resp: aiohttp.ClientResponse, dest: Path, max_size: int) -> int:
    """Write the body to ``dest`` in a worker thread, a MiB at a time, stopping once past
    ``max_size``; the bytes seen."""
    out = await asyncio.to_thread(dest.open, "wb")
    try:
        size = 0
        buf = bytearray()
        async for chunk in resp.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > max_size:
                break
            buf += chunk
            if len(buf) >= 1 << 20:
                await asyncio.to_thread(out.write, bytes(buf))
                buf.clear()
        if buf and size <= max_size:
            await asyncio.to_thread(out.write, bytes(buf))
        return size
    finally:
        await asyncio.to_thread(out.close)
