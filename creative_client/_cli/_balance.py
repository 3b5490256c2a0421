"""``creative balance``, and the balance check a batch makes before it sends anything.

A provider documents a balance or not (``Provider.balance_call``); nothing here names
one. ``creative batch`` reads it when the run has submits to send: a balance of 0 or
less stops the run (exit 2, nothing sent) unless ``--force``; a provider without a
balance is not asked; a balance that cannot be read is warned about and the run goes
on, since the submits themselves will say (402) whether the account can pay.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .._client import CreativeClient
from .._fallback import FallbackClient
from ..errors import CreativeError, NotSupportedError
from ._settings import settings, simulation

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


async def show_balance(args: argparse.Namespace) -> int:
    """``creative balance``: the number on stdout. Exit 1 when the provider could not
    be read, 2 when it documents no balance."""
    async with simulation(args) as simulated, CreativeClient(**settings(args, simulated)) as c:
        try:
            left = await c.balance()
        except NotSupportedError as exc:
            print(f"creative: error: {exc.message}", file=sys.stderr)
            return EXIT_USAGE
        except CreativeError as exc:
            print(f"creative: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print(number(left), flush=True)
    return EXIT_OK


async def balance_allows(
    client: CreativeClient | FallbackClient, submits: bool, force: bool, warn: Callable[[str], None]
) -> bool:
    """Whether a batch goes on to its submits: False (said through ``warn``) when the
    balance of every provider it runs with is 0 or less and not ``force``. ``submits``:
    the run has rows to submit (a run that only reads jobs already paid for is never
    stopped). With fallback providers, the first that may pay ends the check."""
    if not submits:
        return True
    empty: list[str] = []
    clients = client.clients if isinstance(client, FallbackClient) else (client,)
    for each in clients:
        left = await _balance(each, warn)
        if left is None or left > 0:
            if empty:
                warn(f"creative: {'; '.join(empty)}: its submits go to {each.provider}")
            return True
        empty.append(f"the {each.provider} balance is {number(left)}")
    said = "; ".join(empty)
    if force:
        warn(f"creative: {said}; going on (--force): submits it cannot pay for fail (402)")
        return True
    warn(
        f"creative: error: {said}: nothing was sent. Top up the account and run the same "
        "command again, or run with --force to send anyway"
    )
    return False


async def _balance(client: CreativeClient, warn: Callable[[str], None]) -> float | None:
    """The provider's balance; ``None`` when it has none or it cannot be read (said)."""
    try:
        return await client.balance()
    except NotSupportedError:
        return None
    except CreativeError as exc:
        warn(
            f"creative: warning: cannot read the {client.provider} balance "
            f"({type(exc).__name__}: {exc.message}); going on"
        )
        return None


def number(value: float) -> str:
    """A balance as people write it: ``42``, not ``42.0``; ``12.5`` as it is."""
    return str(int(value)) if value.is_integer() else repr(value)
