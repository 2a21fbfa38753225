"""`tars config show`: the configuration as TARS understands it, with every secret masked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tars.config.secrets import MASK

SECRETS = {
    "TWILIO_AUTH_TOKEN": "twilio-auth-0123456789abcdef",
    "GEMINI_API_KEY": "AIzaSy-gemini-key-9876543210",
    "TARS_API_TOKEN": "api-token-for-the-server-42",
    "TARS_OWNER_PIN": "4711",
    "N8N_WEBHOOK_SECRET": "n8n-hmac-shared-secret",
}


@pytest.mark.parametrize("args", [[], ["--json"]], ids=["yaml", "json"])
def test_secrets_never_shown(args: list[str], example_project: Path, tars: Any) -> None:
    result = tars("--project", example_project, "config", "show", *args, env=SECRETS)
    assert result.exit_code == 0, result.output
    for name, value in SECRETS.items():
        assert value not in result.output, f"{name} leaked"
    assert MASK in result.output


def test_secrets_from_dotenv_are_masked_too(example_project: Path, tars: Any) -> None:
    (example_project / ".env").write_text("\n".join(f"{name}={value}" for name, value in SECRETS.items()) + "\n")
    result = tars("--project", example_project, "config", "show", "--json")
    assert result.exit_code == 0, result.output
    for value in SECRETS.values():
        assert value not in result.output
    shown = json.loads(result.stdout)
    assert shown["telephony"]["auth_token"] == MASK
    assert shown["model"]["api_key"] == MASK
    assert shown["owner"]["pin"] == MASK
    assert shown["tools"]["webhooks"]["send_to_n8n"]["secret"] == MASK


def test_resolved_values_and_defaults(example_project: Path, tars: Any) -> None:
    env = {"TARS_PUBLIC_URL": "https://assistant.example.org", "TWILIO_ACCOUNT_SID": "AC" + "0f" * 16}
    result = tars("--project", example_project, "config", "show", "--json", env=env)
    shown = json.loads(result.stdout)
    assert shown["telephony"]["public_url"] == "https://assistant.example.org"  # not a secret
    assert shown["telephony"]["account_sid"] == "AC" + "0f" * 16
    assert shown["owner"]["phone"] == "+447700900123"  # stays text
    assert shown["telephony"]["auth_token"] == ""  # unset and defaulted: nothing to mask


def test_yaml_output_reads_back(example_project: Path, tars: Any) -> None:
    import yaml

    result = tars("--project", example_project, "config", "show")
    assert result.exit_code == 0
    shown = yaml.safe_load(result.stdout)
    assert shown["persona"] == "tars"
    assert shown["directory"]["dentist"]["hours"][0]["from"] == "09:00"


def test_invalid_project_shows_diagnostics_not_config(example_project: Path, tars: Any) -> None:
    config = example_project / "tars.yaml"
    config.write_text(config.read_text().replace("persona: tars", "persona: tarz"))
    result = tars("--project", example_project, "config", "show")
    assert result.exit_code == 1
    assert "tars.yaml:17:10  $.persona  'tarz' is not a persona; did you mean 'tars'?" in result.output
