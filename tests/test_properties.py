"""Property-based tests: generated programs through the real pipeline, with every registered rule.

The generators build whole modules as text from small pieces: a statement is a tuple of `Line`s
(code at a nesting depth, rendered with the program's indentation and newline style), and each
line is tagged with the rules that may rewrite it. The properties compare input and output line
by line, so they hold for whatever rules are registered: a line may change only if a registered
rule may rewrite it and no suppression comment silences that rule there.
"""

from __future__ import annotations

import builtins
import codecs
import difflib
import io
import keyword
import re
import tokenize
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache, partial

import hypothesmith
import libcst as cst
import libcst.matchers as m
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from libcst.metadata import MetadataWrapper, PositionProvider

from unleak import registry
from unleak.engine.findings import FileResult
from unleak.engine.pipeline import Job, process
from unleak.engine.prefilter import triggered_rules
from unleak.settings import Settings

RULES = registry.all_rules()
REGISTERED = frozenset(rule.code for rule in RULES)
BARE_EXCEPT = "UL401"  # narrows an `except:` whose handler does not end in a bare `raise`
ERROR_LOG = "UL402"  # rewrites `logger.error(...)` without exc_info inside a handler
CHECK_THEN_INSERT = "UL301"  # `if db.get(User, key) is None: db.add(User(id=key))` -> try/except IntegrityError
PER_ROW_DELETE = "UL302"  # a loop of one-row deletes -> one `IN (...)` delete

# One pipeline run costs 0.1-0.3 s of CPU (LibCST metadata, each rule's visitor set-up, one pass
# more to confirm the fixed point): these numbers keep the file near 20 s. Raise them for a deeper
# search; a failure prints the shrunk program, and `@example(...)` pins it.
EXAMPLES_WITH_PATTERNS = 40
EXAMPLES_WITHOUT_PATTERNS = 30
EXAMPLES_FROM_GRAMMAR = 50


# --- Lines and programs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One physical line of a generated program, before indentation and newline are applied."""

    depth: int
    code: str
    rewritable_by: frozenset[str] = frozenset()  # codes of the rules that may rewrite this line
    comment: str = ""  # trailing (or, without code, own-line) comment
    directive: str = ""  # the comment on the first line of the statement: suppressions live there

    def may_change(self) -> bool:
        return any(code in REGISTERED and not silences(self.directive, code) for code in self.rewritable_by)

    def is_suppressed_pattern(self) -> bool:
        """A line some rule would rewrite, but the statement's comment silences every such rule."""
        return bool(self.rewritable_by) and all(silences(self.directive, code) for code in self.rewritable_by)


_DIRECTIVE = re.compile(r"#\s*unleak:\s*ignore(?:\[(?P<codes>[^\]]*)\])?")


def silences(comment: str, code: str) -> bool:
    directive = _DIRECTIVE.search(comment)
    return directive is not None and (directive["codes"] is None or code in directive["codes"].split(","))


@dataclass(frozen=True)
class Program:
    lines: tuple[Line, ...]
    text: str
    encoding: str
    newline: str

    @property
    def raw(self) -> bytes:
        return self.text.encode(self.encoding)


def indented(lines: Iterable[Line]) -> tuple[Line, ...]:
    return tuple(replace(line, depth=line.depth + 1) for line in lines)


def commented(lines: tuple[Line, ...], comment: str) -> tuple[Line, ...]:
    """Put `comment` after the statement's first line; it governs suppression of all its lines."""
    first, *rest = lines
    return (replace(first, comment=comment, directive=comment), *(replace(line, directive=comment) for line in rest))


def render(lines: tuple[Line, ...], indent: str, newline: str, final_newline: bool) -> str:
    text = newline.join(_rendered_line(line, indent) for line in lines)
    return text + newline if final_newline else text


def _rendered_line(line: Line, indent: str) -> str:
    if not line.code and not line.comment:
        return ""
    separator = "  " if line.code and line.comment else ""
    return f"{indent * line.depth}{line.code}{separator}{line.comment}"


def physical_lines(text: str) -> list[str]:
    """Lines with their endings exactly as written (`\\r\\n` stays `\\r\\n`)."""
    return list(io.StringIO(text, newline=""))


