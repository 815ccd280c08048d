"""Stage 4 on a slice: LibCST parses, resolves and fixes only the scopes where a rule can fire.

A module's findings usually sit in a few of its functions, while LibCST's parse, its metadata and
the rules' visits cost in proportion to the whole module. So, when every rule to run declares that
what it sees in one function (or one class) does not depend on the module's other functions
(`Rule.slice_scope`), the engine hands LibCST a slice of the module:

- every module-level statement that is not a `def` or a `class` is kept (imports, assignments,
  `if`/`try` blocks), and so is every class-level statement that is not a method;
- a unit -- a top-level `def`, a top-level `class`, or a method of a top-level class -- is kept
  when a rule's `could_fire_in` accepts the module made of the kept statements, that unit and the
  stubs of the others (the stdlib `ast` answers in microseconds);
- every other unit becomes a stub of as many lines: `def name():  # unleak_slice_<line>` (or
  `async def`, or `class Name:`) over a body of the same form as the unit's, `...` or one string
  spanning the remaining lines. The stub binds the same name to the same kind of definition, so
  names resolve as in the whole module, and every line keeps its number, so findings need no
  remapping. A definition its stub could not stand for (it binds a name outside itself with
  `global`, or with `:=` in its header) is always kept; a module slicing would cut by less than
  a fifth goes whole.

After the fixes, each stub is replaced by the lines it stands for (the stubs must come back
intact and in order) and the whole new module is verified once. Whatever goes wrong on the way
(a stub a fix moved, a rule that a fix makes join, a crash) falls back to the whole-module run,
which decides. `unleak check --edits` never slices: its edits are a line diff of the whole file.
"""

from __future__ import annotations

import ast
import copy
import re
from functools import partial
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from unleak.knowledge.project import ProjectView
from unleak.knowledge import quickscan
from unleak.knowledge.quickscan import identifiers
from unleak.rule import Rule, SliceScope
from unleak.settings import Settings
from unleak.engine.edits import lines as split_lines
from unleak.engine.verify import VerificationError, Verifier

# Tests turn slicing off to compare its output with the whole-module run's.
enabled = True

# Not `unleak:`, which makes the suppression scan tokenize the file.
MARKER = "unleak_slice_"
# Slicing pays only when it drops a good part of the module.
MIN_DROPPED_SHARE = 0.2
_END = re.compile(r"(?:\r\n|\r|\n)$")

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


class Fallback(Exception):
    """The slice cannot stand for the module: run the whole module instead."""


@dataclass(frozen=True)
class _Unit:
    """A definition that may be replaced by its stub."""

    node: Definition
    first: int  # 1-based line of its first decorator (or of `def`/`class`)
    last: int

    @property
    def header(self) -> str:
        if isinstance(self.node, ast.ClassDef):
            return f"class {self.node.name}:"
        keyword = "async def" if isinstance(self.node, ast.AsyncFunctionDef) else "def"
        return f"{keyword} {self.node.name}():"

    def in_block(self, lines: list[str]) -> bool:
        """Whether its body is an indented block (not statements after the colon, which may
        follow a signature of several lines): its first statement starts its line."""
        first = self.node.body[0]
        return lines[first.lineno - 1].encode("utf-8")[: first.col_offset].isspace()

    def stub_lines(self, indent: str, body_indent: str, ends: list[str], *, in_block: bool) -> tuple[str, ...]:
        """The stub, one line for each line of the unit (`ends`: their line ends), with a body
        of the same form: after the colon, or an indented block (indented as the unit's, for
        LibCST gives the comments after a block to it by their indentation). A body of several
        lines is one string spanning them: LibCST makes one node of it, not one per line."""
        if not in_block:
            if len(ends) == 1:
                return (f"{indent}{self.header} ...  # {MARKER}{self.first}{ends[0]}",)
            return (f'{indent}{self.header} """{MARKER}{self.first}{ends[0]}', *ends[1:-1], f'"""{ends[-1]}')
        header = f"{indent}{self.header}  # {MARKER}{self.first}{ends[0]}"
        if len(ends) == 2:
            return (header, f"{body_indent}...{ends[1]}")
        return (header, f'{body_indent}"""{ends[1]}', *ends[2:-1], f'"""{ends[-1]}')

    def stub_node(self) -> ast.stmt:
        """The stub as the stdlib `ast` sees it, where the unit stood."""
        line_count = self.last - self.first + 1  # the form of its body does not matter to `ast`
        stub = ast.parse("".join(self.stub_lines("", "    ", ["\n"] * line_count, in_block=line_count > 1))).body[0]
        ast.increment_lineno(stub, self.first - 1)
        for node in ast.walk(stub):
            if isinstance(node, (ast.stmt, ast.expr)):
                node.col_offset += self.node.col_offset
                node.end_col_offset = (node.end_col_offset or 0) + self.node.col_offset
        return stub


