"""A YAML loader that remembers where every value came from, and refuses surprises.

What it guarantees, so configuration means what it says:

* every key and value keeps its file, line and column (for error messages);
* duplicate keys are errors, not a silent "last one wins";
* only ``true``/``false`` are booleans: ``on:``, ``no:``, ``yes`` stay strings;
* no octal or sexagesimal numbers: ``0123``, ``09:30``, ``+15551234567`` stay strings
  where YAML 1.1 would turn them into numbers;
* no custom tags, no Python objects, one document per file;
* alias bombs ("billion laughs"), recursive aliases, runaway nesting, binary and
  oversized files are refused with a message instead of a hang or a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from tars.config.diagnostics import ConfigError, Diagnostic, JsonPath, format_path

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIAS_NODES = 10_000
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}


class _Resolver(BaseResolver):
    """YAML 1.2 core-schema scalars, minus the parts that surprise people.

    The composer asks for the tag of every plain scalar (a few regular expressions each);
    the same short values (``true``, ``end``, step ids, ``2``) come back thousands of times
    in a big project, so their tags are remembered. No path resolvers are registered, so
    the composer's descend/ascend calls have nothing to do.
    """

    _known: ClassVar[dict[str, str]] = {}

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is not ScalarNode or not implicit[0]:
            return super().resolve(kind, value, implicit)
        tag = self._known.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(value) <= 64 and len(self._known) < 4096:
                self._known[value] = tag
        return tag

    def descend_resolver(self, current_node: Node | None, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


_Resolver.add_implicit_resolver(_TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Resolver.add_implicit_resolver(_TAG + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
# No leading '+' (as in YAML's JSON schema): +447700900123 is a phone number, not an int.
_Resolver.add_implicit_resolver(_TAG + "int", re.compile(r"^-?(?:0|[1-9][0-9]*)$"), list("-0123456789"))
_Resolver.add_implicit_resolver(
    _TAG + "float",
    re.compile(
        r"^(?:[-+]?(?:0|[1-9][0-9]*)?\.[0-9]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?(?:0|[1-9][0-9]*)[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(_TAG + "merge", re.compile(r"^<<$"), ["<"])


class _PythonLoader(Reader, Scanner, Parser, Composer, _Resolver):
    """PyYAML's own parser: slower, but its error messages say more than libyaml's."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