# --- Strategies ---------------------------------------------------------------------------------

_USED_BY_THE_PROGRAMS = {"logger", "logging", "log", "messages", "request", "e", "self", "db", "key", "item", "items"}
_TAKEN = {*keyword.kwlist, *keyword.softkwlist, *dir(builtins), *_USED_BY_THE_PROGRAMS}
_LOWER, _UPPER, _DIGITS = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"


def identifiers(first: str, rest: str) -> st.SearchStrategy[str]:
    """Random names that are not keywords, soft keywords, builtins or the names the programs use."""
    spelled = st.builds(str.__add__, st.sampled_from(first), st.text(rest, max_size=6))
    return spelled.filter(lambda name: name not in _TAKEN and not name.startswith("__"))


names = identifiers(_LOWER + "_", _LOWER + _DIGITS + "_")
class_names = identifiers(_UPPER, _LOWER + _UPPER + _DIGITS)
exception_types = st.one_of(st.sampled_from(["ValueError", "KeyError", "OSError"]), class_names.map("{}Error".format))


def call_text(function: str, arguments: list[str]) -> str:
    return f"{function}({', '.join(arguments)})"


_LITERALS = st.sampled_from(['"text"', "'x'", "None", "True", "[]", "{}", "3.5"])
_ATOMS = st.one_of(names, st.integers(0, 999).map(str), _LITERALS)
expressions = st.one_of(
    _ATOMS,
    st.builds("{} + {}".format, _ATOMS, _ATOMS),
    st.builds(call_text, names, st.lists(_ATOMS, max_size=2)),
    st.builds("{}.{}".format, names, names),
    st.builds("[{}]".format, st.lists(_ATOMS, max_size=3).map(", ".join)),
    st.builds('f"{{{}}}"'.format, names),
)
TRAILING_COMMENTS = st.sampled_from(
    ["", "", "", "", "", "", "# note", "# unleak: ignore", "# unleak: ignore[UL401]", "# unleak: ignore[UL402]"]
)
# Blank lines and own-line comments between statements.
TRIVIA = st.one_of(
    st.just(Line(0, "")),
    st.sampled_from(["# note", "# unleak: ignore", "# unleak: ignore[UL401]", "#"]).map(
        lambda comment: Line(0, "", comment=comment)
    ),
)
TRIVIA_LINES = st.lists(TRIVIA, max_size=1).map(tuple)
LOG_MESSAGES = st.sampled_from(['"failed"', '"failed: %s"', 'f"failed {e}"'])
SPECIFIC_HANDLERS = st.one_of(
    st.sampled_from(["except Exception:", "except Exception as e:"]),
    st.builds("except {} as e:".format, exception_types),
    st.builds("except ({}, {}) as e:".format, exception_types, exception_types),
    st.builds("except ({}, {}):".format, exception_types, exception_types),
)
BARE_HANDLERS = st.sampled_from(["except:", "except :"])


def one_in(n: int) -> st.SearchStrategy[bool]:
    return st.integers(0, n - 1).map(lambda drawn: drawn == 0)


@dataclass(frozen=True)
class Scope:
    """Where a statement goes: decides which statements are valid there and which are patterns."""

    patterns: bool  # False: generate nothing any rule should rewrite or report
    function: bool = False
    is_async: bool = False
    loop: bool = False
    handler: bool = False  # lexically inside an except handler, not inside a nested def

    def function_body(self, is_async: bool) -> Scope:
        return Scope(self.patterns, function=True, is_async=is_async)


