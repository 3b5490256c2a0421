"""OpenTelemetry traces and metrics (``telemetry=``): the real client over real HTTP
against the fakes, recorded by the OpenTelemetry SDK's in-memory exporter and reader."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from _helpers import API_KEY, client_for
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from creative_client import (
    ConfigurationError,
    CreativeClient,
    JobFailedError,
    SubmissionUncertainError,
    Telemetry,
)
from creative_client.testing import FakeDeepixels, FakeServer
from creative_client.testing._replies import Reply

ROOT = Path(__file__).resolve().parent.parent


class Otel:
    """A tracer and a meter provider of the SDK, recording in memory."""

    def __init__(self, capture_prompts: bool = False) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.telemetry = Telemetry(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            capture_prompts=capture_prompts,
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name == name]

    def points(self) -> list[tuple[str, dict[str, Any], Any]]:
        """Every data point: (metric name, attributes, point)."""
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        found.append((metric.name, dict(point.attributes or {}), point))
        return found

    def total(self, name: str, where: dict[str, Any] | None = None) -> float:
        """A counter's sum, or a histogram's count, over points whose attributes hold
        ``where``."""
        total = 0.0
        for metric, attributes, point in self.points():
            if metric == name and all(attributes.get(k) == v for k, v in (where or {}).items()):
                total += point.count if hasattr(point, "count") else point.value
        return total

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def otel() -> Iterator[Otel]:
    recorded = Otel()
    yield recorded
    recorded.close()


def attributes_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def test_a_generate_is_a_span_whose_requests_are_its_children(
    fake: FakeServer, otel: Otel
) -> None:
    outer = otel.tracer_provider.get_tracer("the app")
    async with client_for(fake, telemetry=otel.telemetry) as client:
        with outer.start_as_current_span("the request that caused it") as caused:
            job = await client.generate("a red fox")
    spans = otel.finished()
    [generate] = otel.named("creative.generate")
    assert generate.parent is not None
    assert generate.parent.span_id == caused.get_span_context().span_id
    assert generate.context.trace_id == caused.get_span_context().trace_id
    attributes = attributes_of(generate)
    assert attributes["creative.provider"] == fake.name
    assert attributes["creative.job.id"] == job.id
    assert attributes["creative.job.outcome"] == "succeeded"
    assert attributes["creative.job.status"] == "succeeded"
    assert generate.status.status_code is StatusCode.UNSET

    requests = children(spans, generate)
    assert len(requests) >= 2
    submit, *reads = sorted(requests, key=lambda s: s.start_time or 0)
    url = urlsplit(fake.base_url)
    for span in requests:
        http = attributes_of(span)
        assert span.kind is SpanKind.CLIENT
        assert span.name == f"{http['http.request.method']} {http['url.template']}"
        assert http["server.address"] == url.hostname
        assert http["server.port"] == url.port
        assert str(http["url.full"]).startswith(fake.base_url)
        assert 200 <= int(http["http.response.status_code"]) < 300
        assert http["creative.provider"] == fake.name
        assert "error.type" not in http and "http.request.resend_count" not in http
    assert attributes_of(submit)["http.request.method"] == "POST"
    assert all(attributes_of(r)["http.request.method"] == "GET" for r in reads)
    assert job.id not in submit.name and all(job.id not in r.name for r in reads)


async def test_a_retried_request_shows_each_attempt_its_resend_count_and_delay(
    otel: Otel,
) -> None:
    async with FakeDeepixels(api_key=API_KEY) as fake:
        limited = Reply(status=429, json={"error": "slow down"}, headers={"Retry-After": "0.05"})
        fake.inject("submit", limited)
        fake.inject("get", Reply(status=503, json={"error": "busy"}), Reply(kind="cut"))
        async with client_for(fake, telemetry=otel.telemetry) as client:
            await client.generate("a red fox")

    first, again = sorted(otel.named("POST /generate"), key=lambda s: s.start_time or 0)
    assert attributes_of(first)["http.response.status_code"] == 429
    assert attributes_of(first)["error.type"] == "429"
    assert first.status.status_code is StatusCode.ERROR
    assert "http.request.resend_count" not in attributes_of(first)
    resent = attributes_of(again)
    assert resent["http.request.resend_count"] == 1
    assert resent["creative.retry.delay"] == 0.05  # the provider's Retry-After
    assert resent["http.response.status_code"] == 200

    reads = sorted(otel.named("GET /get"), key=lambda s: s.start_time or 0)
    busy, cut, answered = (attributes_of(s) for s in reads[:3])
    assert busy["error.type"] == "503" and "http.request.resend_count" not in busy
    assert cut["http.request.resend_count"] == 1
    assert str(cut["error.type"]).startswith("aiohttp.")  # what failed: the connection
    assert "http.response.status_code" not in cut
    assert answered["http.request.resend_count"] == 2
    assert float(answered["creative.retry.delay"]) > 0
    assert answered["http.response.status_code"] == 200
    parents = {s.parent.span_id if s.parent is not None else None for s in reads[:3]}
    assert parents == {otel.named("creative.generate")[0].context.span_id}  # siblings

    assert otel.total("creative.client.retries") == 3
    assert (
        otel.total("creative.client.retries", {"error.type": "429", "http.request.method": "POST"})
        == 1
    )
    assert otel.total("creative.client.retries", {"error.type": "503", "url.template": "/get"}) == 1
    assert otel.total("http.client.request.duration", {"http.response.status_code": 429}) == 1
    assert otel.total("http.client.request.duration", {"http.response.status_code": 503}) == 1
    assert otel.total("http.client.request.duration", {"http.response.status_code": 200}) == 2
    assert otel.total("http.client.request.duration", {"url.template": "/get"}) == 3


async def test_a_failed_job_is_an_error_span_and_counted_as_failed(
    fake: FakeServer, otel: Otel
) -> None:
    async with client_for(fake, telemetry=otel.telemetry) as client:
        with pytest.raises(JobFailedError) as caught:
            await client.generate("a broken fox [fail]")
    [span] = otel.named("creative.generate")
    attributes = attributes_of(span)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "JobFailedError"
    assert attributes["error.type"] == "creative_client.errors.JobFailedError"
    assert attributes["creative.job.outcome"] == "failed"
    assert attributes["creative.job.id"] == caught.value.job.id
    assert "creative.job.error" not in attributes  # the provider's words: only when captured
    assert otel.total("creative.client.jobs", {"creative.job.outcome": "failed"}) == 1
    assert otel.total("creative.client.jobs", {"creative.job.outcome": "succeeded"}) == 0
    assert otel.total("creative.client.job.duration", {"creative.job.outcome": "failed"}) == 1


@pytest.mark.parametrize(
    ("reply", "error_type"), [(Reply(status=500), "500"), (Reply(kind="drop"), "aiohttp.")]
)
async def test_an_uncertain_submit_is_recorded(
    fake: FakeServer, otel: Otel, reply: Reply, error_type: str
) -> None:
    fake.inject("submit", reply)
    async with client_for(fake, telemetry=otel.telemetry) as client:
        with pytest.raises(SubmissionUncertainError):
            await client.generate("a red fox")
    [post] = [s for s in otel.finished() if s.name.startswith("POST ")]  # never resent
    assert str(attributes_of(post)["error.type"]).startswith(error_type)
    [span] = otel.named("creative.generate")
    attributes = attributes_of(span)
    assert attributes["creative.job.outcome"] == "uncertain"
    assert attributes["error.type"] == "creative_client.errors.SubmissionUncertainError"
    assert otel.total("creative.client.submits.uncertain", {"creative.provider": fake.name}) == 1
    assert otel.total("creative.client.jobs", {"creative.job.outcome": "uncertain"}) == 1
    assert otel.total("creative.client.retries") == 0
    assert otel.total("creative.client.job.duration") == 0


async def test_a_batchs_metrics(fake: FakeServer, otel: Otel) -> None:
    prompts = [f"a fox {n}" for n in range(6)] + ["a broken fox [fail]"]
    async with client_for(fake, telemetry=otel.telemetry) as client:
        outcomes = await client.generate_many(prompts, concurrency=4)
    assert sum(o.ok for o in outcomes) == 6
    assert otel.total("creative.client.jobs", {"creative.provider": fake.name}) == 7
    assert otel.total("creative.client.jobs", {"creative.job.outcome": "succeeded"}) == 6
    assert otel.total("creative.client.jobs", {"creative.job.outcome": "failed"}) == 1
    assert otel.total("creative.client.job.duration") == 7
    assert otel.total("http.client.request.duration", {"http.request.method": "POST"}) == 7
    reads = otel.total("http.client.request.duration", {"http.request.method": "GET"})
    assert reads >= 7
    assert otel.total("http.client.request.duration", {"http.response.status_code": 200}) >= reads
    active = [p for name, _, p in otel.points() if name == "creative.client.jobs.active"]
    assert [p.value for p in active] == [0]  # every job in flight came back down
    assert len(otel.named("creative.generate")) == 7
    assert len({s.context.trace_id for s in otel.named("creative.generate")}) == 7


async def test_submit_and_wait_are_spans_of_their_own_linked(fake: FakeServer, otel: Otel) -> None:
    async with client_for(fake, telemetry=otel.telemetry) as client:
        job = await client.submit("a red fox")
        done = await client.wait(job)
    assert done.id == job.id
    [submit] = otel.named("creative.submit")
    [wait] = otel.named("creative.wait")
    assert attributes_of(submit)["creative.job.id"] == job.id
    assert attributes_of(wait)["creative.job.id"] == job.id
    assert attributes_of(wait)["creative.job.outcome"] == "succeeded"
    assert [link.context.span_id for link in wait.links] == [submit.context.span_id]
    spans = otel.finished()
    assert [s.name.split()[0] for s in children(spans, submit)] == ["POST"]
    assert {s.name.split()[0] for s in children(spans, wait)} == {"GET"}
    assert otel.total("creative.client.jobs") == 1  # counted once, at its wait's end
    assert otel.total("creative.client.job.duration", {"creative.job.outcome": "succeeded"}) == 1


def every_value(otel: Otel) -> list[str]:
    """Every text a backend would receive: span names, attributes, status, events, links,
    resources, and the metrics' attributes."""
    values: list[str] = []
    for span in otel.finished():
        values += [span.name, str(span.status.description)]
        values += [f"{k}={v!s}" for k, v in attributes_of(span).items()]
        values += [json.dumps(span.to_json())]
    for name, attributes, _ in otel.points():
        values += [name] + [f"{k}={v}" for k, v in attributes.items()]
    return values


