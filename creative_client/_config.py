"""Client settings from the environment or a TOML file; switching provider is config only."""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from .errors import ConfigurationError
from .providers import get_provider, provider_names

logger = logging.getLogger("creative_client")

#: Client options a config may set at its top level, with the types they take.
_CLIENT_OPTIONS: Mapping[str, tuple[type, ...]] = {
    "concurrency": (int,),
    "timeout": (int, float),
    "poll_initial": (int, float),
    "poll_max": (int, float),
    "poll": (str,),
    "connect_timeout": (int, float),
    "request_timeout": (int, float),
    "webhook_listen": (str,),
    "webhook_public_url": (str,),
    "webhook_poll": (int, float),
    "rate": (int, float),
    "max_jobs": (int,),
    "share": (str,),
    "share_lease": (int, float),
}
_PROVIDER_KEYS = frozenset({"api_key", "api_key_env", "base_url", "model"})
#: Read by ``fallback_config`` (``FallbackClient.from_config``, ``creative batch``); a
#: ``CreativeClient`` runs on ``provider`` alone and only checks them.
_FALLBACK_KEYS = frozenset({"fallback", "fallback_cooldown"})


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Client keyword arguments from ``CREATIVE_PROVIDER``, ``CREATIVE_BASE_URL``,
    ``CREATIVE_MODEL``, ``CREATIVE_SHARE`` and the provider's own key variable (its
    ``api_key_env``, by convention ``<NAME>_API_KEY``: ``DEEPIXELS_API_KEY``, ``NEOCU_API_KEY``)."""
    env = os.environ if environ is None else environ
    name = env.get("CREATIVE_PROVIDER", "").strip()
    if not name:
        raise ConfigurationError(
            f"CREATIVE_PROVIDER is not set (one of {', '.join(provider_names())})"
        )
    provider = get_provider(name)
    return {
        "provider": provider.name,
        "api_key": _key_from_env(env, provider.api_key_env),
        "base_url": env.get("CREATIVE_BASE_URL") or None,
        "model": env.get("CREATIVE_MODEL") or None,
        **({"share": env["CREATIVE_SHARE"]} if env.get("CREATIVE_SHARE") else {}),
    }


def from_config(
    source: str | os.PathLike[str] | Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    provider_name: str | None = None,
) -> dict[str, Any]:
    """Client keyword arguments from a TOML file or a mapping of the same shape::

        provider = "neocu"          # which table below is used
        concurrency = 64            # optional client options
        share = "postgresql://creative@db.internal/creative"   # one budget for the fleet
        max_jobs = 64
        rate = 150

        [deepixels]
        api_key_env = "DEEPIXELS_API_KEY"   # or api_key = "..."
        model = "flux-schnell"

        [neocu]
        api_key_env = "NEOCU_API_KEY"
        base_url = "https://api.neocu.com/v1"

    ``provider_name``, when given, picks the table instead of ``provider``. Any
    registered provider (a plugin's too) may have a table.
    """
    env = os.environ if environ is None else environ
    data = _load(source)
    name = provider_name or data.get("provider")
    if not isinstance(name, str) or not name:
        raise ConfigurationError("the config has no 'provider' naming the provider to use")
    provider = get_provider(name)
    options: dict[str, Any] = {"provider": provider.name}
    for key, value in data.items():
        if key == "provider":
            continue
        if key in _FALLBACK_KEYS:
            _fallback(data, provider.name)  # checked here, used by fallback_config
            continue
        if key in _CLIENT_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, _CLIENT_OPTIONS[key]):
                kind = "a string" if _CLIENT_OPTIONS[key] == (str,) else "a number"
                raise ConfigurationError(f"config option {key!r} must be {kind}")
            options[key] = value
        elif key in provider_names():
            if not isinstance(value, Mapping):
                raise ConfigurationError(f"config section [{key}] must be a table")
        else:
            raise ConfigurationError(f"unknown config option {key!r}")
    table = data.get(provider.name, {})
    unknown = set(table) - _PROVIDER_KEYS
    if unknown:
        raise ConfigurationError(f"unknown keys in [{provider.name}]: {', '.join(sorted(unknown))}")
    for key in _PROVIDER_KEYS:
        if key in table and not isinstance(table[key], str):
            raise ConfigurationError(f"[{provider.name}] {key} must be a string")
    if "api_key" in table:
        options["api_key"] = table["api_key"]
    else:
        options["api_key"] = _key_from_env(env, table.get("api_key_env", provider.api_key_env))
    options["base_url"] = table.get("base_url")
    options["model"] = table.get("model")
    return options


def fallback_config(
    source: str | os.PathLike[str] | Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    provider_name: str | None = None,
) -> tuple[list[dict[str, Any]], float | None]:
    """Client keyword arguments for ``provider`` and each provider of ``fallback`` in
    order (each from its own table, the top-level options shared), and
    ``fallback_cooldown`` (``None`` when not set)::

        provider = "neocu"
        fallback = ["deepixels"]    # tried, in order, when a provider refuses a submit
        fallback_cooldown = 120     # seconds a provider that answered 402/401/403 is tried last

    A name in ``fallback`` equal to the provider used (``provider_name`` may switch it)
    is left out."""
    data = _load(source)
    first = from_config(data, environ, provider_name)
    names, cooldown = _fallback(data, first["provider"])
    return [first, *(from_config(data, environ, name) for name in names)], cooldown


def _fallback(data: Mapping[str, Any], provider: str) -> tuple[list[str], float | None]:
    """``fallback`` (registered names, the provider itself left out) and
    ``fallback_cooldown``, checked."""
    given = data.get("fallback", [])
    if not isinstance(given, list | tuple) or not all(isinstance(n, str) for n in given):
        raise ConfigurationError("config option 'fallback' must be a list of provider names")
    names = [get_provider(name).name for name in given]
    if len(set(names)) != len(names):
        raise ConfigurationError("config option 'fallback' names a provider twice")
    cooldown = data.get("fallback_cooldown")
    if cooldown is not None and (
        isinstance(cooldown, bool) or not isinstance(cooldown, int | float) or cooldown < 0
    ):
        raise ConfigurationError("config option 'fallback_cooldown' must be a number >= 0")
    return [name for name in names if name != provider], cooldown


def _load(source: str | os.PathLike[str] | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


def _key_from_env(env: Mapping[str, str], var: str) -> str:
    key = env.get(var, "").strip()
    if not key:
        raise ConfigurationError(f"no API key: set the environment variable {var}")
    return key


class Configurable:
    """``from_env`` and ``from_config``: the constructors both clients share
    (``creative_client/_client.py``, ``creative_client/_sync.py``)."""

    if TYPE_CHECKING:

        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Self:
        """A client configured by ``CREATIVE_PROVIDER``, ``CREATIVE_BASE_URL``,
        ``CREATIVE_MODEL``, ``CREATIVE_SHARE`` and the provider's key variable.
        ``options`` override."""
        return cls(**{**from_env(environ), **options})

    @classmethod
    def from_config(
        cls,
        source: str | os.PathLike[str] | Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Self:
        """A client configured by a TOML file or a mapping of the same shape::

            provider = "deepixels"      # the table below that is used
            concurrency = 64            # optional: client options (numbers, webhooks,
            max_jobs = 64               #   max_jobs, rate, share, share_lease)
            share = "postgresql://creative@db-host/creative"

            [deepixels]
            api_key_env = "DEEPIXELS_API_KEY"   # or api_key = "..."
            model = "flux-schnell"
            base_url = "https://api.deepixels.co/v1"

            [neocu]
            api_key_env = "NEOCU_API_KEY"

        ``options`` override; ``provider=`` there switches the table used. A
        ``fallback`` list is checked and left to ``FallbackClient.from_config``: this
        client runs on ``provider`` alone (and logs a warning saying so).
        """
        data = _load(source)
        settings = from_config(data, environ, options.get("provider"))
        others, _ = _fallback(data, settings["provider"])
        if others:
            logger.warning(
                "%s.from_config runs on %s alone: the config's fallback providers (%s) "
                "need FallbackClient.from_config",
                cls.__name__,
                settings["provider"],
                ", ".join(others),
            )
        return cls(**{**settings, **options})
