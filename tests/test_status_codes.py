"""Every answer a provider's contract lists, for every provider with a fake: the kit's
``status_codes`` group (creative_client/testing/kit/status_codes.py), and Neocu's 402."""

from __future__ import annotations

import pytest
from _helpers import API_KEY, client_for

from creative_client import InsufficientBalanceError
from creative_client.testing import FakeNeocu
from creative_client.testing.kit import conformance_tests

globals().update(conformance_tests(groups=["status_codes"]))


async def test_neocu_402_low_balance() -> None:
    async with FakeNeocu(api_key=API_KEY, balance=1) as fake, client_for(fake) as client:
        await client.submit(prompt="paid for")
        with pytest.raises(InsufficientBalanceError) as info:
            await client.submit(prompt="not paid for")
    err = info.value
    assert err.status == 402
    assert err.provider_message == "Payment Required: low compute balance"
    assert fake.count("submit") == 2
    assert len(fake.jobs) == 1