@pytest.mark.parametrize("capture", [False, True])
async def test_no_api_key_nor_prompt_unless_asked(fake: FakeServer, capture: bool) -> None:
    otel = Otel(capture_prompts=capture)
    secret_prompt = "a fox named Zebulon-8817"
    try:
        async with client_for(fake, telemetry=otel.telemetry) as client:
            await client.generate(secret_prompt)
            with pytest.raises(JobFailedError):
                await client.generate(f"{secret_prompt} [fail]")
            fake.inject("submit", Reply(status=500, json={"message": secret_prompt}))
            with pytest.raises(SubmissionUncertainError):
                await client.generate(secret_prompt)
        values = every_value(otel)
        assert len(values) > 50
        assert not [v for v in values if API_KEY in v]
        with_prompt = [v for v in values if "Zebulon" in v]
        if capture:
            for span in otel.named("creative.generate"):
                assert "Zebulon" in str(attributes_of(span)["creative.prompt"])
        else:
            assert with_prompt == []
    finally:
        otel.close()


async def test_a_password_in_the_base_url_is_redacted(otel: Otel) -> None:
    async with FakeDeepixels(api_key=API_KEY) as fake:
        base_url = fake.base_url.replace("http://", "http://robot:hunter2-pass@")
        async with client_for(fake, telemetry=otel.telemetry, base_url=base_url) as client:
            await client.generate("a red fox")
    urls = [str(attributes_of(s)["url.full"]) for s in otel.finished() if s.kind is SpanKind.CLIENT]
    assert urls and all(url.startswith("http://REDACTED:REDACTED@127.0.0.1:") for url in urls)
    assert not [v for v in every_value(otel) if "hunter2" in v]


