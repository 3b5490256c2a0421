"""A ``creative_client`` provider for Replicate's prediction API, as a plugin.

Installed, it is found by its entry point (``pyproject.toml``)::

    [project.entry-points."creative_client.providers"]
    replicate = "creative_replicate:Replicate"

so ``CreativeClient("replicate", model=VERSION)``, ``CREATIVE_PROVIDER=replicate``
(with ``REPLICATE_API_KEY``), ``creative generate ... --provider replicate`` and
``--simulate`` work with no edit to ``creative_client``. The fake server for tests is
``creative_replicate.fake.FakeReplicate`` (imported only when asked for).
"""

from __future__ import annotations

from ._provider import Replicate, map_status

__all__ = ["Replicate", "map_status"]
