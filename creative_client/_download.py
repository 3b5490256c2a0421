"""Downloading a job's outputs: names made here, bodies streamed to a temporary file
and renamed into place, sizes capped, only http(s)."""

from __future__ import annotations

import asyncio
import mimetypes
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from ._models import Asset, AssetKind, Job
from ._transport import Transport
from .errors import InvalidRequestError
from .providers import HttpCall

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
    *,
    name: str | None,
    max_size: int,
    limit: asyncio.Semaphore,
) -> list[Path]:
    """Fetch every output of ``job`` into ``dest_dir`` as ``{name}-{n}.{ext}``."""
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
                content_type = await transport.fetch(call, part, max_size)
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