async def test_with_a_rate_a_requests_wait_for_its_turn_is_not_its_duration(otel: Otel) -> None:
    async with FakeDeepixels(api_key=API_KEY) as fake:
        client = client_for(fake, telemetry=otel.telemetry, rate=20)
        async with client:
            await client.generate_many([f"a fox {n}" for n in range(12)])
    queued = [
        float(attributes_of(s).get("creative.rate.wait", 0.0))
        for s in otel.finished()
        if s.kind is SpanKind.CLIENT
    ]
    assert max(queued) > 0.05  # 24+ requests at 20 a second: some waited
    spans = sum(
        ((s.end_time or 0) - (s.start_time or 0)) / 1e9
        for s in otel.finished()
        if s.kind is SpanKind.CLIENT
    )
    recorded = sum(p.sum for name, _, p in otel.points() if name == "http.client.request.duration")
    assert recorded == pytest.approx(spans - sum(queued), abs=0.1)


async def test_telemetry_takes_true_or_a_telemetry() -> None:
    with pytest.raises(ConfigurationError, match="telemetry must be"):
        CreativeClient("neocu", api_key=API_KEY, telemetry="yes")  # type: ignore[arg-type]
    client = CreativeClient("neocu", api_key=API_KEY, telemetry=True)
    await client.aclose()


