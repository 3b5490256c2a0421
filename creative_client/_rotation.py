"""Which provider a request goes to, for ``FallbackClient`` (``creative_client/_fallback.py``):
the rule that lets a submit go to the next provider only when the one before proved it
made no job (``refused``, and the checks of a request before it is sent), the cool-down
of a provider whose refusal does not pass by itself, and the error raised when every
provider refused."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from ._client import CreativeClient
from ._http import may_resend_submit
from ._models import GenerationRequest, Job
from .errors import (
    AuthenticationError,
    CreativeError,
    InsufficientBalanceError,
    InvalidRequestError,
    SubmissionUncertainError,
    TransportError,
)

logger = logging.getLogger("creative_client")

#: Seconds a provider that answered 402 or 401/403 is tried last, by default.
DEFAULT_COOLDOWN = 60.0
#: Refusals that do not pass by themselves (no balance, a wrong key): cooled down.
COOLED = (InsufficientBalanceError, AuthenticationError)
#: The answers to a submit that prove it made no job: no balance, a key refused, busy
#: (429, after the retries). Any other (400, 404, 409, 422, ...) may come after a job
#: ran (Deepixels' 400 is also "generation failed"): it is final, never sent elsewhere.
REFUSING = frozenset({401, 402, 403, 429})
#: Asked before each provider after the first: may the submit go on to it?
MayGoOn = Callable[[], bool]
#: Told each provider's name before its submit is sent (``submit_row`` journals it).
OnTry = Callable[[str], Awaitable[None]]


def refused(exc: CreativeError) -> bool:
    """Whether a submit that raised ``exc`` proves that its provider made no job: a
    connection never made, or an answer of 402, 401/403, or 429 after the retries. A
    submit that may have left and been lost (``SubmissionUncertainError``) never does,
    nor does any other answer. (A request the provider cannot take is refused by
    ``Rotation.submit`` before sending, by the client's ``validate``.)"""
    if isinstance(exc, SubmissionUncertainError):
        return False
    if isinstance(exc, TransportError):
        return may_resend_submit(exc)  # by its cause: the connection was never made
    return exc.status in REFUSING


class Rotation:
    """The clients in the order to try them: as given, but those in cool-down (after a
    402 or 401/403, for ``cooldown`` seconds on ``clock``) after the others."""

    __slots__ = ("_clock", "_until", "clients", "cooldown")

    def __init__(
        self, clients: tuple[CreativeClient, ...], cooldown: float, clock: Callable[[], float]
    ) -> None:
        self.clients = clients
        self.cooldown = cooldown
        self._clock = clock
        self._until: dict[str, float] = {}  # provider -> when its cool-down ends

    def cooling(self) -> dict[str, float]:
        """The providers in cool-down, with the seconds each has left."""
        now = self._clock()
        for name, until in list(self._until.items()):
            if until <= now:
                del self._until[name]
        return {name: until - now for name, until in self._until.items()}

    def order(self) -> Sequence[CreativeClient]:
        cooling = self.cooling()
        if not cooling:
            return self.clients
        return sorted(self.clients, key=lambda client: client.provider in cooling)

    async def submit(
        self,
        request: GenerationRequest,
        may_go_on: MayGoOn | None = None,
        on_try: OnTry | None = None,
    ) -> Job:
        """The job from the first provider that takes ``request``. The next one is asked
        only after a refusal that proves no job exists, and only while ``may_go_on()``
        says so (else the last refusal is raised, with fewer ``refusals`` than
        providers). A request a provider's ``validate`` refuses is never sent to it;
        ``on_try(provider)`` is awaited before each submit is sent."""
        refusals: list[CreativeError] = []
        for client in self.order():
            if refusals and may_go_on is not None and not may_go_on():
                break
            try:
                client.validate(request)  # the only refusal without an answer: unsent
            except InvalidRequestError as exc:
                refusals.append(exc)
                self._refused(client.provider, exc)
                continue
            if on_try is not None:
                await on_try(client.provider)
            try:
                job = await client.submit(request)
            except CreativeError as exc:
                if not refused(exc):
                    raise
                refusals.append(exc)
                self._refused(client.provider, exc)
                continue
            self._until.pop(client.provider, None)
            return job
        raise every(refusals)

    def validate(self, request: GenerationRequest | str) -> None:
        """Raise ``InvalidRequestError`` when no provider can take ``request``."""
        refusals: list[CreativeError] = []
        for client in self.clients:
            try:
                client.validate(request)
            except InvalidRequestError as exc:
                refusals.append(exc)
            else:
                return
        raise every(refusals)

    def _refused(self, provider: str, exc: CreativeError) -> None:
        if len(self.clients) == 1:
            return  # nothing to try instead: as a CreativeClient
        if isinstance(exc, COOLED) and self.cooldown > 0:
            self._until[provider] = self._clock() + self.cooldown
        logger.info(
            "%s refused a submit (%s, status=%s); another provider is tried",
            provider,
            type(exc).__name__,
            exc.status,
            extra={"provider": provider, "error": type(exc).__name__, "status": exc.status},
        )


def every(refusals: list[CreativeError]) -> CreativeError:
    """The error for a request every provider refused: the last refusal, holding each
    (``refusals``, and a note per earlier one for the traceback)."""
    last = refusals[-1]
    last.refusals = tuple(refusals)
    for earlier in refusals[:-1]:
        last.add_note(f"{earlier.provider} refused it before: {type(earlier).__name__}: {earlier}")
    return last