@st.composite
def log_calls(draw: st.DrawFn, scope: Scope, multiline: bool = True) -> tuple[Line, ...]:
    """`logger.error(...)` and friends, and the look-alike `messages.error(request, ...)`."""
    receiver = draw(st.sampled_from(["logger", "logging", "log", "messages"]))
    if receiver == "messages":
        method = draw(st.sampled_from(["error", "warning"]))
        arguments = ["request", draw(LOG_MESSAGES)]
    else:
        method = draw(st.sampled_from(["error", "error", "error", "critical", "exception", "info"]))
        arguments = [draw(LOG_MESSAGES), *draw(st.lists(names | st.just("e"), max_size=2))]
    loses_traceback = scope.handler and receiver != "messages" and method in ("error", "critical")
    if draw(one_in(4)) or (loses_traceback and not scope.patterns):
        arguments.append("exc_info=True")
        loses_traceback = False
    rewritable = frozenset({ERROR_LOG}) if loses_traceback else frozenset()
    function = f"{receiver}.{method}"
    layout = draw(st.sampled_from(["one line", "exploded", "hanging"])) if multiline else "one line"
    if layout == "one line":
        return (Line(0, call_text(function, arguments), rewritable),)
    notes = draw(st.lists(st.sampled_from(["", "# note"]), min_size=len(arguments), max_size=len(arguments)))
    if layout == "hanging" and len(arguments) > 1:  # `logger.error("failed: %s",` then `    e)`
        first, *middle, last = arguments
        return (
            Line(0, f"{function}({first},", rewritable),
            *(Line(1, f"{argument},", rewritable, note) for argument, note in zip(middle, notes)),
            Line(1, f"{last})", rewritable, notes[-1]),
        )
    # One argument a line, maybe with a trailing comma, maybe a comment line before `)`.
    lines = [Line(1, f"{argument},", rewritable, note) for argument, note in zip(arguments, notes)]
    if draw(st.booleans()):
        lines[-1] = replace(lines[-1], code=lines[-1].code.removesuffix(","))
    if draw(one_in(4)):
        lines.append(Line(1, "", comment="# before the parenthesis"))
    return (Line(0, f"{function}(", rewritable), *lines, Line(0, ")", rewritable))


@cache
def one_line_statements(scope: Scope) -> st.SearchStrategy[Line]:
    """Statements that fit on one line, also after `try:` or `except:`."""
    options = [
        st.builds("{} = {}".format, names, expressions),
        st.builds("{} += 1".format, names),
        st.builds(call_text, names, st.lists(expressions, max_size=2)),
        st.just("pass"),
        st.builds('assert {}, "message"'.format, names),
        st.builds('raise {}("boom")'.format, exception_types),
    ]
    if scope.function:
        options.append(st.builds("return {}".format, expressions))
    if scope.is_async:
        options.append(st.builds("await {}()".format, names))
    if scope.loop:
        options.append(st.sampled_from(["break", "continue"]))
    plain = st.one_of(options).map(lambda code: Line(0, code))
    return st.one_of(plain, log_calls(scope, multiline=False).map(lambda lines: lines[0]))


@st.composite
def simple_statements(draw: st.DrawFn, scope: Scope) -> tuple[Line, ...]:
    log_weight = 3 if scope.handler else 1  # handlers are where logging calls matter
    one_line = one_line_statements(scope).map(lambda line: (line,))
    lines = draw(st.one_of(one_line, *[log_calls(scope)] * log_weight))
    if len(lines) == 1 and draw(one_in(6)):
        lines = (joined(lines[0], draw(one_line_statements(scope))),)
    return commented(lines, draw(TRAILING_COMMENTS))


@st.composite
def database_statements(draw: st.DrawFn, scope: Scope) -> tuple[Line, ...]:
    """A check-then-insert or a per-row delete loop (with or without commit), or a look-alike."""
    commits = draw(st.booleans())
    if draw(st.booleans()):
        session = draw(st.sampled_from(["db", "db.session"]))
        check = "not User.query.get(key)" if session == "db.session" else f"{session}.get(User, key) is None"
        lines = [(0, f"if {check}:"), (1, f"{session}.add(User(id=key))")]
        lines += [(1, f"{session}.commit()")] * commits
        lines += [(0, "else:"), (1, "log.info('there')")] * draw(st.booleans())
        rule, look_alike = CHECK_THEN_INSERT, [(0, "if cache.get(key) is None:"), (1, "seen.add(key)")]
    else:
        lines = [(0, "for item in items:"), (1, "db.query(Message).filter(Message.item_id == item.id).delete()")]
        lines += [(1, "db.commit()")] * commits
        rule, look_alike = PER_ROW_DELETE, [(0, "for item in items:"), (1, "cache.delete(item)")]
    rewritable = frozenset({rule}) if scope.patterns else frozenset()
    statement = tuple(Line(depth, code, rewritable) for depth, code in (lines if scope.patterns else look_alike))
    return commented(statement, draw(TRAILING_COMMENTS))


