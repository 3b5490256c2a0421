"""Providers from outside: the entry-point registry, and the Replicate example plugin
(examples/replicate_provider, installed by the Makefile) used by configuration alone,
from the CLI with ``--simulate`` and as ``python -m creative_client.testing replicate``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest
from _helpers import API_KEY
from creative_replicate import Replicate
from creative_replicate.fake import FakeReplicate

from creative_client import (
    AssetKind,
    CreativeClient,
    GenerationRequest,
    InvalidRequestError,
    JobFailedError,
    JobStatus,
    ProviderResponseError,
)
from creative_client.errors import ConfigurationError
from creative_client.providers import (
    ENTRY_POINT_GROUP,
    Deepixels,
    ProviderRegistry,
    get_provider,
    load_entry_point,
    provider_names,
)
from creative_client.testing import FakeProcess, fake_class, fake_for, fake_names

TIMEOUT = 60
PLUGIN = Path(__file__).parent.parent / "examples" / "replicate_provider"


class Impostor(Replicate):
    """A plugin that claims a built-in's name."""

    name = "deepixels"


def entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


# -- the registry ------------------------------------------------------------------------


def test_the_plugin_is_registered_through_its_entry_point() -> None:
    (declared,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "replicate"]
    assert declared.value == "creative_replicate:Replicate"
    assert get_provider("replicate") is Replicate and get_provider(" Replicate ") is Replicate
    names = provider_names()
    assert names[:2] == ("deepixels", "neocu") and "replicate" in names  # built-ins first
    assert "replicate" in fake_names() and fake_names()[0] == names[0]
    assert fake_class("replicate") is FakeReplicate


def test_a_broken_entry_point_is_named_in_a_clear_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_entry_point(entry_point("broken", "no_such_module:X"))
    message = str(caught.value)
    assert "'broken'" in message and "no_such_module:X" in message
    assert "ModuleNotFoundError" in message and ENTRY_POINT_GROUP in message
    assert caught.value.provider == "broken"


def test_a_plugin_that_fails_breaks_only_its_own_name(caplog: pytest.LogCaptureFixture) -> None:
    found = [
        entry_point("broken", "no_such_module:X"),
        entry_point("replicate", "creative_replicate:Replicate"),
        entry_point("status", "creative_client:JobStatus"),  # not a Provider
        entry_point("other", "creative_replicate:Replicate"),  # not named as its provider
        entry_point("deepixels", f"{__name__}:Impostor"),  # a name already taken
    ]
    calls: list[int] = []

    def discover() -> Iterable[EntryPoint]:
        calls.append(1)
        return found

    registry = ProviderRegistry([Deepixels], discover=discover)
    assert not calls  # nothing is read before the registry is used
    with caplog.at_level(logging.WARNING, logger="creative_client"):
        assert registry.names() == ("deepixels", "replicate")
    assert registry.lookup("replicate") is Replicate and registry.lookup("deepixels") is Deepixels
    for name, why in [
        ("broken", "failed to load: ModuleNotFoundError"),
        ("status", "is not a subclass of creative_client.providers.Provider"),
        ("other", "must be named as its provider"),
    ]:
        with pytest.raises(ConfigurationError, match=why) as caught:
            registry.lookup(name)
        assert f"provider plugin {name!r}" in str(caught.value)
    with pytest.raises(ConfigurationError, match="unknown provider 'nope'; known: deepixels, repl"):
        registry.lookup("nope")
    logged = caplog.text
    assert "'broken'" in logged and "'other'" in logged and "name is taken" in logged
    assert dict(registry) == {"deepixels": Deepixels, "replicate": Replicate}
    assert calls == [1]  # read once


def test_a_registry_survives_unreadable_metadata() -> None:
    def discover() -> Iterable[EntryPoint]:
        raise OSError("a broken site-packages")

    registry = ProviderRegistry([Deepixels], discover=discover)
    assert registry.names() == ("deepixels",)


def test_registering_checks_the_class() -> None:
    registry = ProviderRegistry(discover=list)
    with pytest.raises(TypeError, match="not a subclass"):
        registry.register(dict)  # type: ignore[arg-type]

    class Unnamed(Replicate):
        name = "Not Lower"

    with pytest.raises(ConfigurationError, match="lower-case"):
        registry.register(Unnamed)

    class Renamed(Replicate):
        name = "replicate-eu"
        default_base_url = "https://eu.example.com/v1"

    assert registry.register(Renamed) is Renamed
    assert registry.names() == ("replicate-eu",)


