"""Telemetry's options: whether a client records OpenTelemetry traces and metrics, and
where to. The instrumentation itself is ``creative_client/_traced.py``, imported only by
a client that has telemetry on, so that a client without it never imports
``opentelemetry`` (nor needs it installed: the ``[otel]`` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from ._traced import Traced
    from .providers import Provider

#: What a missing extra is told with.
INSTALL = "pip install 'creative_client[otel]'"


@attrs.frozen(kw_only=True)
class Telemetry:
    """OpenTelemetry traces and metrics for a client: ``CreativeClient(...,
    telemetry=Telemetry(...))``; ``telemetry=True`` is ``Telemetry()``. Needs
    ``opentelemetry-api`` (``pip install 'creative_client[otel]'``).

    ``tracer_provider`` and ``meter_provider`` default to OpenTelemetry's global ones
    (those your app, or ``opentelemetry-instrument``, set up). Spans and metrics never
    carry the API key; prompts, and the provider's messages about a failed job (which
    may quote them), only with ``capture_prompts=True``.

    >>> telemetry = Telemetry(tracer_provider=provider, capture_prompts=True)
    >>> client = CreativeClient("neocu", telemetry=telemetry)
    """

    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    capture_prompts: bool = False

    def start(self, provider: Provider, model: str | None) -> Traced:
        """The live instruments for one client of ``provider`` (``model``: its default)."""
        from ._traced import Traced

        return Traced(self, provider, model)


def telemetry_option(value: object) -> Telemetry | None:
    """``telemetry=`` as given to a client: ``None`` when off; a ``ConfigurationError``
    naming the extra when OpenTelemetry's API is not installed."""
    if value is None or value is False:
        return None
    if value is True:
        value = Telemetry()
    if not isinstance(value, Telemetry):
        raise ConfigurationError(
            f"telemetry must be True, False or a Telemetry, not {type(value).__name__}"
        )
    try:
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        raise ConfigurationError(f"telemetry= needs OpenTelemetry's API: {INSTALL}") from None
    return value