def run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CREATIVE_"))}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_off_nothing_of_opentelemetry_is_imported(tmp_path: Path) -> None:
    done = run_python(
        f"""
        import asyncio, sys
        from creative_client import CreativeClient
        from creative_client.testing import FakeNeocu

        async def main():
            async with FakeNeocu(api_key="{API_KEY}") as fake:
                async with CreativeClient("neocu", api_key="{API_KEY}", base_url=fake.base_url,
                                          poll_initial=0.01) as client:
                    await client.generate("a red fox")
                    await client.generate_many(["a", "b"])
        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


#: Run first in a process: OpenTelemetry is not installed, as far as imports can tell.
BLOCKER = """
import sys

class NoOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoOpenTelemetry())
"""


def test_without_the_extra_telemetry_is_a_clear_error(tmp_path: Path) -> None:
    done = run_python(
        BLOCKER
        + f"""
from creative_client import ConfigurationError, CreativeClient
CreativeClient("neocu", api_key="{API_KEY}")   # without telemetry: fine
try:
    CreativeClient("neocu", api_key="{API_KEY}", telemetry=True)
except ConfigurationError as exc:
    print(exc)
""",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'creative_client[otel]'" in done.stdout

    (tmp_path / "in.jsonl").write_text('{"id": "a", "prompt": "a fox"}\n')
    done = run_python(
        BLOCKER
        + """
from creative_client._cli import main
sys.exit(main(["batch", "in.jsonl", "--simulate", "--otel", "--quiet"]))
""",
        tmp_path,
        CREATIVE_SIMULATE_STATE=str(tmp_path / "simulated"),
    )
    assert done.returncode == 2, done.stderr
    assert "--otel needs" in done.stderr and "creative_client[otel]" in done.stderr
    assert not (tmp_path / "in.out.jsonl").exists()  # nothing ran


async def test_the_cli_batch_exports_over_otlp(tmp_path: Path) -> None:
    """``creative batch --otel`` with the standard environment, against an OTLP/HTTP
    receiver on loopback: what arrives is decoded with OpenTelemetry's own protobufs."""
    from aiohttp import web
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: dict[str, list[bytes]] = {"traces": [], "metrics": []}

    async def receive(request: web.Request) -> web.Response:
        received[request.match_info["signal"]].append(await request.read())
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/{signal}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    lines = [{"id": str(n), "prompt": f"a fox {n}"} for n in range(3)]
    lines.append({"id": "bad", "prompt": "a broken fox [fail]"})
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CREATIVE_"))}
    environ.update(
        CREATIVE_SIMULATE_STATE=str(tmp_path / "simulated"),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test",
        NO_PROXY="127.0.0.1,localhost",  # the exporter's requests honours *_PROXY
        no_proxy="127.0.0.1,localhost",
    )
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "creative_client", "batch", "in.jsonl", "--simulate",
            "--otel", "--quiet",
            cwd=tmp_path, env=environ, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await runner.cleanup()
    assert process.returncode == 1, stderr.decode()  # one row failed

    spans = []
    for body in received["traces"]:
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans:
            seen = {a.key: a.value.string_value for a in resource.resource.attributes}
            assert seen["service.name"] == "creative"
            assert seen["deployment.environment"] == "test"
            for scope in resource.scope_spans:
                assert scope.scope.name == "creative_client"
                spans += list(scope.spans)
    names = [span.name for span in spans]
    assert names.count("creative.submit") == 4
    assert names.count("creative.wait") == 4
    assert names.count("POST /generate") == 4
    assert "GET /get" in names
    submits = {span.span_id for span in spans if span.name == "creative.submit"}
    waits = [span for span in spans if span.name == "creative.wait"]
    assert {link.span_id for wait in waits for link in wait.links} == submits

    outcomes: dict[str, int] = {}
    for body in received["metrics"]:
        for resource in ExportMetricsServiceRequest.FromString(body).resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "creative.client.jobs":
                        for point in metric.sum.data_points:
                            seen = {a.key: a.value.string_value for a in point.attributes}
                            outcome = seen["creative.job.outcome"]
                            outcomes[outcome] = max(outcomes.get(outcome, 0), point.as_int)
    assert outcomes == {"succeeded": 3, "failed": 1}


def test_the_benchmark_runs() -> None:
    """``benchmarks/telemetry.py``, tiny (nothing here is timed or compared)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "telemetry.py"), "--n", "40", "--rounds",
         "1", "--concurrency", "8"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "on/absent" in out.stdout and "120 spans" in out.stdout  # a job, 2 requests each
    requests = out.stdout.split("HTTP requests/job")[1].split()
    assert requests[:3] == ["2.00", "2.00", "2.00"]