try:  # libyaml's parser is ~10x faster; the resolver and walker stay ours.
    from yaml.cyaml import CParser

    class _Loader(CParser, _Resolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Resolver.__init__(self)

except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = _PythonLoader  # type: ignore[misc,assignment]


Position = tuple[int, int]


@dataclass
class Document:
    """One YAML file: its data as plain Python values, and where each piece came from."""

    file: Path
    name: str  # the path shown to people, relative to the project root
    data: Any
    values: dict[JsonPath, Position] = field(default_factory=dict)
    keys: dict[JsonPath, Position] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def position(self, path: JsonPath, *, key: bool = False) -> Position:
        """Line and column of the value (or key) at ``path``, else of its nearest parent."""
        path = tuple(path)
        if key and path in self.keys:
            return self.keys[path]
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def diagnostic(self, path: JsonPath, message: str, *, key: bool = False, code: str = "error") -> Diagnostic:
        line, col = self.position(path, key=key)
        return Diagnostic(self.name, line, col, format_path(path), message, code)


def load_file(file: Path, name: str | None = None) -> Document:
    """Read and parse one YAML file, or raise ConfigError saying what is wrong with it."""
    name = name or str(file)

    def fail(message: str, line: int = 0, col: int = 0, code: str = "yaml") -> ConfigError:
        return ConfigError([Diagnostic(name, line, col, "$", message, code)])

    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise fail(
                f"file is {size / 1024 / 1024:.1f} MiB; TARS reads YAML files of at most "
                f"{MAX_FILE_BYTES // 1024 // 1024} MiB. Is this the right file?",
                code="yaml.size",
            )
        raw = file.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read file: {exc.strerror or exc}", code="io") from None
    return load_text(raw, file, name)


def load_text(raw: bytes, file: Path, name: str) -> Document:
    """Parse YAML bytes (already read) into a Document."""

    def fail(message: str, line: int = 0, col: int = 0, code: str = "yaml") -> ConfigError:
        return ConfigError([Diagnostic(name, line, col, "$", message, code)])

    if len(raw) > MAX_FILE_BYTES:
        raise fail(f"file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB", code="yaml.size")
    if b"\x00" in raw:
        line, col = _locate(raw, raw.index(b"\x00"))
        raise fail("file is binary, not YAML text (it contains NUL bytes)", line, col, "yaml.binary")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _locate(raw, exc.start)
        raise fail(
            f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8",
            line,
            col,
            "yaml.encoding",
        ) from None
    control = _CONTROL.search(text)
    if control is not None:
        bad = control.start()
        line = text.count("\n", 0, bad) + 1
        col = bad - (text.rfind("\n", 0, bad) + 1) + 1
        raise fail(
            f"file contains the control character {text[bad]!r}; is it a binary file?",
            line,
            col,
            "yaml.binary",
        )

    lines = text.splitlines()
    too_deep = _depth_problem(text, name) if _nesting_bound(text) > SAFE_COMPOSE_DEPTH else None
    if too_deep is not None:
        raise ConfigError([too_deep])
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_diagnostic(_python_error(text) or exc, text, name, lines)]) from None
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        raise fail(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()

    doc = Document(file=file, name=name, data=None, lines=lines)
    if node is None:
        if text.strip():
            raise fail(
                "file holds only comments, no settings; it should hold a mapping of settings",
                1,
                1,
                "yaml.empty",
            )
        raise fail("file is empty; it should hold a mapping of settings", 1, 1, "yaml.empty")
    walker = _Walker(doc)
    doc.data = walker.walk(node, ())
    if walker.errors:
        raise ConfigError(walker.errors)
    return doc


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def _locate(raw: bytes, offset: int) -> Position:
    line = raw.count(b"\n", 0, offset) + 1
    return line, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


# Above this size, syntax errors keep libyaml's wording: re-reading in pure Python is slow.
_REPARSE_LIMIT = 256 * 1024


#: Composing this deep is safe (libyaml's composer was seen to manage 20,000); the walker
#: then refuses anything past MAX_DEPTH with a diagnostic. Deeper possible nesting gets the
#: event scan (``_depth_problem``) first.
SAFE_COMPOSE_DEPTH = 1000
_INDENT = re.compile(r"^ +", re.MULTILINE)


def _nesting_bound(text: str) -> int:
    """How deep ``text`` could possibly nest, cheaply, erring high.

    Every two levels below the top cost the document at least one more column of
    indentation (block collections on a new line) or one ``-``, ``?``, ``[`` or ``{`` (a
    ``-`` opens a sequence at its key's indentation and a mapping on its own line, as in
    ``k:\n- a: 1``). Aliases add no depth to composing.
    """
    indent = max(map(len, _INDENT.findall(text)), default=0)
    return 2 * (indent + sum(text.count(c) for c in "-?[{")) + 1


#: What libyaml says when it refuses to go deeper itself (PyYAML 6.0.3+ bundle a libyaml that
#: stops flow collections at 1,000 levels); older releases have no such limit.
_LIBYAML_DEPTH_LIMIT = "exceeded maximum nesting depth"


def _depth_problem(text: str, name: str, loader: type = _Loader) -> Diagnostic | None:
    """Refuse runaway nesting before composing: the composers recurse, and libyaml's would
    overflow the C stack (a segfault, not an error) on a file of 50,000 '['s. Only run when
    ``_nesting_bound`` allows such depth: it walks every parser event in Python, which costs
    as much as the parse itself.

    Parser events come from an explicit stack, so walking them is safe at any depth. A libyaml
    that refuses deep flow collections itself (its scanner, before any event of them reaches
    us) hands the walk to PyYAML's own parser, so the diagnostic is the same whichever PyYAML
    release is installed: where the nesting passes ``MAX_DEPTH``, not where libyaml gave up.
    """
    events = loader(text)
    # One entry per open collection: [key or index, expecting a key (mappings only)].
    open_: list[list[Any]] = []
    try:
        while events.check_event():
            event = events.get_event()
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                open_.pop()
                _advance(open_)
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            top = open_[-1] if open_ else None
            if top is not None and top[1] is True:  # a mapping key, not a value
                top[0], top[1] = getattr(event, "value", "?"), False
                if isinstance(event, yaml.CollectionStartEvent):
                    open_.append([None, None])  # a complex key: the composer reports it
                continue
            if isinstance(event, yaml.CollectionStartEvent):
                if len(open_) > MAX_DEPTH:
                    path = tuple(entry[0] for entry in open_[:2])
                    mark = event.start_mark
                    return Diagnostic(
                        name,
                        mark.line + 1,
                        mark.column + 1,
                        format_path(path),
                        f"nested more than {MAX_DEPTH} levels deep in here",
                        "yaml.depth",
                    )
                mapping = isinstance(event, yaml.MappingStartEvent)
                open_.append([None, True] if mapping else [0, None])
            else:
                _advance(open_)
    except yaml.YAMLError as exc:
        if _LIBYAML_DEPTH_LIMIT in str(getattr(exc, "problem", "")) and loader is not _PythonLoader:
            return _depth_problem(text, name, _PythonLoader)
        return None  # the composer reports syntax errors with the full message
    finally:
        events.dispose()
    return None


def _advance(open_: list[list[Any]]) -> None:
    """A value ended: the enclosing mapping expects a key next, or the list moves on."""
    if not open_:
        return
    top = open_[-1]
    if top[1] is None and isinstance(top[0], int):
        top[0] += 1
    elif top[1] is False:
        top[1] = True


def _python_error(text: str) -> yaml.MarkedYAMLError | None:
    """The same syntax error as PyYAML's parser words it (libyaml's messages are terser)."""
    if len(text) > _REPARSE_LIMIT:
        return None
    loader = _PythonLoader(text)
    try:
        loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return exc
    except (yaml.YAMLError, RecursionError):
        return None
    finally:
        loader.dispose()
    return None


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, text: str, name: str, lines: list[str]) -> Diagnostic:
    """One sentence for a YAML syntax error, pointing where the fix goes, not where PyYAML gave up."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    problem = (exc.problem or "invalid YAML").strip()
    context = (exc.context or "").strip()

    def at(where: yaml.Mark | None, message: str, code: str = "yaml.syntax") -> Diagnostic:
        if where is None:
            return Diagnostic(name, line, col, "$", message, code)
        return Diagnostic(name, where.line + 1, where.column + 1, "$", message, code)

    if "expected a single document" in context or "expected '<document start>'" in problem:
        return at(mark, "file holds more than one YAML document; TARS expects exactly one", "yaml.multidoc")
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = source[: len(source) - len(source.lstrip(" \t"))]
    if "'\\t'" in problem or ("\t" in indent and col <= len(indent) + 1):
        return at(
            mark,
            "a tab is used for indentation here; YAML indents with spaces only: replace the tab with spaces",
            "yaml.tab",
        )
    if "quoted scalar" in context and "end of stream" in problem:
        return at(exc.context_mark, "this quote is never closed; add the closing quote")
    quote = _quote_before(text, mark)
    if quote is not None and quote.end_mark.line > quote.start_mark.line:
        return at(
            quote.start_mark,
            f"the quote opened here is only closed on line {quote.end_mark.line + 1}; "
            "is the closing quote missing on this line?",
        )
    if quote is not None and "found '<scalar>'" in problem:
        return at(mark, "unexpected text after the closing quote; put the whole value in quotes")
    if "mapping values are not allowed" in problem:
        return at(
            mark,
            "unexpected ':' here; if the value contains ': ', put the whole value in quotes, "
            "otherwise check the indentation",
        )
    if "could not find expected ':'" in problem:
        return at(exc.context_mark, "this line should be 'key: value'; is the ':' missing?")
    bracket = re.match(r"expected ',' or '([\]}])', but got", problem)
    if bracket:
        return at(
            exc.context_mark,
            f"the '{'[' if bracket.group(1) == ']' else '{'}' opened here is never closed with '{bracket.group(1)}'",
        )
    if "expected <block end>, but found '-'" in problem:
        return at(mark, "a list item ('- ') where 'key: value' was expected; check the indentation")
    if problem.startswith("expected <block end>") and exc.context_mark is not None:
        return at(
            mark,
            "this does not line up with the block it belongs to (which starts on line "
            f"{exc.context_mark.line + 1}); check the indentation",
        )
    alias = re.match(r"found undefined alias '(.*)'", problem)
    if alias:
        return at(mark, f"'*{alias.group(1)}' refers to an anchor '&{alias.group(1)}' that is not defined above")
    start = re.match(r"found character '(.*)' that cannot start any token", problem)
    if start:
        return at(mark, f"a plain value cannot start with '{start.group(1)}'; put the value in quotes")
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    if "unexpected end of stream" in problem or "found unexpected end" in problem:
        message += "; is a quote or bracket left open?"
    return at(mark, message)


def _quote_before(text: str, mark: yaml.Mark | None) -> Any:
    """The quoted value that ends on the error's line just before it, if any.

    A missing closing quote makes YAML read on until the next quote character, usually
    lines later, and fail there; the mistake is where the quote was opened.
    """
    if mark is None or len(text) > _REPARSE_LIMIT:
        return None
    found = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if (token.start_mark.line, token.start_mark.column) >= (mark.line, mark.column):
                break
            found = token
    except yaml.YAMLError:
        pass
    if isinstance(found, yaml.ScalarToken) and found.style in ('"', "'") and found.end_mark.line == mark.line:
        return found
    return None


class _Walker:
    """Turns a composed YAML node graph into plain values, recording positions."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.errors: list[Diagnostic] = []
        self.alias_nodes = 0
        self.seen: dict[int, int] = {}  # node id -> times materialised
        self.active: set[int] = set()

    def error(self, node: Node, path: JsonPath, message: str, code: str) -> None:
        mark = node.start_mark
        self.errors.append(Diagnostic(self.doc.name, mark.line + 1, mark.column + 1, format_path(path), message, code))

    def walk(self, node: Node, path: JsonPath, depth: int = 0) -> Any:
        if self.errors and self.errors[-1].code in {"yaml.bomb", "yaml.depth"}:
            return None
        if depth > MAX_DEPTH:
            # The full path is as long as the nesting; name the top of it, point at the spot.
            self.error(node, path[:2], f"nested more than {MAX_DEPTH} levels deep in here", "yaml.depth")
            return None
        key = id(node)
        if key in self.active:
            self.error(node, path, "recursive alias: an anchor refers to itself", "yaml.bomb")
            return None
        if self.seen.get(key):
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                self.error(
                    node,
                    path,
                    f"aliases expand to more than {MAX_ALIAS_NODES} values; refusing what "
                    "looks like a YAML bomb ('billion laughs')",
                    "yaml.bomb",
                )
                return None
        self.seen[key] = self.seen.get(key, 0) + 1
        if node.tag not in _ALLOWED_TAGS:
            tag = node.tag.replace(_TAG, "!!")
            self.error(node, path, f"unsupported tag '{tag}'; TARS YAML holds plain values only", "yaml.tag")
            return None
        if path not in self.doc.values:
            self.doc.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, ScalarNode):  # most nodes; never part of a recursive alias
            return self._scalar(node, path)
        self.active.add(key)
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path, depth)
            return [self.walk(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(key)

    def _scalar(self, node: ScalarNode, path: JsonPath) -> Any:
        tag, value = node.tag, node.value
        if tag == _TAG + "str":
            return value
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return value.lower() == "true"
        if tag == _TAG + "int":
            try:
                return int(value, 10)
            except ValueError:
                self.error(node, path, f"'{value}' is not a decimal integer", "yaml.tag")
                return None
        if tag == _TAG + "float":
            low = value.lower()
            if low.endswith(".inf"):
                return float("-inf") if low.startswith("-") else float("inf")
            if low == ".nan":
                return float("nan")
            try:
                return float(value)
            except ValueError:
                self.error(node, path, f"'{value}' is not a number", "yaml.tag")
                return None
        self.error(node, path, f"a {tag.removeprefix(_TAG)} is not allowed here", "yaml.tag")
        return None

    def _mapping(self, node: MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged.update(self._merge(value_node, path, depth))
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, path, "a key must be a plain value, not a list or mapping", "yaml.key")
                continue
            key = key_node.value
            if key in first_seen:
                self.error(
                    key_node,
                    (*path, key),
                    f"duplicate key '{key}' (first defined on line {first_seen[key]}); remove one of them",
                    "yaml.duplicate",
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            child = (*path, key)
            self.doc.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.walk(value_node, child, depth + 1)
        for key, value in merged.items():
            out.setdefault(key, value)
        return out

    def _merge(self, node: Node, path: JsonPath, depth: int) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        result: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, MappingNode):
                self.error(source, path, "'<<' merges mappings only", "yaml.merge")
                continue
            value = self.walk(source, path, depth + 1)
            if isinstance(value, dict):
                result.update(value)
        return result
