"""``creative batch --otel``: OpenTelemetry's SDK, set up for the run from the standard
environment, and shut down (everything still batched sent) at its end.

``OTEL_TRACES_EXPORTER`` and ``OTEL_METRICS_EXPORTER`` (``otlp``, the default,
``console`` or ``none``; a comma-separated list for more than one), the OTLP
exporters' own ``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, timeout, protocol:
``http/protobuf``, the default, or ``grpc`` with its exporter installed),
``OTEL_SERVICE_NAME`` (default ``creative``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_METRIC_EXPORT_INTERVAL`` and ``OTEL_BSP_*``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .._telemetry import INSTALL, Telemetry
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

_SIGNALS = {"traces": "OTEL_TRACES_EXPORTER", "metrics": "OTEL_METRICS_EXPORTER"}


@contextlib.contextmanager
def exporting(enabled: bool) -> Iterator[Telemetry | None]:
    """With ``enabled`` (``--otel``), the telemetry a batch's clients record with, its
    spans and metrics exported as the environment says; ``None`` otherwise."""
    if not enabled:
        yield None
        return
    tracer_provider, meter_provider = _providers(os.environ)
    try:
        yield Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    finally:
        tracer_provider.shutdown()  # sends the spans still batched
        meter_provider.shutdown()  # collects and sends the metrics one last time


def _providers(env: Mapping[str, str]) -> tuple[TracerProvider, MeterProvider]:
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigurationError(
            f"--otel needs OpenTelemetry's SDK and OTLP exporter: {INSTALL}"
        ) from None
    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "creative"}))
    span_exporters = _exporters(env, "traces")
    readers = [PeriodicExportingMetricReader(e) for e in _exporters(env, "metrics")]
    tracer_provider = TracerProvider(resource=resource)
    for exporter in span_exporters:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    return tracer_provider, MeterProvider(resource=resource, metric_readers=readers)


def _exporters(env: Mapping[str, str], signal: str) -> list[Any]:
    """The exporters ``OTEL_TRACES_EXPORTER`` or ``OTEL_METRICS_EXPORTER`` names."""
    variable = _SIGNALS[signal]
    found: list[Any] = []
    for name in env.get(variable, "otlp").split(","):
        name = name.strip().lower()
        if name in ("", "none"):
            continue
        if name == "console":
            found.append(_console(signal))
        elif name == "otlp":
            found.append(_otlp(env, signal))
        else:
            raise ConfigurationError(
                f"{variable}={name!r}: --otel exports with otlp, console or none"
            )
    return found


def _console(signal: str) -> Any:
    if signal == "traces":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

    return ConsoleMetricExporter()


def _otlp(env: Mapping[str, str], signal: str) -> Any:
    """An OTLP exporter for ``signal``, by the protocol the environment asks for."""
    variable = f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL"
    protocol = (
        env.get(variable) or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip()
    if protocol not in ("http/protobuf", "grpc"):
        raise ConfigurationError(f"OTLP protocol {protocol!r}: --otel sends http/protobuf or grpc")
    kind = "http" if protocol == "http/protobuf" else "grpc"
    part = "trace_exporter" if signal == "traces" else "metric_exporter"
    try:
        module = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{kind}.{part}")
    except ImportError:
        package = f"opentelemetry-exporter-otlp-proto-{kind}"
        how = INSTALL if kind == "http" else f"pip install {package}"
        raise ConfigurationError(f"--otel over {protocol} needs {package}: {how}") from None
    return module.OTLPSpanExporter() if signal == "traces" else module.OTLPMetricExporter()