# -- the adapter -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "mapped"),
    [
        ("starting", JobStatus.QUEUED),
        ("processing", JobStatus.RUNNING),
        ("succeeded", JobStatus.SUCCEEDED),
        ("failed", JobStatus.FAILED),
        ("canceled", JobStatus.FAILED),
        (" SUCCEEDED ", JobStatus.SUCCEEDED),
        ("warming_up", JobStatus.RUNNING),  # unknown: still running, the string kept
    ],
)
def test_statuses(status: str, mapped: JobStatus) -> None:
    job = Replicate().parse_job("p1", {"id": "p1", "status": status})
    assert job.status is mapped and job.raw_status == status
    assert (job.error is not None) == (mapped is JobStatus.FAILED)


@pytest.mark.parametrize(
    ("output", "kinds"),
    [
        (None, []),
        ("https://replicate.delivery/a/out.mp4", [AssetKind.VIDEO]),
        (["https://r.example/1.png?x=1", "https://r.example/2.webp"], [AssetKind.IMAGE] * 2),
        (["https://r.example/song.wav", "data:model/gltf-binary;base64,AAAA"], ["audio", "3d"]),
        (["https://r.example/file"], [AssetKind.OTHER]),
    ],
)
def test_outputs(output: object, kinds: list[AssetKind]) -> None:
    doc = {
        "id": "p1",
        "status": "succeeded",
        "output": output,
        "created_at": "2025-01-02T03:04:05Z",
    }
    job = Replicate().parse_job("p1", doc)
    assert [asset.kind for asset in job.outputs] == kinds
    assert job.created_at is not None and job.created_at.utcoffset() is not None


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"id": "p1"},
        {"id": "p1", "status": 3},
        {"id": "p1", "status": "succeeded", "output": {"image": "https://x/1.png"}},
        {"id": "p1", "status": "succeeded", "output": ["https://x/1.png", 2]},
        {"id": "p1", "status": "failed", "error": {"code": 1}},
        {"id": "p1", "status": "succeeded", "created_at": 1700000000},
    ],
)
def test_a_document_that_breaks_the_contract(body: Any) -> None:
    with pytest.raises(ProviderResponseError):
        Replicate().parse_job("p1", body)


def test_submit_body_and_answer() -> None:
    adapter = Replicate()
    request = GenerationRequest(
        prompt="a fox", model="v9", input={"seed": 1}, webhook="https://hooks.example.com/x"
    )
    model = adapter.validate(request, None)
    call = adapter.submit_call(request, model)
    assert (call.method, call.url, call.submit) == (
        "POST",
        "https://api.replicate.com/v1/predictions",
        True,
    )
    assert call.json == {
        "version": "v9",
        "input": {"seed": 1, "prompt": "a fox"},
        "webhook": "https://hooks.example.com/x",
        "webhook_events_filter": ["completed"],
    }
    assert adapter.auth_headers("k") == {"Authorization": "Bearer k"}
    assert adapter.status_call("a/b").url == "https://api.replicate.com/v1/predictions/a%2Fb"
    job = adapter.parse_submit({"id": "p1", "status": "starting", "created_at": "not a time"})
    assert (job.id, job.status, job.created_at) == ("p1", JobStatus.QUEUED, None)
    with pytest.raises(ProviderResponseError):
        adapter.parse_submit({"status": "starting"})  # no id
    assert adapter.error_message({"title": "Unauthenticated", "detail": "bad token"}) == "bad token"
    assert adapter.error_message("<html>") is None
    for refused in (
        GenerationRequest(prompt="x"),  # no version anywhere
        GenerationRequest(prompt="x", model="v", files=["f1"]),
        GenerationRequest(prompt="x", model="v", input={"prompt": "y"}),
    ):
        with pytest.raises(InvalidRequestError):
            adapter.validate(refused, None)


# -- the plugin through the library, by configuration alone -------------------------------


