"""Retry policy: a frozen value per client, the backoff wait generator it drives, and
the retry loop (``retrying``) the transport wraps around a send."""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Awaitable, Callable, Generator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import attrs
import backoff

logger = logging.getLogger("creative_client")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How hard one HTTP call is retried before its error reaches the caller.

    ``max_attempts`` counts the first try; ``max_time`` bounds all attempts and
    sleeps of one call, in seconds. Delays grow exponentially from ``base_delay``
    to ``max_delay`` with jitter; a ``Retry-After`` hint replaces the computed
    delay, capped at ``max_retry_after``.

    >>> CreativeClient("neocu", retry=RetryPolicy(max_attempts=8, max_time=120))
    """

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    max_time: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))
    base_delay: float = attrs.field(default=0.25, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=8.0, validator=attrs.validators.ge(0))
    max_retry_after: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))

    def wait_gen(self) -> Generator[float | None, BaseException | None, None]:
        """A backoff wait generator: the failed attempt's exception is sent in."""
        exc = yield None
        attempt = 0
        while True:
            hint: float | None = getattr(exc, "retry_after", None)
            delay = self.backoff(attempt) if hint is None else min(hint, self.max_retry_after)
            attempt += 1
            exc = yield delay

    def longest_call(self, request_timeout: float) -> float:
        """The longest one call can take: every attempt timing out, every pause at its cap."""
        pause = max(self.max_delay, self.max_retry_after)
        return self.max_attempts * request_timeout + (self.max_attempts - 1) * pause

    def backoff(self, attempt: int) -> float:
        """The computed delay before retry ``attempt + 1``: exponential, half jittered."""
        ceiling: float = min(self.max_delay, self.base_delay * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def retrying(
    retry: RetryPolicy,
    retryable: tuple[type[Exception], ...],
    giveup: Callable[[Exception], bool],
    send: Callable[..., Awaitable[object]],
    provider: str,
    on_retry: Callable[[Any], None] | None = None,
) -> Callable[..., Awaitable[object]]:
    """``send`` under backoff on ``retryable`` errors, as ``retry`` says, until ``giveup``
    holds; each retry logged, and told to ``on_retry`` (backoff's details: ``args``,
    ``tries``, ``wait``, ``exception``) before its pause."""
    # backoff's stubs type a wait generator as send-less; ours is sent each exception.
    wait_gen: Any = retry.wait_gen
    handlers: list[Callable[[Any], None]] = [functools.partial(_log_retry, provider)]
    if on_retry is not None:
        handlers.append(on_retry)
    retried: Callable[..., Awaitable[object]] = backoff.on_exception(
        wait_gen,
        retryable,
        giveup=giveup,
        max_tries=retry.max_attempts,
        max_time=retry.max_time,
        jitter=None,
        on_backoff=handlers,
        logger=None,
    )(send)
    return retried


def _log_retry(provider: str, details: Any) -> None:
    """One INFO line per retry; the fields also ride on the record for structured logs."""
    exc = details.get("exception")
    call = details["args"][0]
    fields = {
        "provider": provider,
        "method": call.method,
        "path": call.path,
        "error": type(exc).__name__,
        "status": getattr(exc, "status", None),
        "delay": round(float(details.get("wait") or 0.0), 3),
        "attempt": int(details.get("tries", 0)),
    }
    logger.info(
        "retrying %(provider)s %(method)s %(path)s after %(error)s (status=%(status)s) "
        "in %(delay).2fs (attempt %(attempt)d)",
        fields,
        extra=fields,
    )
