"""Files built to hurt the loader get a sentence back, never a hang, a traceback or a segfault."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tars.config.diagnostics import ConfigError
from tars.config.yaml_loader import MAX_DEPTH, load_text

N = 50_000  # deep enough to overflow a recursive composer's C stack

NESTED = {
    "flow lists": "[" * N + "]" * N,
    "unclosed flow lists": "[" * N,
    "flow mappings": "a: " + "{a: " * N + "1" + "}" * N,
    "block lists": "- " * N + "x",
    "mixed, unclosed": "k: " + "[{x: " * N,
    "block mappings": "".join(" " * i + "a:\n" for i in range(200)) + " " * 200 + "b: 1\n",
}


@pytest.mark.parametrize("text", list(NESTED.values()), ids=list(NESTED))
def test_runaway_nesting_is_refused(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(text.encode(), Path("deep.yaml"), "deep.yaml")
    [problem] = caught.value.diagnostics
    assert problem.code == "yaml.depth"
    assert problem.message == f"nested more than {MAX_DEPTH} levels deep in here"
    assert problem.line >= 1 and problem.col >= 1


@pytest.mark.parametrize("text", [NESTED["flow lists"], NESTED["unclosed flow lists"]], ids=["closed", "unclosed"])
def test_depth_is_pointed_at_where_the_limit_is_passed_whatever_libyaml_allows(text: str) -> None:
    """PyYAML 6.0.3+ bundle a libyaml that refuses 1,000 nested flow levels on its own; the
    diagnostic still names the first collection past MAX_DEPTH, as with older releases."""
    with pytest.raises(ConfigError) as caught:
        load_text(text.encode(), Path("deep.yaml"), "deep.yaml")
    [problem] = caught.value.diagnostics
    assert (problem.line, problem.col, problem.path) == (1, MAX_DEPTH + 2, "$[0][0]")


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 1
    doc = load_text(("v: " + "[" * depth + "]" * depth).encode(), Path("ok.yaml"), "ok.yaml")
    value = doc.data["v"]
    for _ in range(depth - 1):
        value = value[0]
    assert value == []


def test_depth_through_aliases_is_refused() -> None:
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, MAX_DEPTH + 5)]
    with pytest.raises(ConfigError) as caught:
        load_text("\n".join(lines).encode(), Path("alias.yaml"), "alias.yaml")
    assert {d.code for d in caught.value.diagnostics} == {"yaml.depth"}


NESTED_DATA = st.recursive(
    st.one_of(st.integers(), st.text(alphabet="ab-?[{ ", max_size=4)),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3),
        st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=2), inner, min_size=1, max_size=3),
    ),
    max_leaves=40,
)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()))
    if isinstance(value, list):
        return 1 + max(map(_depth, value))
    return 0


@settings(max_examples=300, deadline=None)
@given(NESTED_DATA, st.sampled_from([False, True, None]))
def test_the_cheap_nesting_bound_never_underestimates(data: object, flow: bool | None) -> None:
    """Ordinary files skip the slow depth scan on the strength of this bound: it must hold
    for every style of YAML (block, flow, mixed; yaml.safe_dump's indentation)."""
    import yaml

    from tars.config.yaml_loader import _nesting_bound

    text = yaml.safe_dump({"root": data}, default_flow_style=flow, indent=2)
    assert _nesting_bound(text) >= _depth({"root": data})