def joined(first: Line, second: Line) -> Line:
    """Two statements on one line: `x = 1; logger.error("failed")`."""
    return replace(first, code=f"{first.code}; {second.code}", rewritable_by=first.rewritable_by | second.rewritable_by)


Body = Callable[[Scope], st.SearchStrategy[tuple[Line, ...]]]  # the block a compound statement holds


@st.composite
def compound(draw: st.DrawFn, header: str, body: st.SearchStrategy[tuple[Line, ...]]) -> tuple[Line, ...]:
    """`header:` (with a trailing comment, maybe) and the indented block under it."""
    comment = draw(TRAILING_COMMENTS)
    return (Line(0, header, comment=comment, directive=comment), *indented(draw(body)))


@st.composite
def handlers(draw: st.DrawFn, scope: Scope, body: Body, header: str, bare: bool) -> tuple[Line, ...]:
    inner = replace(scope, handler=True)
    ends_in_raise = draw(one_in(4)) or (bare and not scope.patterns)
    rewritable = frozenset({BARE_EXCEPT}) if bare and not ends_in_raise else frozenset()
    comment = draw(TRAILING_COMMENTS)
    if draw(one_in(5)):  # the whole handler on one line: `except: pass`
        statement = Line(0, "raise") if ends_in_raise else draw(one_line_statements(inner))
        return (Line(0, f"{header} {statement.code}", rewritable | statement.rewritable_by, comment, comment),)
    lines = draw(body(inner))
    if ends_in_raise:
        lines += commented((Line(0, "raise"),), draw(TRAILING_COMMENTS))
    return (Line(0, header, rewritable, comment, comment), *indented(lines))


@st.composite
def try_statements(draw: st.DrawFn, scope: Scope, body: Body) -> tuple[Line, ...]:
    if draw(one_in(5)):  # `try: statement` on one line
        statement = draw(one_line_statements(scope))
        lines: tuple[Line, ...] = (replace(statement, code=f"try: {statement.code}"),)
    else:
        lines = draw(compound("try:", body(scope)))
    headers = [(header, False) for header in draw(st.lists(SPECIFIC_HANDLERS, max_size=2))]
    if not draw(one_in(3)):
        headers.append((draw(BARE_HANDLERS), True))  # a bare `except:` must come last
    for header, bare in headers:
        lines += draw(TRIVIA_LINES) + draw(handlers(scope, body, header, bare))
    if headers and draw(st.booleans()):
        lines += draw(TRIVIA_LINES) + draw(compound("else:", body(scope)))
    if not headers or draw(st.booleans()):
        lines += draw(TRIVIA_LINES) + draw(compound("finally:", body(scope)))
    return lines


# `body` fills the first block of a compound statement, `branches` the others (elif, else,
# a second method): an enclosed try statement is then not copied into every branch.


@st.composite
def if_statements(draw: st.DrawFn, scope: Scope, body: Body, branches: Body) -> tuple[Line, ...]:
    lines = draw(compound(f"if {draw(expressions)}:", body(scope)))
    if draw(st.booleans()):
        lines += draw(compound(f"elif {draw(expressions)}:", branches(scope)))
    if draw(st.booleans()):
        lines += draw(compound("else:", branches(scope)))
    return lines


@st.composite
def loops(draw: st.DrawFn, scope: Scope, body: Body, branches: Body) -> tuple[Line, ...]:
    prefix = "async " if scope.is_async and draw(st.booleans()) else ""
    if draw(st.booleans()):
        header = f"{prefix}for {draw(names)} in {draw(expressions)}:"
    else:
        header = f"while {draw(expressions)}:"
    lines = draw(compound(header, body(replace(scope, loop=True))))
    if draw(one_in(3)):
        lines += draw(compound("else:", branches(scope)))
    return lines


