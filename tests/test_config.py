"""Configuration from the environment, TOML or a mapping; switching provider is config only."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from _helpers import API_KEY

from creative_client import ConfigurationError, CreativeClient, JobStatus
from creative_client.testing import FakeDeepixels, FakeNeocu

ROOT = Path(__file__).resolve().parent.parent


def test_from_env_deepixels() -> None:
    client = CreativeClient.from_env(
        {
            "CREATIVE_PROVIDER": "deepixels",
            "CREATIVE_MODEL": "flux-schnell",
            "CREATIVE_BASE_URL": "http://127.0.0.1:9/v1",
            "DEEPIXELS_API_KEY": API_KEY,
        }
    )
    assert client.provider == "deepixels"
    assert client.model == "flux-schnell"
    assert client.base_url == "http://127.0.0.1:9/v1"


def test_from_env_neocu_ignores_a_leftover_model() -> None:
    client = CreativeClient.from_env(
        {
            "CREATIVE_PROVIDER": "Neocu",
            "CREATIVE_MODEL": "flux-schnell",
            "NEOCU_API_KEY": API_KEY,
        }
    )
    assert client.provider == "neocu"
    assert client.model is None
    assert client.base_url == "https://api.neocu.com/v1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "CREATIVE_PROVIDER"),
        ({"CREATIVE_PROVIDER": "pixelmagic"}, "unknown provider"),
        ({"CREATIVE_PROVIDER": "neocu"}, "NEOCU_API_KEY"),
        ({"CREATIVE_PROVIDER": "deepixels", "NEOCU_API_KEY": "k"}, "DEEPIXELS_API_KEY"),
        (
            {"CREATIVE_PROVIDER": "neocu", "NEOCU_API_KEY": "k", "CREATIVE_BASE_URL": "ftp://x"},
            "base_url",
        ),
    ],
)
def test_from_env_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CreativeClient.from_env(env)


def test_from_env_overrides_win() -> None:
    env = {"CREATIVE_PROVIDER": "neocu", "NEOCU_API_KEY": API_KEY}
    client = CreativeClient.from_env(env, concurrency=7, timeout=12)
    assert client.concurrency == 7 and client.timeout == 12


def test_from_config_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "creative.toml"
    path.write_text(
        'provider = "deepixels"\n'
        "concurrency = 8\n"
        "poll_max = 2.5\n"
        "[deepixels]\n"
        'api_key_env = "MY_DP_KEY"\n'
        'model = "sdxl"\n'
        'base_url = "http://127.0.0.1:9/prefix/v1"\n'
        "[neocu]\n"
        'api_key = "inline-key"\n'
    )
    client = CreativeClient.from_config(path, {"MY_DP_KEY": API_KEY})
    assert (client.provider, client.model, client.concurrency) == ("deepixels", "sdxl", 8)
    assert client.poll_max == 2.5
    assert client.base_url == "http://127.0.0.1:9/prefix/v1"
    switched = CreativeClient.from_config(str(path), {}, provider="neocu")
    assert switched.provider == "neocu" and switched.model is None


def test_from_config_sets_the_webhook_options() -> None:
    config = {
        "provider": "deepixels",
        "webhook_listen": "127.0.0.1:0",
        "webhook_public_url": "https://hooks.example.com/creative",
        "webhook_poll": 12,
        "deepixels": {"api_key": API_KEY, "model": "m"},
    }
    client = CreativeClient.from_config(config, {})
    assert client.webhook_poll == 12.0 and client.webhook_address is None  # not open yet
    with pytest.raises(ConfigurationError, match="webhook_listen"):
        CreativeClient.from_config({**config, "webhook_listen": 8080}, {})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "no 'provider'"),
        ({"provider": "neocu", "neocu": {"api_key": "k", "colour": "red"}}, "colour"),
        ({"provider": "neocu", "concurency": 3, "neocu": {"api_key": "k"}}, "concurency"),
        ({"provider": "neocu", "concurrency": "many", "neocu": {"api_key": "k"}}, "concurrency"),
        (
            {"provider": "neocu", "neocu": {"api_key_env": "UNSET_VAR_FOR_TEST"}},
            "UNSET_VAR_FOR_TEST",
        ),
        ({"provider": "neocu", "neocu": "not a table"}, "table"),
        ({"provider": "neocu", "neocu": {"api_key": 5}}, "string"),
    ],
)
def test_from_config_errors(config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CreativeClient.from_config(config, {})


def test_from_config_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        CreativeClient.from_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("provider = \n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        CreativeClient.from_config(bad)


async def test_switching_provider_is_config_only(
    deepixels: FakeDeepixels, neocu: FakeNeocu
) -> None:
    config = {
        "deepixels": {"api_key": API_KEY, "base_url": deepixels.base_url, "model": "flux"},
        "neocu": {"api_key": API_KEY, "base_url": neocu.base_url},
        "poll_initial": 0.01,
    }
    for provider in ("deepixels", "neocu"):
        async with CreativeClient.from_config({**config, "provider": provider}) as client:
            job = await client.generate(prompt="a red fox")
        assert job.provider == provider and job.status is JobStatus.SUCCEEDED
    assert deepixels.count("submit") == 1 and neocu.count("submit") == 1


async def test_the_same_script_runs_on_either_provider(
    deepixels: FakeDeepixels, neocu: FakeNeocu
) -> None:
    """examples/from_env.py, unchanged, in a subprocess; only the environment differs."""
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CREATIVE_", "NEOCU", "DEEPIXELS"))
    }
    # CREATIVE_MODEL stays set for Neocu too: a leftover default model must not break it.
    envs = {
        "deepixels": {
            "CREATIVE_PROVIDER": "deepixels",
            "DEEPIXELS_API_KEY": API_KEY,
            "CREATIVE_BASE_URL": deepixels.base_url,
            "CREATIVE_MODEL": "flux",
        },
        "neocu": {
            "CREATIVE_PROVIDER": "neocu",
            "NEOCU_API_KEY": API_KEY,
            "CREATIVE_BASE_URL": neocu.base_url,
            "CREATIVE_MODEL": "flux",
        },
    }
    for provider, env in envs.items():
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-W",
            "error",
            str(ROOT / "examples" / "from_env.py"),
            "a red fox",
            env={**base_env, **env},
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        assert proc.returncode == 0, err.decode()
        result = json.loads(out)
        assert result["provider"] == provider
        assert result["status"] == "succeeded"
        assert result["outputs"]
    assert deepixels.count("submit") == 1 and neocu.count("submit") == 1
