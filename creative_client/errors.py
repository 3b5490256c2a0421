"""Every error the SDK raises.

    CreativeError
    ├── ConfigurationError         the client cannot be built from what it was given
    ├── InvalidRequestError        HTTP 400, or a request refused before it was sent
    ├── AuthenticationError        HTTP 401/403
    ├── InsufficientBalanceError   HTTP 402 (Neocu: low compute balance)
    ├── NotFoundError              HTTP 404
    ├── RateLimitError             HTTP 429, after retries
    ├── ServerError                HTTP 5xx, after retries
    ├── TransportError             connection failed or timed out, after retries
    ├── ProviderResponseError      an answer that breaks the contract (not JSON, missing fields)
    ├── SubmissionUncertainError   a submit whose outcome is unknown: a job may exist
    ├── JobFailedError             the job ran and failed
    ├── JobTimeoutError            the job did not finish before the deadline
    ├── NotSupportedError          the provider documents no way to do it (a balance)
    └── ShareUnavailableError      the shared budget's database cannot be reached at start

Each error carries the provider, the HTTP status where there was one, the
provider's own message and the first bytes of the body. None ever carries an
API key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import GenerationRequest, Job

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "CreativeError",
    "InsufficientBalanceError",
    "InvalidRequestError",
    "JobFailedError",
    "JobTimeoutError",
    "NotFoundError",
    "NotSupportedError",
    "ProviderResponseError",
    "RateLimitError",
    "ServerError",
    "ShareUnavailableError",
    "SubmissionUncertainError",
    "TransportError",
]

BODY_EXCERPT = 500


class CreativeError(Exception):
    """Base of every error the SDK raises."""

    #: With ``FallbackClient``, when every provider refused a submit: the refusal raised
    #: is the last provider's, and this holds each provider's, in the order they were
    #: tried (itself last). Empty otherwise.
    refusals: tuple[CreativeError, ...] = ()

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        provider_message: str | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.provider_message = provider_message
        self.body = body[:BODY_EXCERPT] if body is not None else None

    def __str__(self) -> str:
        parts = [self.message]
        if self.provider is not None:
            parts.append(f"provider={self.provider}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.provider_message and self.provider_message not in self.message:
            parts.append(f"provider said: {self.provider_message}")
        return " | ".join(parts)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.message!r}, provider={self.provider!r}, status={self.status!r})"


class ConfigurationError(CreativeError, ValueError):
    """The client cannot be built: unknown provider, no API key, a bad config file."""


class InvalidRequestError(CreativeError):
    """The provider refused the request (400), or the SDK refused it before sending."""


class AuthenticationError(CreativeError):
    """The API key is missing or invalid (401/403)."""


class InsufficientBalanceError(CreativeError):
    """The account cannot pay for the job (402)."""


class NotFoundError(CreativeError):
    """The job does not exist (404)."""


class RateLimitError(CreativeError):
    """Still answered 429 after the retries ran out."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(CreativeError):
    """Still answered 5xx after the retries ran out."""


class TransportError(CreativeError):
    """The connection failed, broke or timed out, after the retries ran out."""


class ProviderResponseError(CreativeError):
    """An answer that is not what the contract says: not JSON, missing fields, wrong types."""


class SubmissionUncertainError(CreativeError):
    """A submit left the client but its answer was lost: the job may or may not exist.

    The SDK never sends it again by itself, since that could pay for a second
    generation. ``request`` is the request that was sent; the caller decides.
    """

    def __init__(
        self, message: str, *, request: GenerationRequest | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.request = request


class JobFailedError(CreativeError):
    """The job ran and ended FAILED; ``job`` is the failed job."""

    def __init__(self, job: Job) -> None:
        super().__init__(
            f"job {job.id} failed" + (f": {job.error}" if job.error else ""),
            provider=job.provider,
            provider_message=job.error,
        )
        self.job = job


class JobTimeoutError(CreativeError):
    """The job was not finished when the deadline passed; ``job`` is its last state seen.

    ``last_error`` is the error of the last read when reads were failing at the
    deadline (also the ``__cause__``): the job may have ended unseen, so read it again
    later rather than submit it again.
    """

    def __init__(
        self,
        job_id: str,
        timeout: float,
        *,
        job: Job | None = None,
        provider: str | None = None,
        last_error: CreativeError | None = None,
    ) -> None:
        message = f"job {job_id} not finished after {timeout:g}s"
        if last_error is not None:
            message += f" (reads were failing: {type(last_error).__name__}: {last_error.message})"
        super().__init__(message, provider=provider)
        self.job_id = job_id
        self.timeout = timeout
        self.job = job
        self.last_error = last_error


class NotSupportedError(CreativeError):
    """The provider documents no way to do this (read an account balance, say): raised
    before any request is sent."""


class ShareUnavailableError(CreativeError):
    """The database of ``share=`` could not be reached (or set up) as the client opened.

    Once open, a client that loses the database keeps its running jobs, takes no new
    slots, and reconnects by itself: this error is only ever raised at the start.
    """
