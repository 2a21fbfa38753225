"""`/metrics`: what a Prometheus scraping `tars serve` sees after a call, and who may see it."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tars.emulators.gemini.emulator import CallTool
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then, owner_asks_for_a_reminder, reminder_call

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(line: Line, token: str | None) -> tuple[int, str]:
    assert line.server is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.get(f"{line.server.local_url}/metrics", headers=headers) as response,
    ):
        return response.status, await response.text()


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(figures: Samples, name: str, **labels: str) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_call_is_counted_with_its_turn_latencies_and_tool_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = reminder_call(CallTool("open_the_pod_bay_doors", {}))
    async with Line(project, lambda: brain) as line:
        assert line.server is not None
        status, text = await scrape(line, line.server.api_token)
        assert status == 200
        before = samples(text)
        await owner_asks_for_a_reminder(line)
        await line.settle()
        status, text = await scrape(line, line.server.api_token)
        after = samples(text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ended = {"direction": "inbound", "purpose": "inbound", "role": "owner", "result": "completed"}
    assert grew("tars_calls_total", **ended) == 1
    assert grew("tars_call_duration_seconds_count", direction="inbound") == 1
    assert grew("tars_tool_calls_total", tool="create_reminder", decision="allowed") == 1
    assert grew("tars_tool_calls_total", tool="end_call", decision="allowed") == 1
    # A name the model made up is counted, but is not a label of its own.
    assert grew("tars_tool_calls_total", tool="unknown", decision="refused") == 1
    assert not any(labels and ("tool", "open_the_pod_bay_doors") in labels for _name, labels in after)
    assert grew("tars_first_reply_seconds_count") == 1
    # The caller spoke once and TARS answered: one turn through the call path.
    assert grew("tars_turn_added_latency_seconds_count") >= 1
    assert 0 < grew("tars_turn_added_latency_seconds_sum") < grew("tars_turn_added_latency_seconds_count") * 5
    assert value(after, "tars_live_calls") == 0
    # No number, name or transcript is ever a label.
    shown = repr(sorted(after))
    assert project.owner.phone not in shown and "Helen" not in shown


async def test_metrics_ask_for_the_api_token_unless_declared_public(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, lambda: greet_then()) as line:
        assert (await scrape(line, None))[0] == 401
        status, text = await scrape(line, "not-the-token")
        assert status == 401
        assert text == "missing or wrong API token (Authorization: Bearer …), or set server.metrics_public: true"
        # A forged Twilio webhook is refused, and counted.
        async with aiohttp.ClientSession(trust_env=False) as http:
            assert line.server is not None
            async with http.post(f"{line.server.local_url}/twilio/voice", data={"From": "+15550100"}) as response:
                assert response.status == 403
        _, text = await scrape(line, line.server.api_token)
        assert value(samples(text), "tars_webhooks_refused_total", route="/twilio/voice", reason="signature") >= 1

    edit = ("tars.yaml", "server:\n", "server:\n  metrics_public: true\n")
    public = make_project(tmp_path / "q", monkeypatch, [edit])
    async with Line(public, lambda: greet_then()) as line:
        status, text = await scrape(line, None)
        assert status == 200 and "tars_calls_total" in text