@st.composite
def with_statements(draw: st.DrawFn, scope: Scope, body: Body, branches: Body | None = None) -> tuple[Line, ...]:
    """One block only: `branches` is there for the common signature of compound statements."""
    prefix = "async " if scope.is_async and draw(st.booleans()) else ""
    first, second = draw(names), draw(names)
    items = draw(
        st.sampled_from([f"{first}() as {second}", f"{first}(), {second}()", f"({first}() as {second}, {second}())"])
    )
    return draw(compound(f"{prefix}with {items}:", body(scope)))


DECORATORS = st.one_of(
    names, st.builds("{}.{}".format, names, names), st.builds(call_text, names, st.lists(expressions, max_size=2))
)


@st.composite
def functions(
    draw: st.DrawFn, scope: Scope, body: Body, branches: Body | None = None, method: bool = False
) -> tuple[Line, ...]:
    """One block only, like `with_statements`."""
    decorators = tuple(Line(0, f"@{decorator}") for decorator in draw(st.lists(DECORATORS, max_size=2)))
    is_async = draw(st.booleans())
    parameters = ["self"] * method + draw(st.lists(names, max_size=3, unique=True))
    if draw(st.booleans()) and not {"args", "kwargs"} & set(parameters):
        parameters += ["*args", "**kwargs"]
    header = f"{'async ' if is_async else ''}def {draw(names)}({', '.join(parameters)}):"
    return decorators + draw(compound(header, body(scope.function_body(is_async))))


@st.composite
def classes(draw: st.DrawFn, scope: Scope, body: Body, branches: Body) -> tuple[Line, ...]:
    bases = draw(st.lists(class_names, max_size=2, unique=True))
    header = f"class {draw(class_names)}{'(' + ', '.join(bases) + ')' if bases else ''}:"
    attribute = st.builds("{} = {}".format, names, expressions).map(lambda code: (Line(0, code),))
    members = st.lists(attribute, max_size=1).map(flatten)  # class bodies run at once: no handler in between
    in_class = Scope(scope.patterns)
    method = functions(in_class, body, method=True)
    other_methods = st.lists(functions(in_class, branches, method=True), max_size=1).map(flatten)
    return draw(compound(header, st.tuples(members, method, other_methods).map(flatten)))


def compound_statements(scope: Scope, body: Body, branches: Body) -> list[st.SearchStrategy[tuple[Line, ...]]]:
    kinds = (if_statements, loops, with_statements, functions, classes)
    return [kind(scope, body, branches) for kind in kinds]


@cache
def statements(scope: Scope, budget: int) -> st.SearchStrategy[tuple[Line, ...]]:
    """One statement (with blank lines and comments before it), nesting at most `budget` deep."""
    options = [simple_statements(scope)] * (6 if scope.handler else 4)  # handlers: mostly logging calls
    options.append(database_statements(scope))
    if budget > 0:
        body = partial(blocks, budget=budget - 1)
        options += [try_statements(scope, body)] * 2  # the statement the rules are about, more often
        options += compound_statements(scope, body, body)
    return st.tuples(TRIVIA_LINES, st.one_of(options)).map(flatten)


@cache
def blocks(scope: Scope, budget: int) -> st.SearchStrategy[tuple[Line, ...]]:
    """One or two statements, and maybe a comment or blank line closing the block."""
    one_or_two = st.lists(statements(scope, budget), min_size=1, max_size=2).map(flatten)
    return st.tuples(one_or_two, TRIVIA_LINES).map(flatten)


@cache
def enclosed_tries(scope: Scope, depth: int) -> st.SearchStrategy[tuple[Line, ...]]:
    """A try statement (with nested statements) inside `depth` loops, withs, ifs, defs or classes."""
    if depth == 0:
        return try_statements(scope, partial(blocks, budget=1))
    return st.one_of(compound_statements(scope, partial(enclosed_tries, depth=depth - 1), partial(blocks, budget=0)))


def flatten(parts: Iterable[tuple[Line, ...]]) -> tuple[Line, ...]:
    return tuple(line for part in parts for line in part)