async def test_a_client_switches_to_the_plugin_by_configuration() -> None:
    async with FakeReplicate(api_key=API_KEY, job_duration=0.05) as fake:
        config = {
            "provider": "replicate",
            "replicate": {"api_key_env": "MY_REPLICATE_KEY", "base_url": fake.base_url},
        }
        env = {"MY_REPLICATE_KEY": API_KEY}
        async with CreativeClient.from_config(config, env, model="v1", poll_initial=0.01) as c:
            job = await c.generate("a red fox", input={"num_outputs": 2})
            assert (job.provider, job.status, job.raw_status) == (
                "replicate",
                "succeeded",
                "succeeded",
            )
            assert [a.kind for a in job.outputs] == [AssetKind.IMAGE] * 2
            video = await c.generate("a red fox", model="video-v2")
            assert [a.kind for a in video.outputs] == [AssetKind.VIDEO]
            with pytest.raises(JobFailedError, match="the fake prediction failed"):
                await c.generate("a broken fox [fail]")
            submits = fake.count("submit")
            with pytest.raises(InvalidRequestError, match="files"):
                await c.generate("a fox", files=["f1"])
            assert fake.count("submit") == submits  # refused before sending
        sent = fake.requests[0]
        assert (sent.method, sent.path) == ("POST", "/v1/predictions")
        assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
        assert sent.json() == {"version": "v1", "input": {"num_outputs": 2, "prompt": "a red fox"}}

        environ = {
            "CREATIVE_PROVIDER": "replicate",
            "REPLICATE_API_KEY": API_KEY,
            "CREATIVE_BASE_URL": fake.base_url,
            "CREATIVE_MODEL": "v1",
        }
        async with CreativeClient.from_env(environ, poll_initial=0.01) as c:
            outcomes = await c.generate_many(["a", "b", "c [fail]"], concurrency=3)
        assert [o.ok for o in outcomes] == [True, True, False]


async def test_the_plugin_takes_webhooks_through_the_clients_receiver() -> None:
    async with (
        fake_for("replicate", api_key=API_KEY, job_duration=0.2) as fake,
        CreativeClient(
            "replicate",
            API_KEY,
            base_url=fake.base_url,
            model="v1",
            webhook_listen="127.0.0.1:0",
            webhook_poll=30,
        ) as client,
    ):
        job = await client.generate("a fox")
        assert job.status is JobStatus.SUCCEEDED
        assert fake.count("get") <= 1  # the callback's confirming read, not polls
        assert fake.requests[0].json()["webhook_events_filter"] == ["completed"]


def test_the_library_imports_no_fake() -> None:
    code = (
        "import sys; from creative_client import CreativeClient, get_provider;"
        "get_provider('replicate'); CreativeClient('replicate', 'k', model='v');"
        "print(sorted(m for m in sys.modules if m.endswith('testing') or m.endswith('.fake')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- the CLI and the fake's process --------------------------------------------------------


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No provider, no key: ``--simulate`` needs neither. Jobs kept in ``tmp_path``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CREATIVE_") and not k.endswith("_API_KEY")
    }
    env["CREATIVE_SIMULATE_STATE"] = str(tmp_path / "simulated")
    env.update(extra)
    return env


def creative(*args: str, cwd: Path, env: dict[str, str]) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "creative_client", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


SIM = ("--simulate", "--simulate-duration", "0")


def test_the_cli_runs_the_plugin_with_simulate(tmp_path: Path) -> None:
    env = environment(tmp_path)
    made = creative("generate", "a fox", "--provider", "replicate", *SIM, cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)
    assert job["provider"] == "replicate" and job["status"] == "succeeded"
    assert job["raw"]["version"] == FakeReplicate.sample_model
    read = creative("get", job["id"], "--provider", "replicate", *SIM, cwd=tmp_path, env=env)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["id"] == job["id"]

    lines = "".join(json.dumps({"id": i, "prompt": f"fox {i}"}) + "\n" for i in range(5))
    (tmp_path / "in.jsonl").write_text(lines)
    batch = creative("batch", "in.jsonl", "--provider", "replicate", *SIM, cwd=tmp_path, env=env)
    assert batch.returncode == 0, batch.stderr
    rows = [json.loads(line) for line in (tmp_path / "in.out.jsonl").read_text().splitlines()]
    assert [(r["id"], r["provider"], r["status"]) for r in rows] == [
        (i, "replicate", "succeeded") for i in range(5)
    ]
    assert len((tmp_path / "simulated" / "simulated-replicate.jsonl").read_text().splitlines()) == 6


