"""What a fake knows about its provider's wire contract: the hooks each fake implements.

The shared test matrix (``creative_client.testing.kit``) asks a fake these
questions instead of branching on the provider's name, so a plugin's fake that
answers them runs the same tests as the built-ins. A fake implements every
method marked abstract here; the others have defaults that fit most providers.

A *shape* (``document_shapes``) describes a JSON document for hostile tests: a
``dict`` maps field names to shapes (any field may be left out), a one-element
``list`` is an array of that shape, and a string names a leaf: ``"id"``,
``"text"``, ``"status"`` (a status string), ``"time"`` (a timestamp, in whatever
encoding), ``"url"``, ``"number"``, ``"bool"``, or ``"any"``. The kit draws
near-miss documents from it: the contract's keys with hostile values.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

from aiohttp import web

if TYPE_CHECKING:
    from ._replies import Reply
    from ._server import FakeJob

Phase = Literal["queued", "running", "completed", "failed"]
PHASES: tuple[Phase, ...] = ("queued", "running", "completed", "failed")
Shape: TypeAlias = Mapping[str, "Shape"] | Sequence["Shape"] | str


class FakeContract(abc.ABC):
    """The provider-specific half of a fake: routes, documents, refusals, shapes."""

    #: The provider's name, as its adapter's ``Provider.name``.
    name: ClassVar[str]
    #: The header that carries the API key (checked by ``FakeServer.authorized``).
    auth_header: ClassVar[str]
    #: A model the fake accepts, for providers whose requests take one (else None).
    sample_model: ClassVar[str | None] = None

    @abc.abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Add the provider's endpoints (under ``self.prefix``) to ``app``.

        Each handler starts with ``await self.admit(endpoint, request)`` (endpoints
        ``"submit"`` and ``"get"``; others as the provider has them).
        """

    @abc.abstractmethod
    def status_for(self, phase: Phase) -> str:
        """The provider's status string for a job in ``phase``."""

    @abc.abstractmethod
    def document(self, job: FakeJob) -> dict[str, Any]:
        """The 200 body the read endpoint answers for ``job`` now (webhooks carry it too)."""

    @abc.abstractmethod
    def read_answer(
        self, job_id: str, status: str, *, outputs: int = 0, minimal: bool = False
    ) -> dict[str, Any]:
        """A 200 body of the read endpoint, made up: job ``job_id`` with the raw
        ``status`` string and ``outputs`` output files (http URLs). ``minimal``
        leaves out every field the contract lets the provider leave out."""

    @abc.abstractmethod
    def submit_answer(self, job_id: str) -> dict[str, Any]:
        """The 200 body a submit answers with, for a job of id ``job_id`` (even "")."""

    @abc.abstractmethod
    def error_reply(self, status: int, message: str) -> Reply:
        """An error answer in the provider's own shape, carrying ``message``."""

    @abc.abstractmethod
    def submit_problem(self, body: object) -> str | None:
        """Why the provider refuses this submit body (parsed JSON) with a 400, or None.

        Agrees with the published contract both ways: refuses what the provider
        would refuse, accepts what it would take.
        """

    @abc.abstractmethod
    def document_shapes(self) -> Mapping[Literal["submit", "read", "error"], Shape]:
        """The shapes of a submit answer, a read answer and an error body (see above)."""

    def webhook_of(self, body: Mapping[str, Any]) -> str | None:
        """The URL a job made from this submit body is POSTed to when it ends, if any.

        Default: the body's ``"webhook"`` string. Providers without webhooks return None.
        """
        url = body.get("webhook")
        return url if isinstance(url, str) else None
