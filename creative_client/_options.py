"""The client's options, checked once and in one place: ``CreativeClient``'s keywords
(``creative_client/_client.py``) made into one frozen value, or a ``ConfigurationError``
naming the first that is wrong."""

from __future__ import annotations

import logging
import os

import aiohttp
import attrs

from ._retry import RetryPolicy
from ._telemetry import Telemetry, telemetry_option
from ._webhook_server import listen_address
from ._webhooks import WebhookReceiver, check_public_url
from .errors import ConfigurationError
from .providers import Provider, get_provider

logger = logging.getLogger("creative_client")


@attrs.frozen(kw_only=True)
class ClientOptions:
    """Everything a ``CreativeClient`` is made of, checked; see its docstring for each.

    ``model`` is ``None`` for a provider that takes none, ``poll_max`` is at least
    ``poll_initial``, and ``listen`` is ``webhook_listen`` as ``(host, port)``.

    >>> ClientOptions.check(provider, api_key, concurrency=8).concurrency
    8
    """

    provider: Provider
    api_key: str = attrs.field(repr=False)
    model: str | None = None
    concurrency: int = 32
    timeout: float = attrs.field(default=600.0, converter=float)
    poll_initial: float = attrs.field(default=0.5, converter=float)
    poll_max: float = attrs.field(default=5.0, converter=float)
    poll: str = "learned"
    connect_timeout: float = 10.0
    request_timeout: float = 60.0
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    rate: float | None = None
    session: aiohttp.ClientSession | None = attrs.field(default=None, repr=False)
    listen: tuple[str, int] | None = None
    webhook_public_url: str | None = attrs.field(default=None, repr=False)
    webhook_receiver: WebhookReceiver | None = attrs.field(default=None, repr=False)
    webhook_poll: float = attrs.field(default=30.0, converter=float)
    not_found_grace: float = attrs.field(default=10.0, converter=float)
    max_jobs: int | None = None
    share: str | None = attrs.field(default=None, repr=False)
    share_lease: float = attrs.field(default=30.0, converter=float)
    telemetry: Telemetry | None = None

    @property
    def webhooks(self) -> bool:
        """Whether jobs are awaited by callback (a receiver, for a provider that takes one)."""
        return self.provider.takes_webhook and (
            self.listen is not None or self.webhook_receiver is not None
        )

    @classmethod
    def check(
        cls,
        provider: str | Provider,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        model: str | None = None,
        concurrency: int = 32,
        timeout: float = 600.0,
        poll_initial: float = 0.5,
        poll_max: float = 5.0,
        poll: str = "learned",
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        rate: float | None = None,
        session: aiohttp.ClientSession | None = None,
        webhook_listen: str | None = None,
        webhook_public_url: str | None = None,
        webhook_receiver: WebhookReceiver | None = None,
        webhook_poll: float = 30.0,
        not_found_grace: float = 10.0,
        max_jobs: int | None = None,
        share: str | None = None,
        share_lease: float = 30.0,
        telemetry: bool | Telemetry = False,
    ) -> ClientOptions:
        """The options ``CreativeClient(...)`` was given, checked in the order given."""
        given = {k: v for k, v in locals().items() if k != "cls"}
        adapter = _provider(provider, base_url)
        key = _api_key(adapter, api_key)
        for name, (whole, zero_ok) in _NUMBERS.items():
            if given[name] is not None or name not in _OPTIONAL:
                positive(name, given[name], integer=whole, zero_ok=zero_ok)
        if poll not in POLL_SCHEDULES:
            raise ConfigurationError(
                f"poll must be one of {', '.join(map(repr, POLL_SCHEDULES))}, not {poll!r}"
            )
        if share is not None:
            check_share_url(share)
        listen = listen_address(webhook_listen, webhook_public_url, webhook_receiver)
        if webhook_public_url is not None:
            check_public_url(webhook_public_url)  # now, not when the receiver starts
        if model is not None and not adapter.takes_model:
            logger.debug("%s takes no model; the default model %r is not used", adapter.name, model)
            model = None
        numbers = {name: given[name] for name in _NUMBERS}
        numbers["poll_max"] = max(poll_max, poll_initial)
        return cls(
            provider=adapter,
            api_key=key,
            model=model,
            retry=retry or RetryPolicy(),
            session=session,
            listen=listen,
            webhook_public_url=webhook_public_url,
            webhook_receiver=webhook_receiver,
            share=share,
            poll=poll,
            telemetry=telemetry_option(telemetry),
            **numbers,
        )


