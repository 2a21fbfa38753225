"""The compiled-project cache: the same Project as a full load, or a full load.

A cached load must never differ from a full one, never outlive a change to anything the
load depends on (files, environment, schemas, code), never make an invalid project look
valid, never write a secret down, and never fail a command because of its own troubles.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

import tars.loading as loading
from tars import project_cache as cache
from tars.config import schema_files
from tars.config.diagnostics import ConfigError
from tars.config.secrets import FromEnv
from tars.loading import load_project
from tars.project import Project


@pytest.fixture
def full_loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Every full load (read, check, compile) the cache falls back to, by root."""
    calls: list[Path] = []
    real = loading.compile_sources

    def counting(root: Path, environment: Any = None) -> Any:
        calls.append(root)
        return real(root, environment)

    monkeypatch.setattr(loading, "compile_sources", counting)
    yield calls


@pytest.fixture
def state(example_project: Path) -> Path:
    return example_project / ".tars"


def cached(root: Path) -> Project:
    return load_project(root, cache=True)


def record(root: Path) -> Path:
    return cache.cache_file(root.resolve())


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def assert_same(a: Any, b: Any, where: str = "project") -> None:
    """Equal, and of the same types all the way down (a FromEnv stays a FromEnv, a tuple a tuple)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.compare:
                assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict | MappingProxyType):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
        if isinstance(a, FromEnv):
            assert a.variables == b.variables, where


def graph_data(project: Project) -> tuple[list[Any], list[Any]]:
    graph = project.graph
    return list(graph.nodes(data=True)), list(graph.edges(keys=True, data=True))


# --------------------------------------------------------------------------- same result


def test_a_hit_gives_the_same_project_as_a_full_load(example_project: Path, full_loads: list[Path]) -> None:
    first = cached(example_project)
    assert len(full_loads) == 1 and record(example_project).is_file()
    again = cached(example_project)
    assert len(full_loads) == 1, "the second load should come from the cache"
    full = load_project(example_project)
    assert_same(again, full)
    assert_same(first, full)
    assert again == full


def test_the_graph_and_documents_of_a_hit_are_built_on_first_use(example_project: Path, full_loads: list[Path]) -> None:
    import networkx as nx

    cached(example_project)
    hit = cached(example_project)
    assert len(full_loads) == 1
    full = load_project(example_project)
    assert graph_data(hit) == graph_data(full)
    assert nx.is_frozen(hit.graph)
    assert list(hit.documents) == list(full.documents)
    assert hit.documents["tars.yaml"].data == full.documents["tars.yaml"].data
    assert len(full_loads) == 3  # the first, the explicit full load, and one for the hit's graph
    _ = (hit.graph, hit.documents)
    assert len(full_loads) == 3  # built once


def richer_project(root: Path) -> None:
    """The example with what it lacks: a playbook taking its role's tools, a second persona
    chosen, webhook headers and URL from the environment, a .env, a $$ literal."""
    edit(
        root / "playbooks" / "business_inquiry.yaml",
        "tools: [current_time, record_outcome, press_digits, end_call]\n",
        "",
    )
    shutil.copyfile(root / "personas" / "tars.yaml", root / "personas" / "case.yaml")
    edit(root / "personas" / "case.yaml", "name: TARS", "name: CASE")
    edit(root / "tars.yaml", "persona: tars", "persona: case")
    edit(
        root / "tars.yaml",
        "      secret: ${N8N_WEBHOOK_SECRET:-}\n",
        "      secret: ${N8N_WEBHOOK_SECRET:-}\n"
        "      headers:\n"
        "        Authorization: Bearer ${N8N_TOKEN:-none}\n"
        "        X-Price: $$5 ${CURRENCY-GBP}\n",
    )
    (root / ".env").write_text("N8N_TOKEN=from-dotenv-token\nN8N_WEBHOOK_SECRET=dotenv-webhook-secret\n")


def test_a_hit_equals_a_full_load_for_a_richer_project(
    example_project: Path, full_loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    richer_project(example_project)
    monkeypatch.delenv("CURRENCY", raising=False)
    monkeypatch.setenv("TARS_PUBLIC_URL", "https://public.example.org")
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key-from-the-environment")
    cached(example_project)
    hit = cached(example_project)
    assert len(full_loads) == 1
    full = load_project(example_project)
    assert_same(hit, full)
    assert hit.persona.name == "CASE"
    assert hit.playbooks["business_inquiry"].tools == full.playbooks["business_inquiry"].tools
    assert "ask_owner" in hit.playbooks["business_inquiry"].tools  # the delegate role's
    assert hit.tools["send_to_n8n"].webhook.headers["Authorization"] == "Bearer from-dotenv-token"
    assert hit.tools["send_to_n8n"].webhook.headers["X-Price"] == "$5 GBP"
    assert hit.secrets == full.secrets == {"gemini-key-from-the-environment", "dotenv-webhook-secret"}
    assert hit.needs == full.needs and hit.needs["send_to_n8n"] >= {"lookup_contact", "make_goal_call"}
    assert graph_data(hit) == graph_data(full)


# --------------------------------------------------------------------------- invalidation


def test_a_yaml_edit_is_seen(example_project: Path, full_loads: list[Path]) -> None:
    cached(example_project)
    edit(example_project / "tars.yaml", "name: Alex Morgan", "name: Sam Morgan")
    assert cached(example_project).owner.name == "Sam Morgan"
    assert len(full_loads) == 2
    assert cached(example_project).owner.name == "Sam Morgan"
    assert len(full_loads) == 2


def test_a_new_or_removed_file_is_seen(example_project: Path, full_loads: list[Path]) -> None:
    cached(example_project)
    shutil.copyfile(example_project / "playbooks" / "business_inquiry.yaml", example_project / "playbooks" / "ask.yml")
    assert "ask" in cached(example_project).playbooks
    (example_project / "playbooks" / "ask.yml").unlink()
    assert "ask" not in cached(example_project).playbooks
    assert len(full_loads) == 3


def test_an_edit_that_breaks_the_project_is_an_error_not_the_cached_project(
    example_project: Path, full_loads: list[Path]
) -> None:
    cached(example_project)
    before = record(example_project).read_bytes()
    edit(example_project / "playbooks" / "business_inquiry.yaml", "next: wrap_up", "next: wrap_upp")
    with pytest.raises(ConfigError) as raised:
        cached(example_project)
    assert "'wrap_upp' is not a step" in str(raised.value.diagnostics)
    assert record(example_project).read_bytes() == before, "an invalid project is never recorded"
    edit(example_project / "playbooks" / "business_inquiry.yaml", "next: wrap_upp", "next: wrap_up")
    cached(example_project)
    assert len(full_loads) == 2  # back as it was: the record is good again


def test_an_invalid_project_is_never_recorded(example_project: Path, state: Path) -> None:
    edit(example_project / "tars.yaml", "timezone: Europe/London\n  region", "timezone: Europe/Lindon\n  region")
    for _ in range(2):
        with pytest.raises(ConfigError):
            cached(example_project)
    assert not record(example_project).exists()


def test_an_environment_change_is_seen(
    example_project: Path, full_loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cached(example_project)
    monkeypatch.setenv("TARS_PUBLIC_URL", "https://elsewhere.example.com")
    assert cached(example_project).section("telephony")["public_url"] == "https://elsewhere.example.com"
    assert len(full_loads) == 2
    monkeypatch.setenv("TARS_PUBLIC_URL", "https://elsewhere.example.com")
    cached(example_project)
    assert len(full_loads) == 2
    monkeypatch.delenv("TARS_PUBLIC_URL")
    assert cached(example_project).section("telephony")["public_url"] == "https://tars.example.com"
    assert len(full_loads) == 3


def test_a_secret_change_is_seen(
    example_project: Path, full_loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "first-token-value")
    assert cached(example_project).secrets == {"first-token-value"}
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "second-token-value")
    assert cached(example_project).secrets == {"second-token-value"}
    assert cached(example_project).secrets == {"second-token-value"}
    assert len(full_loads) == 2


def test_an_environment_value_that_makes_the_project_invalid_is_an_error(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit(example_project / "tars.yaml", "${TARS_PUBLIC_URL:-https://tars.example.com}", "${TARS_PUBLIC_URL}")
    monkeypatch.setenv("TARS_PUBLIC_URL", "https://tars.example.com")
    cached(example_project)
    monkeypatch.setenv("TARS_PUBLIC_URL", "tars.example.com")
    with pytest.raises(ConfigError, match="must be an absolute URL"):
        cached(example_project)
    monkeypatch.delenv("TARS_PUBLIC_URL")
    with pytest.raises(ConfigError, match="TARS_PUBLIC_URL is not set"):
        cached(example_project)


def test_a_dotenv_change_is_seen(example_project: Path, full_loads: list[Path]) -> None:
    cached(example_project)
    (example_project / ".env").write_text("TARS_PUBLIC_URL=https://from-dotenv.example.com\n")
    assert cached(example_project).section("telephony")["public_url"] == "https://from-dotenv.example.com"
    (example_project / ".env").write_text("TARS_PUBLIC_URL=https://from-dotenv.example.com\n# a comment\n")
    cached(example_project)
    assert len(full_loads) == 3  # any change to .env's bytes


def test_a_schema_change_is_seen(
    example_project: Path, full_loads: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cached(example_project)
    copy = tmp_path / "schemas"
    shutil.copytree(schema_files.schemas_dir(), copy)
    monkeypatch.setattr(schema_files, "schemas_dir", lambda: copy)
    cached(example_project)
    assert len(full_loads) == 1  # the same bytes elsewhere: still a hit
    with (copy / "playbook.schema.json").open("a") as fh:
        fh.write("\n")
    cached(example_project)
    assert len(full_loads) == 2


def test_a_new_version_or_code_change_is_a_miss(
    example_project: Path, full_loads: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cached(example_project)
    monkeypatch.setattr(cache, "__version__", "99.0")
    cached(example_project)
    assert len(full_loads) == 2
    cached(example_project)
    assert len(full_loads) == 2
    fake = tmp_path / "tars"
    (fake / "config").mkdir(parents=True)
    (fake / "project.py").write_text("# another compiler\n")
    monkeypatch.setattr(cache, "_PACKAGE", fake)
    cached(example_project)
    assert len(full_loads) == 3


# --------------------------------------------------------------------------- damage


def _truncate(text: bytes) -> bytes:
    return text[: len(text) // 2]


def _tamper_payload(text: bytes) -> bytes:
    return text.replace(b"Alex Morgan", b"Eve Mallory")


def _wrong_mac(text: bytes) -> bytes:
    header, _, payload = text.partition(b"\n")
    head = json.loads(header)
    head["mac"] = "0" * 64
    return json.dumps(head).encode() + b"\n" + payload


def _other_format(text: bytes) -> bytes:
    header, _, payload = text.partition(b"\n")
    return json.dumps({**json.loads(header), "format": 0}).encode() + b"\n" + payload


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda _: b"",
    "garbage": lambda _: b"\x00\xff not json at all",
    "truncated": _truncate,
    "tampered": _tamper_payload,
    "wrong-mac": _wrong_mac,
    "other-format": _other_format,
    "pickle": lambda _: b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00.",
    "json-but-not-a-record": lambda _: b'{"format": 1, "tars": "0.1.0", "mac": ""}\n[]',
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_record_means_a_full_load_and_a_new_record(
    example_project: Path, full_loads: list[Path], damage: str
) -> None:
    cached(example_project)
    path = record(example_project)
    good = path.read_bytes()
    path.write_bytes(DAMAGE[damage](good))
    project = cached(example_project)
    assert len(full_loads) == 2
    assert project.owner.name == "Alex Morgan"
    assert path.read_bytes() != DAMAGE[damage](good), "the record is rewritten"
    cached(example_project)
    assert len(full_loads) == 2


def test_a_damaged_or_missing_key_means_a_full_load(example_project: Path, state: Path, full_loads: list[Path]) -> None:
    cached(example_project)
    key = state / cache.FOLDER / cache.KEY_FILE
    key.write_bytes(b"short")
    cached(example_project)
    assert len(full_loads) == 2
    key.unlink()
    cached(example_project)  # a new key; the old record no longer verifies
    cached(example_project)
    assert len(full_loads) == 3


def test_an_unusable_state_folder_costs_speed_not_the_command(
    example_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full_loads: list[Path]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    monkeypatch.setenv("TARS_HOME", str(blocker))
    assert cached(example_project).owner.name == "Alex Morgan"
    assert cached(example_project).owner.name == "Alex Morgan"
    assert len(full_loads) == 2


def test_projects_sharing_a_state_folder_keep_their_own_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full_loads: list[Path]
) -> None:
    from tars.scaffold import scaffold

    monkeypatch.setenv("TARS_HOME", str(tmp_path / "home"))
    one, two = tmp_path / "one", tmp_path / "two"
    scaffold(one)
    scaffold(two)
    edit(two / "tars.yaml", "name: Alex Morgan", "name: Robin Two")
    for _ in range(2):
        assert cached(one).owner.name == "Alex Morgan"
        assert cached(two).owner.name == "Robin Two"
    assert len(full_loads) == 2
    assert len(list((tmp_path / "home" / cache.FOLDER).glob("project-*.json"))) == 2


# --------------------------------------------------------------------------- secrets, format


def test_secrets_are_masked_but_never_written_down(
    example_project: Path, state: Path, monkeypatch: pytest.MonkeyPatch, full_loads: list[Path]
) -> None:
    secrets = {
        "TWILIO_AUTH_TOKEN": "twilio-token-5f0c9a",
        "GEMINI_API_KEY": "gemini-key-77aa31",
        "TARS_OWNER_PIN": "482916",
        "N8N_WEBHOOK_SECRET": "n8n-secret-0b9e",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    cached(example_project)
    hit = cached(example_project)
    assert len(full_loads) == 1
    assert hit.secrets == set(secrets.values())
    assert hit.owner.pin == "482916"
    written = b"".join(p.read_bytes() for p in sorted((state / cache.FOLDER).iterdir()))
    for value in secrets.values():
        assert value.encode() not in written
        assert hashlib.sha256(value.encode()).hexdigest().encode() not in written
    text = record(example_project).read_text()
    assert "${TWILIO_AUTH_TOKEN:-}" in text  # the reference, resolved again on every load
    assert (state / cache.FOLDER / cache.KEY_FILE).stat().st_mode & 0o077 == 0
    assert record(example_project).stat().st_mode & 0o077 == 0


def test_the_record_is_plain_json(example_project: Path) -> None:
    cached(example_project)
    header, payload = record(example_project).read_text(encoding="utf-8").split("\n", 1)
    assert set(json.loads(header)) == {"format", "tars", "mac"}
    assert set(json.loads(payload)) == {"documents", "env", "needs"}


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ({"a": [1, 2.5, True, None, "x"]}, True),
        ({1: "int key"}, False),
        ({"a": float("nan")}, False),
        ({"a": float("inf")}, False),
        ({"a": (1, 2)}, False),
        ({"a": FromEnv("x", ("X",))}, False),
    ],
)
def test_only_data_json_gives_back_as_it_is_is_recorded(value: Any, plain: bool) -> None:
    assert cache._plain(value) is plain


# --------------------------------------------------------------------------- who uses it


def test_validate_never_uses_the_cache(example_project: Path, tars: Any, full_loads: list[Path]) -> None:
    assert tars("--project", example_project, "validate").exit_code == 0
    assert not record(example_project).exists()
    cached(example_project)
    assert tars("--project", example_project, "validate").exit_code == 0
    assert len(full_loads) == 3  # validate checked everything again


def test_commands_use_the_cache(example_project: Path, tars: Any, full_loads: list[Path]) -> None:
    for _ in range(2):
        result = tars("--project", example_project, "config", "show")
        assert result.exit_code == 0, result.output
    assert len(full_loads) == 1
