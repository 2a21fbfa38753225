"""tars.cli.output without rich: ``line`` prints what rich would print, ``escape`` escapes as
rich does, and the listing helpers say the same things for every ``list`` command."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.markup import escape as rich_escape

from tars.cli import output

PIECES = [
    *["[", "]", "\\", "/", "=", "@", "a", "✓", "green", "bold", "dim", "[/]", "[green]", "[/green]"],
    " ",
    "[bold red]",
]
MARKUP = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


def _rich(markup: str) -> str | tuple[str, str]:
    buffer = io.StringIO()
    try:
        output.console(buffer).print(markup)
    except Exception as exc:  # rich refuses some markup; line() must then leave it to rich
        return ("refused", type(exc).__name__)
    return buffer.getvalue()


@settings(max_examples=500, deadline=None)
@given(MARKUP)
def test_bare_text_is_what_rich_prints(markup: str) -> None:
    bare = output._bare(markup)
    if bare is not None:
        assert bare + "\n" == _rich(markup)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="[]\\/ab@=", max_size=12))
def test_escape_is_rich_s(text: str) -> None:
    assert output.escape(text) == rich_escape(text)


@pytest.mark.parametrize(
    "markup",
    [
        "[green]✓[/] /tmp/p is valid: persona 'tars', 3 playbooks",
        "[green]✓[/] Reminder 1: call \\[Helen] — Sun 30 Mar 2025 14:00",
        "[Bold]x[/Bold]",  # rich refuses this one: line() must not print it bare
        "ends with a blank ",
        "two\nlines",
    ],
)
def test_line_prints_as_rich_does(markup: str, capsys: pytest.CaptureFixture[str]) -> None:
    expected = _rich(markup)
    output.reset_consoles()
    if isinstance(expected, tuple):
        with pytest.raises(Exception, match="closing tag"):
            output.line(markup)
        return
    output.line(markup)
    assert capsys.readouterr().out == expected


def test_line_leaves_a_terminal_to_rich(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    output.reset_consoles()
    output.line("[green]ok[/]")
    assert "\x1b[" in capsys.readouterr().out


def test_printing_a_line_imports_no_rich() -> None:
    probe = (
        "import sys; from tars.cli import output; output.line('[green]✓[/] fine'); "
        "print(sorted(m for m in sys.modules if m.startswith('rich')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.splitlines() == ["✓ fine", "[]"]


def test_listed_prints_json_or_the_empty_line(capsys: pytest.CaptureFixture[str]) -> None:
    output.reset_consoles()
    assert output.listed([1, 2], True, lambda n: {"n": n}, "none") is True
    assert '"n": 2' in capsys.readouterr().out
    assert output.listed([], False, str, "Nothing [bold]yet[/].") is True
    assert capsys.readouterr().out == "Nothing yet.\n"
    assert output.listed([1], False, str, "none") is False
    assert capsys.readouterr().out == ""


def test_table_is_borderless_with_a_caption_on_the_left() -> None:
    table = output.table("A", "B", caption="times in UTC")
    table.add_row("a first cell wider than the caption", "2")
    buffer = io.StringIO()
    Console(file=buffer, width=40).print(table)
    assert buffer.getvalue().splitlines()[-1].rstrip() == "times in UTC"  # left, not centred
    assert "│" not in buffer.getvalue() and "─" not in buffer.getvalue()