#: ``poll``'s choices: reads placed from the durations learned, or today's backoff.
POLL_SCHEDULES = ("learned", "backoff")

#: The numeric options, in the order they are checked: (whole number?, may be 0?).
_NUMBERS: dict[str, tuple[bool, bool]] = {
    "concurrency": (True, False),
    "timeout": (False, False),
    "poll_initial": (False, True),
    "poll_max": (False, True),
    "connect_timeout": (False, False),
    "request_timeout": (False, False),
    "rate": (False, False),
    "webhook_poll": (False, False),
    "not_found_grace": (False, True),
    "max_jobs": (True, False),
    "share_lease": (False, False),
}
#: Numeric options that may be left out (``None``: no bound).
_OPTIONAL = frozenset({"rate", "max_jobs"})


def _provider(provider: str | Provider, base_url: str | None) -> Provider:
    if isinstance(provider, Provider):
        if base_url is not None:
            raise ConfigurationError("pass base_url to the Provider, not beside it")
        return provider
    return get_provider(provider)(base_url)


def _api_key(provider: Provider, api_key: str | None) -> str:
    """The key given, else the provider's variable's; never shown in a message."""
    name = provider.name
    if api_key is None:
        api_key = os.environ.get(provider.api_key_env, "").strip() or None
    if not isinstance(api_key, str) or not api_key:
        raise ConfigurationError(
            f"no API key for {name}: pass api_key= or set {provider.api_key_env}"
        )
    if not api_key.isprintable():
        # Said here, without the key, rather than by aiohttp at the first request.
        raise ConfigurationError(
            f"the API key for {name} holds a control character (a stray newline?)"
        )
    return api_key


def check_share_url(url: object) -> None:
    """``share`` must be a PostgreSQL URL that parses, and the ``[postgres]`` extra
    installed. The URL is never shown: it may hold a password."""
    if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
        raise ConfigurationError("share must be a PostgreSQL URL (postgresql://user@host:port/db)")
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise ConfigurationError(
            "share= needs the PostgreSQL driver: pip install 'creative_client[postgres]'"
        ) from None
    userinfo = url.partition("://")[2].rpartition("@")[0]
    if any(c in userinfo for c in "/?#"):
        # libpq would read part of the password as the host or the database, and then
        # show it in its errors.
        raise ConfigurationError(
            "share's user or password holds '/', '?' or '#': percent-encode them "
            "(urllib.parse.quote(password, safe=''))"
        )
    try:
        conninfo_to_dict(url)
    except Exception:  # the driver's message may quote the password
        raise ConfigurationError(
            "share is not a PostgreSQL URL that parses (is a character in the password "
            "not percent-encoded?)"
        ) from None


def shown_url(url: str) -> str:
    """A PostgreSQL URL fit for a message: user, host, port and database, nothing else
    (no password, wherever it was, and no query)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:
        return "the share's URL"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host') or 'localhost'}{port}/{parts.get('dbname', '')}"


def positive(name: str, value: object, *, integer: bool = False, zero_ok: bool = False) -> None:
    """Raise ``ConfigurationError`` unless ``value`` is a number above 0 (or at least 0)."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok and not (value >= 0 if zero_ok else value > 0):  # type: ignore[operator]
        ok = False
    if not ok:
        bound = ">= 0" if zero_ok else "> 0"
        raise ConfigurationError(f"{name} must be a {'whole ' if integer else ''}number {bound}")
