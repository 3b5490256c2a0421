"""The provider interface: wire format only, no session, no sleeping, no retries."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn
from urllib.parse import urlsplit

from .._http import HttpCall as HttpCall  # its home before creative_client/_http.py
from .._models import GenerationRequest, Job
from ..errors import ConfigurationError, InvalidRequestError, NotSupportedError


class Provider(abc.ABC):
    """A provider's wire contract: URLs, auth header, request body, response parsing.

    An adapter builds and parses plain values; the transport sends them. A new
    provider is one subclass plus a line in ``creative_client.providers``.
    """

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    api_key_env: ClassVar[str]
    #: "module:Class" of this provider's fake (a ``creative_client.testing.FakeServer``),
    #: imported only when a test or ``creative --simulate`` asks for it.
    fake: ClassVar[str | None] = None
    takes_model: ClassVar[bool] = False
    takes_webhook: ClassVar[bool] = False
    takes_files: ClassVar[bool] = False
    takes_input: ClassVar[bool] = False
    #: The prompt travels inside ``input`` as ``input["prompt"]`` (see ``wire_input``).
    prompt_in_input: ClassVar[bool] = False

    def __init__(self, base_url: str | None = None) -> None:
        base = (base_url or self.default_base_url).rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"base_url must be an http(s) URL, got {base_url!r}", provider=self.name
            )
        self.base_url = base

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @abc.abstractmethod
    def auth_headers(self, api_key: str) -> Mapping[str, str]:
        """The headers that carry the key on every request."""

    def validate(self, request: GenerationRequest, default_model: str | None) -> str | None:
        """Check a request against what this provider can honour; the model to send.

        The model is the request's own or ``default_model``, for providers that
        take one (``None`` for the others). Raises ``InvalidRequestError`` naming
        the field; nothing has been sent.
        """
        if not isinstance(request, GenerationRequest):
            raise InvalidRequestError(
                f"expected a GenerationRequest, got {type(request).__name__}", provider=self.name
            )
        if not isinstance(request.prompt, str) or not request.prompt.strip():
            self._refuse("prompt", "must be a non-empty string")
        if request.model is not None and not self.takes_model:
            self._refuse("model", "is not taken by this provider")
        if request.webhook is not None:
            if not self.takes_webhook:
                self._refuse("webhook", "is not taken by this provider")
            _check_webhook(self, request.webhook)
        if request.files:
            if not self.takes_files:
                self._refuse("files", "is not taken by this provider")
            if not all(isinstance(f, str) and f for f in request.files):
                self._refuse("files", "must be non-empty strings (file ids)")
        if request.input and not self.takes_input:  # a mapping: the request's converter saw to it
            self._refuse("input", "is not taken by this provider")
        if self.prompt_in_input and request.input.get("prompt", request.prompt) != request.prompt:
            self._refuse("input", "has a 'prompt' that differs from the request's prompt")
        if not self.takes_model:
            return None
        model = request.model if request.model is not None else default_model
        if not isinstance(model, str) or not model:
            self._refuse(
                "model",
                "is required: pass model= on the request or set a default model "
                "(the client's model=, CREATIVE_MODEL, or the CLI's --model)",
            )
        return model

    def wire_input(self, request: GenerationRequest) -> dict[str, Any]:
        """The request's ``input`` as sent: with the prompt in it if ``prompt_in_input``."""
        if self.prompt_in_input:
            return {**request.input, "prompt": request.prompt}
        return dict(request.input)

    def _refuse(self, field: str, why: str) -> NoReturn:
        raise InvalidRequestError(f"{self.name}: '{field}' {why}", provider=self.name)

    @abc.abstractmethod
    def submit_call(self, request: GenerationRequest, model: str | None) -> HttpCall:
        """The POST that creates a job, for a request ``validate`` accepted with ``model``."""

    @abc.abstractmethod
    def parse_submit(self, body: object) -> Job:
        """The job the submit answer describes. Raises ``ProviderResponseError``."""

    @abc.abstractmethod
    def status_call(self, job_id: str) -> HttpCall:
        """The GET that reads one job."""

    @abc.abstractmethod
    def parse_job(self, job_id: str, body: object) -> Job:
        """The job a read answer describes. Raises ``ProviderResponseError``."""

    @abc.abstractmethod
    def error_message(self, body: object) -> str | None:
        """The provider's own message in an error answer, if it has one."""

    def balance_call(self) -> HttpCall | None:
        """The GET that reads the account's remaining balance, or ``None`` when the
        provider documents none (the default: ``CreativeClient.balance()`` then raises
        ``NotSupportedError``, sending nothing)."""
        return None

    def parse_balance(self, body: object) -> float:
        """The balance a ``balance_call`` answer states, in the provider's own unit.
        Raises ``ProviderResponseError``; only asked when ``balance_call`` gives a call."""
        raise NotSupportedError(f"{self.name} documents no account balance", provider=self.name)


def _check_webhook(provider: Provider, url: object) -> None:
    if isinstance(url, str):
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            return
    provider._refuse("webhook", f"must be an http(s) URL, got {url!r}")
