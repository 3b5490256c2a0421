"""Client settings from the environment or a TOML file; switching provider is config only."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from .errors import ConfigurationError
from .providers import get_provider, provider_names

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

        ``options`` override; ``provider=`` there switches the table used.
        """
        settings = from_config(source, environ, options.get("provider"))
        return cls(**{**settings, **options})
