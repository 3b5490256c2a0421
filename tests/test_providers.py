"""The adapters alone: plain values in, plain values out, no network."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from creative_client import (
    AssetKind,
    ConfigurationError,
    GenerationRequest,
    JobStatus,
    ProviderResponseError,
    get_provider,
)
from creative_client.providers import Deepixels, Neocu, provider_names
from creative_client.testing import FakeDeepixels, FakeNeocu, fake_class, fake_names

DP = Deepixels()
NC = Neocu()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("created", JobStatus.QUEUED),
        ("pending", JobStatus.QUEUED),
        ("processing", JobStatus.RUNNING),
        ("completed", JobStatus.SUCCEEDED),
        ("failed", JobStatus.FAILED),
        ("COMPLETED", JobStatus.SUCCEEDED),
        (" Failed ", JobStatus.FAILED),
        ("upscaling", JobStatus.RUNNING),
        ("", JobStatus.RUNNING),
    ],
)
def test_deepixels_status_mapping(raw: str, status: JobStatus) -> None:
    job = DP.parse_job("j1", {"jobId": "j1", "status": raw})
    assert job.status is status
    assert job.raw_status == raw


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("generating", JobStatus.RUNNING),
        ("completed", JobStatus.SUCCEEDED),
        ("failed", JobStatus.FAILED),
        ("Generating", JobStatus.RUNNING),
        ("COMPLETED", JobStatus.SUCCEEDED),
        ("queued_for_gpu", JobStatus.RUNNING),
    ],
)
def test_neocu_status_mapping(raw: str, status: JobStatus) -> None:
    job = NC.parse_job("t1", {"isSuccess": True, "task": {"status": raw}, "asset": []})
    assert job.status is status
    assert job.raw_status == raw


def test_terminal_states() -> None:
    assert {s for s in JobStatus if s.is_terminal} == {JobStatus.SUCCEEDED, JobStatus.FAILED}


def test_deepixels_full_document() -> None:
    job = DP.parse_job(
        "ignored",
        {
            "jobId": "j1",
            "model": "m",
            "status": "completed",
            "input": {"prompt": "x"},
            "webhook": None,
            "date": 1735689600000,
            "output": {"imageUrl": ["https://cdn/a.png", "https://cdn/b.png"], "videoUrl": None},
            "somethingNew": {"nested": True},
        },
    )
    assert job.id == "j1"
    assert job.created_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert [(a.url, a.kind) for a in job.outputs] == [
        ("https://cdn/a.png", AssetKind.IMAGE),
        ("https://cdn/b.png", AssetKind.IMAGE),
    ]
    assert job.raw["somethingNew"] == {"nested": True}


def test_deepixels_minimal_and_video() -> None:
    job = DP.parse_job("j9", {"status": "completed", "output": {"videoUrl": "https://cdn/v.mp4"}})
    assert job.id == "j9" and job.created_at is None
    assert [(a.url, a.kind) for a in job.outputs] == [("https://cdn/v.mp4", AssetKind.VIDEO)]


def test_failed_jobs_carry_a_message() -> None:
    assert DP.parse_job("j", {"status": "failed", "message": "NSFW"}).error == "NSFW"
    assert DP.parse_job("j", {"status": "failed"}).error
    task = {"isSuccess": True, "task": {"status": "failed", "message": ["out of memory"]}}
    assert NC.parse_job("t", task).error == "out of memory"


def test_neocu_assets() -> None:
    job = NC.parse_job(
        "t1",
        {
            "isSuccess": True,
            "task": {"status": "completed", "message": [], "date": "2025-01-01T00:00:00"},
            "asset": [
                {
                    "url": "https://n/a.mp3",
                    "type": "Sound",
                    "_id": "a1",
                    "name": "a.mp3",
                    "thumbnail": "",
                    "embed": "https://n/e",
                    "status": "completed",
                },
                {"url": "https://n/b.glb", "type": "3d"},
                {"url": "https://n/c.bin", "type": "hologram"},
                {"url": "", "type": "image", "status": "generating"},
            ],
        },
    )
    assert [(a.url, a.kind, a.id) for a in job.outputs] == [
        ("https://n/a.mp3", AssetKind.AUDIO, "a1"),
        ("https://n/b.glb", AssetKind.THREE_D, None),
        ("https://n/c.bin", AssetKind.OTHER, None),
    ]
    assert job.outputs[0].thumbnail is None
    assert job.created_at == datetime(2025, 1, 1, tzinfo=UTC)  # no offset: taken as UTC


BAD_DEEPIXELS: list[Any] = [
    None,
    [],
    "completed",
    3,
    {},
    {"status": None},
    {"status": 1},
    {"status": "completed", "jobId": 5},
    {"status": "completed", "date": "2025-01-01"},
    {"status": "completed", "date": True},
    {"status": "completed", "output": []},
    {"status": "completed", "output": {"imageUrl": "https://cdn/a.png"}},
    {"status": "completed", "output": {"imageUrl": [1]}},
    {"status": "completed", "output": {"videoUrl": ["x"]}},
]


@pytest.mark.parametrize("body", BAD_DEEPIXELS)
def test_deepixels_contract_breaks_are_typed(body: Any) -> None:
    with pytest.raises(ProviderResponseError):
        DP.parse_job("j", body)


BAD_NEOCU: list[Any] = [
    None,
    [],
    {},
    {"task": None},
    {"task": {"status": 3}},
    {"task": {"status": "completed", "date": "not a date"}},
    {"task": {"status": "completed", "message": [1]}},
    {"task": {"status": "completed"}, "asset": {"url": "x"}},
    {"task": {"status": "completed"}, "asset": [{"url": 7}]},
    {"isSuccess": False, "error": "System Error"},
    {"isSuccess": False, "task": {"status": "completed"}},
]


@pytest.mark.parametrize("body", BAD_NEOCU)
def test_neocu_contract_breaks_are_typed(body: Any) -> None:
    with pytest.raises(ProviderResponseError):
        NC.parse_job("t", body)


def test_submit_answers() -> None:
    assert DP.parse_submit({"jobId": "j1", "status": "created"}).id == "j1"
    assert NC.parse_submit({"task_id": "t1", "message": "success"}).id == "t1"
    for adapter, bad in (
        (DP, {"status": "created"}),
        (NC, {"message": "success"}),
        (DP, {"jobId": 1}),
        (NC, "t1"),
    ):
        with pytest.raises(ProviderResponseError):
            adapter.parse_submit(bad)


def test_calls() -> None:
    req = GenerationRequest(prompt="fox", input={"steps": 4})
    assert DP.validate(req, "flux") == "flux"
    assert DP.validate(GenerationRequest(prompt="fox", model="sdxl"), "flux") == "sdxl"
    assert NC.validate(GenerationRequest(prompt="fox"), "flux") is None
    call = DP.submit_call(req, "flux")
    assert (call.method, call.url, call.submit) == (
        "POST",
        "https://api.deepixels.co/v1/generate",
        True,
    )
    assert call.json == {"model": "flux", "input": {"steps": 4, "prompt": "fox"}}
    get = DP.status_call("job 1")
    assert (get.url, get.params, get.submit) == (
        "https://api.deepixels.co/v1/get",
        {"jobId": "job 1"},
        False,
    )
    assert NC.status_call("a/b").url == "https://api.neocu.com/v1/task/a%2Fb"
    assert NC.submit_call(GenerationRequest(prompt="fox"), None).json == {"query": "fox"}


def test_auth_headers() -> None:
    assert DP.auth_headers("k") == {"x-api-key": "k"}
    assert NC.auth_headers("k") == {"api-key": "k"}


def test_error_messages() -> None:
    assert DP.error_message({"status": "error", "message": "Invalid request"}) == "Invalid request"
    assert NC.error_message({"error": "Payment Required", "message": "low compute balance"}) == (
        "Payment Required: low compute balance"
    )
    assert NC.error_message({"error": "System Error. Please try again"}) == (
        "System Error. Please try again"
    )
    assert DP.error_message("<html>") is None and NC.error_message(None) is None


def test_registry() -> None:
    # The built-ins are registered (a plugin installed alongside adds its own names).
    assert {"deepixels", "neocu"} <= set(provider_names())
    assert {"deepixels", "neocu"} <= set(fake_names())
    assert fake_class("deepixels") is FakeDeepixels and fake_class("neocu") is FakeNeocu
    for name in fake_names():  # each fake speaks for the adapter registered under its name
        assert fake_class(name).name == get_provider(name).name == name
    assert get_provider(" DEEPIXELS ") is Deepixels
    with pytest.raises(ConfigurationError, match="unknown provider"):
        get_provider("midjourney")


def test_request_is_frozen_and_copies_its_input() -> None:
    extras = {"steps": 4}
    req = GenerationRequest(prompt="x", input=extras, files=["a"])
    extras["steps"] = 99
    assert req.input["steps"] == 4
    assert req.files == ("a",)
    with pytest.raises(AttributeError):
        req.prompt = "y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        GenerationRequest(prompt="x", files="abc")
