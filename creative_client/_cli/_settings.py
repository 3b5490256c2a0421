"""The client's configuration from the command line, and ``--simulate``'s fake providers."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from .. import _config
from ..errors import ConfigurationError
from ..providers import get_provider, provider_names
from ._files import FileError, check_writable_folder

#: The folder where ``--simulate`` keeps its fakes' jobs (tests point it elsewhere).
STATE_ENV = "CREATIVE_SIMULATE_STATE"


def settings(args: argparse.Namespace, simulated: dict[str, str] | None) -> dict[str, Any]:
    """The client's keyword arguments: flags over the config file over the environment."""
    env: dict[str, str] = dict(os.environ)
    if simulated is not None:
        # The fakes take any key; never send a real one to them.
        for name in provider_names():
            env[get_provider(name).api_key_env] = "simulated-key"
    if args.config is not None:
        try:
            result = _config.from_config(args.config, env, args.provider)
        except ConfigurationError as exc:
            if "no 'provider'" in str(exc):
                raise ConfigurationError(f"{exc}: give --provider or add one") from None
            raise
    else:
        if args.provider:
            env["CREATIVE_PROVIDER"] = args.provider
        elif simulated is not None:
            env.setdefault("CREATIVE_PROVIDER", "deepixels")
        if not env.get("CREATIVE_PROVIDER", "").strip():
            # The library's message names only the variable; here --provider is the
            # first thing to try.
            raise ConfigurationError(
                "no provider: give --provider (one of "
                f"{', '.join(provider_names())}) or set CREATIVE_PROVIDER"
            )
        result = _config.from_env(env)
    if simulated is not None:
        result["api_key"] = "simulated-key"
        result["base_url"] = simulated[result["provider"]]
        if get_provider(result["provider"]).takes_model and not (args.model or result.get("model")):
            result["model"] = "flux-schnell"
    if args.base_url:
        result["base_url"] = args.base_url
    if args.model:
        result["model"] = args.model
    for name in ("timeout", "concurrency", "rate"):
        value = getattr(args, name, None)
        if value is not None:
            result[name] = value
    return result


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
async def simulation(args: argparse.Namespace) -> AsyncIterator[dict[str, str] | None]:
    """With ``--simulate``, fake providers on loopback for the run: their base URLs.

    Their jobs are kept in a file per provider, so that a later command (``get``, a
    resumed ``batch``) finds the jobs of an earlier one, as with a real provider.
    """
    if not args.simulate:
        yield None
        return
    from ..testing import FakeDeepixels, FakeNeocu

    folder = state_folder(os.environ)
    check_writable_folder(folder, f"the simulated providers' jobs (${STATE_ENV})")
    duration = max(args.simulate_duration, 0.0)
    try:
        deepixels = FakeDeepixels(
            job_duration=duration, record=False, state=folder / "simulated-deepixels.jsonl"
        )
        neocu = FakeNeocu(
            job_duration=duration, record=False, state=folder / "simulated-neocu.jsonl"
        )
        await deepixels.start()
    except OSError as exc:
        raise FileError(str(exc)) from None
    try:
        try:
            await neocu.start()
        except OSError as exc:
            raise FileError(str(exc)) from None
        try:
            yield {"deepixels": deepixels.base_url, "neocu": neocu.base_url}
        finally:
            await neocu.close()
    finally:
        await deepixels.close()