@dataclass(frozen=True)
class Slice:
    """The text LibCST works on, and how to put the original units back into its fixed version."""

    text: str
    original_lines: list[str]
    stubs: tuple[tuple[int, int, tuple[str, ...]], ...]  # (first, last, stub lines), in order
    dropped: tuple[Definition, ...]  # the units the stubs stand for

    def splice(self, fixed: str) -> str:
        """The whole module `fixed` stands for; Fallback if a stub did not come back intact."""
        lines = split_lines(fixed)
        out: list[str] = []
        cursor = 0
        for first, last, stub_lines in self.stubs:
            found = _find_run(lines, stub_lines, cursor)
            out.extend(lines[cursor:found])
            out.extend(self.original_lines[first - 1 : last])
            cursor = found + len(stub_lines)
        out.extend(lines[cursor:])
        whole = "".join(out)
        if MARKER in whole:  # never in the original (see `_sliceable`)
            raise Fallback("a stub was copied")
        return whole

    def verified(self, fixed: str, verifier: Verifier) -> str:
        """The whole module `fixed` stands for, verified as a whole (parse and compile) when the
        fixes changed it; Fallback if it does not splice or verify."""
        whole = self.splice(fixed)
        if whole != "".join(self.original_lines):
            try:
                verifier.verified_module(whole)
            except VerificationError as error:
                raise Fallback(str(error)) from error
        return whole

    def dropped_names(self) -> frozenset[str]:
        """Every name the dropped units use: a rule picking a fresh name asks (few do)."""
        return frozenset().union(*map(identifiers, self.dropped))

    @property
    def kept_lines(self) -> int:
        return len(self.original_lines) - sum(last - first + 1 for first, last, _ in self.stubs)


def _find_run(lines: list[str], run: tuple[str, ...], start: int) -> int:
    for index in range(start, len(lines) - len(run) + 1):
        if lines[index] == run[0]:
            if tuple(lines[index : index + len(run)]) != run:
                raise Fallback("a stub was altered")
            return index
    raise Fallback("a stub went missing")


def plan(
    text: str, tree: ast.Module | None, rules: tuple[type[Rule], ...], settings: Settings, project: ProjectView
) -> Slice | None:
    """The slice to give LibCST instead of `text`, or None when the whole module must (or may as
    well) go: a rule needs it, slicing would drop little, or the module is unusual."""
    if not enabled or tree is None or not _sliceable(text, rules):
        return None
    if _may_fire_in_module_code(tree, rules, settings, project):
        return None
    lines = split_lines(text)
    with quickscan.sharing_walks():  # the rules' checks walk one module per definition
        dropped = list(_dropped_units(tree, rules, settings, project))
    if not dropped or sum(unit.last - unit.first + 1 for unit in dropped) < MIN_DROPPED_SHARE * len(lines):
        return None
    if not all(_starts_unit(lines[unit.first - 1]) for unit in dropped):
        return None  # a decorator whose `@` stands on an earlier line than its expression
    return _build(lines, dropped)


def _sliceable(text: str, rules: tuple[type[Rule], ...]) -> bool:
    """No rule needs the whole module, and no marker is already there."""
    return bool(rules) and not any(rule.slice_scope is SliceScope.WHOLE_MODULE for rule in rules) and MARKER not in text


def _may_fire_in_module_code(tree: ast.Module, rules: tuple[type[Rule], ...], settings: Settings, project: ProjectView) -> bool:
    """Whether an IN_FUNCTIONS rule may fire in the module's code outside its definitions."""
    in_functions = [rule for rule in rules if rule.slice_scope is SliceScope.IN_FUNCTIONS]
    if not in_functions:
        return False
    stubbed = ast.Module(body=[_stubbed(statement) for statement in tree.body], type_ignores=[])
    return any(rule.could_fire_in(stubbed, settings, project) for rule in in_functions)


def _stubbed(statement: ast.stmt) -> ast.stmt:
    return _unit(statement).stub_node() if isinstance(statement, _DEFINITIONS) else statement


def _starts_unit(line: str) -> bool:
    return line.lstrip().startswith(("@", "def", "async", "class"))