def test_simulate_without_a_provider_uses_the_first_registered_one(tmp_path: Path) -> None:
    made = creative("generate", "a fox", *SIM, cwd=tmp_path, env=environment(tmp_path))
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["provider"] == fake_names()[0]


def test_the_plugins_fake_runs_in_its_own_process() -> None:
    with FakeProcess("replicate", job_duration=30) as fake:
        assert fake.provider == "replicate" and fake.base_url.endswith("/v1")
        body = json.dumps({"version": "v", "input": {"prompt": "a fox"}}).encode()
        request = urllib.request.Request(
            f"{fake.base_url}/predictions",
            data=body,
            headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201
            assert json.load(answer)["status"] == "starting"
        assert fake.stats()["submit"] == 1


def write_plugins(folder: Path) -> Path:
    """Two plugins, "installed" as metadata on a path entry (no pip, no venv): one whose
    module is missing, and one without a fake."""
    info = folder / "throwaway_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: throwaway-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nbroken = no_such_module:Broken\nnofake = nofake_plugin:NoFake\n"
    )
    (folder / "nofake_plugin.py").write_text(
        "from creative_replicate import Replicate\n\n\n"
        "class NoFake(Replicate):\n"
        '    name = "nofake"\n'
        '    api_key_env = "NOFAKE_API_KEY"\n'
        "    fake = None\n"
    )
    return folder


def test_a_broken_plugin_and_one_without_a_fake_leave_the_others_working(tmp_path: Path) -> None:
    env = environment(tmp_path, PYTHONPATH=str(write_plugins(tmp_path / "site")))
    broken = creative("generate", "a fox", "--provider", "broken", *SIM, cwd=tmp_path, env=env)
    assert broken.returncode == 2, broken.stderr
    assert "Traceback" not in broken.stderr
    assert "'broken'" in broken.stderr and "no_such_module:Broken" in broken.stderr
    assert "ModuleNotFoundError" in broken.stderr
    by_env = creative(
        "generate", "a fox", *SIM, cwd=tmp_path, env={**env, "CREATIVE_PROVIDER": "broken"}
    )
    assert by_env.returncode == 2 and "no_such_module" in by_env.stderr

    nofake = creative("generate", "a fox", "--provider", "nofake", *SIM, cwd=tmp_path, env=env)
    assert nofake.returncode == 2, nofake.stderr
    assert "Traceback" not in nofake.stderr and "KeyError" not in nofake.stderr
    assert "'nofake' has no fake" in nofake.stderr

    fine = creative("generate", "a fox", "--provider", "replicate", *SIM, cwd=tmp_path, env=env)
    assert fine.returncode == 0, fine.stderr
    assert json.loads(fine.stdout)["provider"] == "replicate"

    served = subprocess.run(
        [sys.executable, "-m", "creative_client.testing", "nofake"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert served.returncode == 2 and "invalid choice" in served.stderr


SLOW_PLUGIN = """\
import time
time.sleep(0.5)  # a slow import (a heavy dependency)
from creative_client.providers import register_provider
from creative_replicate import Replicate


class Slow(Replicate):
    name = "slow"
    api_key_env = "SLOW_API_KEY"


register_provider(Slow)  # a plugin module may register while it is imported
"""

RACE = """\
import threading, time
import creative_client.providers as providers

importer = threading.Thread(target=lambda: __import__("slow_plugin"), daemon=True)
importer.start()
time.sleep(0.1)  # the import is under way, holding its module lock
first_use = threading.Thread(target=lambda: providers.get_provider("deepixels"), daemon=True)
first_use.start()  # loads the entry points, which imports slow_plugin too
first_use.join(10)
importer.join(10)
print("deadlock" if first_use.is_alive() or importer.is_alive() else "ok")
print(providers.get_provider("slow").__name__)
"""


def test_a_plugin_registering_while_another_thread_loads_plugins_does_not_deadlock(
    tmp_path: Path,
) -> None:
    """Found in review: the registry's lock was held across a plugin's import, which
    waited for the module lock that the importing thread held while it registered."""
    site = tmp_path / "site"
    info = site / "slow_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slow-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nslow = slow_plugin:Slow\n")
    (site / "slow_plugin.py").write_text(SLOW_PLUGIN)
    done = subprocess.run(
        [sys.executable, "-c", RACE],
        env=environment(tmp_path, PYTHONPATH=str(site)),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.stdout.split() == ["ok", "Slow"], done.stdout + done.stderr
