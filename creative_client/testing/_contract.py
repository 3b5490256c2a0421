"""What a fake knows about its provider's wire contract: the hooks each fake implements.

The shared test matrix (``creative_client.testing.kit``) asks a fake these
questions instead of branching on the provider's name, so a plugin's fake that
answers them runs the same tests as the built-ins. A fake implements every
method marked abstract here; the others have defaults that fit most providers.

``FakeServer`` serves the two endpoints every provider has with one handler each,
``handle_submit`` and ``handle_read``; the hooks below the abstract ones (class
attributes and small methods) say where a provider's endpoints differ.

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
    #: The status a submit that made a job answers with (``submit_document``).
    submit_status: ClassVar[int] = 200
    #: The status a submit body ``submit_problem`` refuses is answered with.
    refusal_status: ClassVar[int] = 400
    #: The 400 message for a submit body that is not JSON; None: the body counts as
    #: ``None`` and ``submit_problem`` says what is wrong (answered ``refusal_status``).
    not_json_message: ClassVar[str | None] = None
    #: The 404 message for a read of a job the fake does not know.
    not_found_message: ClassVar[str] = "Not found"

    @abc.abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Add the provider's endpoints (under ``self.prefix``) to ``app``.

        The submit endpoint is ``self.handle_submit`` and the read one ``self.handle_read``
        (``FakeServer``'s); a handler of another endpoint starts with
        ``await self.admit(endpoint, request)`` (``"list"``, ... as the provider has them).
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
        """Why the provider refuses this submit body (parsed JSON) with
        ``refusal_status``, or None.

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

    def prompt_of(self, body: Mapping[str, Any]) -> str:
        """The prompt of an accepted submit body (counted in ``prompts``; ``[fail]`` in
        it fails the job). Default: ``body["input"]["prompt"]`` when a string, else ""."""
        inputs = body.get("input")
        prompt = inputs.get("prompt") if isinstance(inputs, Mapping) else None
        return prompt if isinstance(prompt, str) else ""

    def before_create(self, body: Mapping[str, Any]) -> Reply | None:
        """A refusal of an accepted submit body before its job is made (a 402 when the
        balance is spent, ...), or None to make it. Default: None."""
        return None

    def submit_document(self, job: FakeJob) -> dict[str, Any]:
        """The body a submit that made ``job`` answers with. Default: ``submit_answer``."""
        return self.submit_answer(job.id)

    def job_id_of(self, request: web.Request) -> str | Reply:
        """The job id a read asks for, or the answer to a read that names none.
        Default: the route's ``{id}``."""
        return request.match_info["id"]

    def read_document(self, job: FakeJob) -> dict[str, Any]:
        """The 200 body a read of ``job`` answers with. Default: its ``document``."""
        return self.document(job)