def _dropped_units(
    tree: ast.Module, rules: tuple[type[Rule], ...], settings: Settings, project: ProjectView
) -> Iterator[_Unit]:
    """The units no rule can fire in, in order."""
    stubbed = [_stubbed(statement) for statement in tree.body]

    def may_fire(position: int, statement: ast.stmt, scopes: tuple[SliceScope, ...]) -> bool:
        """Whether a rule of `scopes` may fire in the slice with `statement` at `position`."""
        module = ast.Module(body=[*stubbed[:position], statement, *stubbed[position + 1 :]], type_ignores=[])
        return any(rule.could_fire_in(module, settings, project) for rule in rules if rule.slice_scope in scopes)

    for position, statement in enumerate(tree.body):
        if isinstance(statement, ast.ClassDef):
            yield from _dropped_in_class(statement, partial(may_fire, position))
        elif isinstance(statement, _FUNCTIONS):
            if not (_must_keep(statement) or may_fire(position, statement, tuple(SliceScope))):
                yield _unit(statement)


MayFire = Callable[[ast.ClassDef, tuple[SliceScope, ...]], bool]


def _dropped_in_class(cls: ast.ClassDef, may_fire: MayFire) -> Iterator[_Unit]:
    """A top-level class: whole if no rule can fire in it, else the methods no rule can fire in."""
    if may_fire(cls, (SliceScope.TOP_LEVEL_CLASS,)):
        return  # a rule that sees the class whole can fire in it: keep it whole
    methods = {index: statement for index, statement in enumerate(cls.body) if isinstance(statement, _FUNCTIONS)}
    stubs = {index: _unit(method).stub_node() for index, method in methods.items()}

    def with_only(kept: int | None) -> ast.ClassDef:
        shell = copy.copy(cls)
        shell.body = [statement if index == kept else stubs.get(index, statement) for index, statement in enumerate(cls.body)]
        return shell

    function_scope = (SliceScope.FUNCTION, SliceScope.IN_FUNCTIONS)
    kept = {index for index, method in methods.items() if _must_keep(method) or may_fire(with_only(index), function_scope)}
    if not kept and not (_must_keep(cls) or may_fire(with_only(None), function_scope)):
        yield _unit(cls)
        return
    yield from (_unit(method) for index, method in methods.items() if index not in kept)


def _must_keep(node: Definition) -> bool:
    """A definition its stub could not stand for: one that binds a module-level name with
    `global`, or a name of the enclosing scope with `:=` in its decorators, defaults or annotations.
    Of a class, only its own header and its statements other than methods count: each method is
    a unit of its own."""
    if isinstance(node, ast.ClassDef):
        header = [*node.decorator_list, *node.bases, *node.keywords]
        inside: list[ast.AST] = [statement for statement in node.body if not isinstance(statement, _FUNCTIONS)]
    else:
        arguments = node.args
        every_argument = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
        annotations = [argument.annotation for argument in every_argument if argument is not None and argument.annotation]
        defaults = [default for default in arguments.kw_defaults if default is not None]
        header = [*node.decorator_list, *arguments.defaults, *defaults, *annotations, *([node.returns] if node.returns else [])]
        inside = [node]
    walrus = any(isinstance(child, ast.NamedExpr) for part in header for child in ast.walk(part))
    return walrus or any(isinstance(child, ast.Global) for part in inside for child in ast.walk(part))


def _unit(node: Definition) -> _Unit:
    first = min((decorator.lineno for decorator in node.decorator_list), default=node.lineno)
    return _Unit(node, first, node.end_lineno or node.lineno)


def _build(lines: list[str], dropped: list[_Unit]) -> Slice:
    sliced = list(lines)
    stubs = []
    for unit in dropped:
        stub_lines = _stub_lines(lines, unit)
        sliced[unit.first - 1 : unit.last] = stub_lines
        stubs.append((unit.first, unit.last, stub_lines))
    return Slice("".join(sliced), lines, tuple(stubs), tuple(unit.node for unit in dropped))


def _stub_lines(lines: list[str], unit: _Unit) -> tuple[str, ...]:
    """The unit's stub, each line keeping its line's end."""
    ends = [_END.search(line) for line in lines[unit.first - 1 : unit.last]]
    body_indent = _indent(lines[unit.node.body[0].lineno - 1])
    line_ends = [end.group() if end else "" for end in ends]
    return unit.stub_lines(_indent(lines[unit.first - 1]), body_indent, line_ends, in_block=unit.in_block(lines))


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t\x0c"))]


def sliced_widen(
    widen: Callable[[str], tuple[type[Rule], ...]] | None, sliced: Slice, rules: tuple[type[Rule], ...]
) -> Callable[[str], tuple[type[Rule], ...]] | None:
    """`widen` for a slice: the rules the whole fixed module triggers. A rule that would join
    could fire outside the slice: Fallback."""
    if widen is None:
        return None

    def triggered_by(code: str) -> tuple[type[Rule], ...]:
        triggered = widen(sliced.splice(code))
        if any(rule not in rules for rule in triggered):
            raise Fallback("a fix makes another rule join")
        return triggered

    return triggered_by