@st.composite
def programs(draw: st.DrawFn, patterns: bool = True) -> Program:
    """A module: logging set-up, a try statement somewhere, statements around it."""
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-8-sig"]))  # utf-8-sig: with a BOM
    latin1 = encoding == "latin-1"
    header = (
        *((Line(0, "", comment="# -*- coding: latin-1 -*-"),) if latin1 else ()),
        Line(0, "import logging"),
        Line(0, ""),
        Line(0, "logger = logging.getLogger(__name__)"),
        Line(0, 'log = logging.getLogger("app")'),
        *((Line(0, f'{draw(names)} = "caf\xe9 cr\xe8me"'),) if latin1 else ()),
    )
    scope = Scope(patterns)
    around = st.lists(statements(scope, budget=1), max_size=1).map(flatten)
    body = (*draw(around), *draw(enclosed_tries(scope, depth=draw(st.integers(0, 2)))), *draw(around))
    lines = (*header, *body)
    while not (lines[-1].code or lines[-1].comment):  # a trailing blank line has no physical line to check
        lines = lines[:-1]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = render(lines, draw(st.sampled_from(["    ", "  ", "\t"])), newline, final_newline=draw(st.booleans()))
    program = Program(lines, text, encoding, newline)
    compile(program.raw, "generated.py", "exec", dont_inherit=True)  # the generator's own sanity check
    assert len(physical_lines(text)) == len(lines)
    return program


# --- Running the pipeline -----------------------------------------------------------------------


def run(raw: bytes, *, prefilter: bool = True) -> FileResult:
    """Process `raw` as `unleak apply` does, with the registered rules its bytes trigger (or all)."""
    settings = Settings()
    rules = triggered_rules(raw, RULES, settings) if prefilter else RULES
    return process(Job("generated.py", None, raw, tuple(rule.code for rule in rules), settings, fixing=True))


def output_of(result: FileResult) -> bytes:
    return result.fixed if result.fixed is not None else result.original


@dataclass(frozen=True)
class LineDiff:
    changed: tuple[int, ...]  # indexes of input lines replaced or deleted
    inserted: tuple[tuple[int, str], ...]  # (index of the input line it goes before, inserted line)


