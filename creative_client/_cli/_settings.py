"""The client's configuration from the command line, and ``--simulate``'s fake provider."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from .. import _config
from .._client import CreativeClient
from .._fallback import FallbackClient
from .._rotation import DEFAULT_COOLDOWN
from ..errors import ConfigurationError
from ..providers import get_provider, provider_names
from ._files import FileError, check_writable_folder

#: The folder where ``--simulate`` keeps its fakes' jobs (tests point it elsewhere).
STATE_ENV = "CREATIVE_SIMULATE_STATE"


@attrs.frozen
class Simulated:
    """The fake a ``--simulate`` run talks to: its provider, where it listens, and a
    model it takes (for providers whose requests need one)."""

    provider: str
    base_url: str
    model: str | None


def settings(args: argparse.Namespace, simulated: Simulated | None) -> dict[str, Any]:
    """The client's keyword arguments: flags over the config file over the environment."""
    result = _configured(args, simulated is not None)
    if simulated is not None:
        result["provider"] = simulated.provider
        result["api_key"] = "simulated-key"
        result["base_url"] = simulated.base_url
        if simulated.model is not None and not (args.model or result.get("model")):
            result["model"] = simulated.model
    if args.base_url:
        result["base_url"] = args.base_url
    if args.model:
        result["model"] = args.model
    return _shared_flags(args, result)


def _shared_flags(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with the client options given as flags (every provider's alike)."""
    for name in ("timeout", "concurrency", "rate", "max_jobs", "share", "telemetry"):
        value = getattr(args, name, None)
        if value is not None:
            result[name] = value
    return result


def fallback_settings(
    args: argparse.Namespace, simulated: Simulated | None
) -> tuple[list[dict[str, Any]], float | None]:
    """The batch's providers' keyword arguments: the first as ``settings`` makes them,
    then each provider of the config file's ``fallback`` (its own table, the flags'
    client options), and the file's ``fallback_cooldown``. ``--simulate`` runs the
    first provider's fake alone (a fake never refuses a submit)."""
    first = settings(args, simulated)
    if args.config is None or simulated is not None:
        return [first], None
    every, cooldown = _config.fallback_config(args.config, dict(os.environ), first["provider"])
    return [first, *(_shared_flags(args, each) for each in every[1:])], cooldown


def batch_client(every: list[dict[str, Any]], cooldown: float | None) -> FallbackClient:
    """The client a batch on one machine runs with: its providers in order
    (``fallback_settings``: one, unless the config file names fallback providers)."""
    clients = [CreativeClient(**each) for each in every]
    return FallbackClient(clients, cooldown=DEFAULT_COOLDOWN if cooldown is None else cooldown)


def _configured(args: argparse.Namespace, simulate: bool) -> dict[str, Any]:
    """The provider and its settings from the config file or the environment."""
    env: dict[str, str] = dict(os.environ)
    if simulate:
        # The fakes take any key; never send a real one to them.
        for name in provider_names():
            env[get_provider(name).api_key_env] = "simulated-key"
    if args.config is not None:
        try:
            return _config.from_config(args.config, env, args.provider)
        except ConfigurationError as exc:
            if "no 'provider'" in str(exc):
                raise ConfigurationError(f"{exc}: give --provider or add one") from None
            raise
    if args.provider:
        env["CREATIVE_PROVIDER"] = args.provider
    elif simulate and not env.get("CREATIVE_PROVIDER", "").strip():
        from ..testing import fake_names  # only with --simulate: the library runs without it

        env["CREATIVE_PROVIDER"] = fake_names()[0]
    if not env.get("CREATIVE_PROVIDER", "").strip():
        # The library's message names only the variable; here --provider is the
        # first thing to try.
        raise ConfigurationError(
            "no provider: give --provider (one of "
            f"{', '.join(provider_names())}) or set CREATIVE_PROVIDER"
        )
    return _config.from_env(env)


def state_folder(env: Mapping[str, str]) -> Path:
    """Where ``--simulate`` keeps its jobs: ``$CREATIVE_SIMULATE_STATE``, else the
    per-user state folder (``$XDG_STATE_HOME/creative``, ``~/.local/state/creative``)."""
    given = env.get(STATE_ENV, "").strip()
    if given:
        return Path(given)
    xdg = env.get("XDG_STATE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative one is to be ignored
        return Path(xdg) / "creative"
    return Path.home() / ".local" / "state" / "creative"


@contextlib.asynccontextmanager
async def simulation(args: argparse.Namespace) -> AsyncIterator[Simulated | None]:
    """With ``--simulate``, the fake of the provider the run uses, on loopback for the
    run (``None`` without it).

    Its jobs are kept in a file per provider, so that a later command (``get``, a
    resumed ``batch``) finds the jobs of an earlier one, as with a real provider.
    Raises ``ConfigurationError`` for a provider without a fake.
    """
    if not args.simulate:
        yield None
        return
    from ..testing import fake_class  # only with --simulate: the library runs without it

    name = _configured(args, simulate=True)["provider"]
    fake_type = fake_class(name)
    folder = state_folder(os.environ)
    check_writable_folder(folder, f"the simulated providers' jobs (${STATE_ENV})")
    fake = fake_type(
        job_duration=max(args.simulate_duration, 0.0),
        record=False,
        state=folder / f"simulated-{name}.jsonl",
    )
    try:
        await fake.start()
    except OSError as exc:
        raise FileError(str(exc)) from None
    try:
        model = fake_type.sample_model if get_provider(name).takes_model else None
        yield Simulated(provider=name, base_url=fake.base_url, model=model)
    finally:
        await fake.close()