def line_diff(before: str, after: str) -> LineDiff:
    old, new = physical_lines(before), physical_lines(after)
    changed: list[int] = []
    inserted: list[tuple[int, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            changed.extend(range(i1, i2))
        elif tag == "insert":
            inserted.extend((i1, line) for line in new[j1:j2])
    return LineDiff(tuple(changed), tuple(inserted))


@dataclass(frozen=True)
class BareHandler:
    line: int
    ends_in_raise: bool


_ENDS_IN_BARE_RAISE = m.ExceptHandler(
    body=m.IndentedBlock(body=[m.ZeroOrMore(), m.SimpleStatementLine(body=[m.ZeroOrMore(), m.Raise(exc=None)])])
    | m.SimpleStatementSuite(body=[m.ZeroOrMore(), m.Raise(exc=None)])
)


def bare_handlers(code: str) -> list[BareHandler]:
    wrapper = MetadataWrapper(cst.parse_module(code))
    positions = wrapper.resolve(PositionProvider)
    return [
        BareHandler(positions[node].start.line, m.matches(node, _ENDS_IN_BARE_RAISE))
        for node in m.findall(wrapper, m.ExceptHandler(type=None))
        if isinstance(node, cst.ExceptHandler)
    ]


# --- Properties of the generated programs -------------------------------------------------------
# One pipeline run per program feeds every check: running it once per property would cost the
# time budget several times over (LibCST metadata dominates).


def assert_output_compiles(result: FileResult) -> None:
    compile(output_of(result), "generated.py", "exec", dont_inherit=True)


def assert_fixed_point(result: FileResult) -> None:
    if result.fixed is None:
        return  # nothing changed: this very run showed the input is a fixed point
    again = run(result.fixed)
    assert again.error is None, again.error
    assert again.fixed is None, f"a second run changed the output again:\n{again.fixed!r}"


def comments(text: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [token.string for token in tokens if token.type == tokenize.COMMENT]


def assert_comments_kept(program: Program, output: str) -> None:
    """No fix drops or moves a comment, also inside the statements it rewrites."""
    assert comments(output) == comments(program.text), f"comments changed:\n{output}"


def assert_bom_kept(program: Program, result: FileResult) -> None:
    assert output_of(result).startswith(codecs.BOM_UTF8) == program.raw.startswith(codecs.BOM_UTF8), "BOM lost or added"


def assert_newline_style_kept(program: Program, output: str) -> None:
    assert set(re.findall(r"\r\n|\r|\n", output)) <= {program.newline}, f"newline style mixed:\n{output!r}"


def assert_only_rewritable_lines_change(program: Program, diff: LineDiff, output: str) -> None:
    """Lines outside the statements a registered rule is about are kept byte for byte, in order."""
    unexpected = [program.lines[i] for i in diff.changed if not program.lines[i].may_change()]
    assert unexpected == [], f"changed outside any rewritable statement: {unexpected}\n{output}"
    for before, line in diff.inserted:
        neighbours = program.lines[max(before - 1, 0) : before + 1]
        is_import = re.match(r"(import|from)\s", line) is not None
        assert is_import or any(n.may_change() for n in neighbours), f"inserted {line!r}:\n{output}"


def assert_suppressed_statements_unchanged(program: Program, diff: LineDiff) -> None:
    suppressed = [program.lines[i] for i in diff.changed if program.lines[i].is_suppressed_pattern()]
    assert suppressed == [], f"suppressed statements changed: {suppressed}"


def assert_no_silent_bare_except(result: FileResult, output: str) -> None:
    """Every bare `except:` left ends in `raise`, is suppressed, or is reported for a human to fix."""
    if BARE_EXCEPT not in REGISTERED:
        return
    lines = physical_lines(output)
    reported = {finding.line for finding in result.findings if finding.rule == BARE_EXCEPT}
    left = [
        lines[handler.line - 1]
        for handler in bare_handlers(output)
        if not (handler.ends_in_raise or silences(lines[handler.line - 1], BARE_EXCEPT) or handler.line in reported)
    ]
    assert left == [], f"bare except left without a fix or a finding: {left}\n{output}"


@settings(max_examples=EXAMPLES_WITH_PATTERNS, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_generated_program_holds_every_property(program: Program) -> None:
    result = run(program.raw)
    assert result.error is None, result.error  # valid input: no error
    output = output_of(result).decode(program.encoding)  # the codec of the input still fits
    diff = line_diff(program.text, output)
    assert_output_compiles(result)
    assert_fixed_point(result)
    assert_bom_kept(program, result)
    assert_newline_style_kept(program, output)
    assert_comments_kept(program, output)
    assert_only_rewritable_lines_change(program, diff, output)
    assert_suppressed_statements_unchanged(program, diff)
    assert_no_silent_bare_except(result, output)


@settings(max_examples=EXAMPLES_WITHOUT_PATTERNS, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(patterns=False))
def test_program_without_patterns_is_left_byte_identical(program: Program) -> None:
    result = run(program.raw)
    assert result.error is None, result.error
    assert result.findings == []
    assert result.fixed is None


# --- Arbitrary valid code -----------------------------------------------------------------------


def parses_and_compiles(code: str) -> bool:
    try:
        code.encode("utf-8")
        cst.parse_module(code)
        compile(code, "generated.py", "exec", dont_inherit=True)
    except (cst.ParserSyntaxError, SyntaxError, ValueError, RecursionError):  # ValueError: NUL, lone surrogate
        return False
    return True


@settings(
    max_examples=EXAMPLES_FROM_GRAMMAR,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # `True()` and the like: valid, and odd
@given(st.deferred(hypothesmith.from_grammar))  # deferred: building the grammar takes seconds
def test_arbitrary_valid_code_never_breaks_the_pipeline(code: str) -> None:
    assume(parses_and_compiles(code))
    raw = code.encode("utf-8")
    result = run(raw, prefilter=False)  # past the byte triggers: rules meet code that never names them
    assert result.error is None, result.error
    if result.fixed is not None:
        compile(result.fixed, "generated.py", "exec", dont_inherit=True)
        again = run(result.fixed, prefilter=False)
        assert again.error is None and again.fixed is None
