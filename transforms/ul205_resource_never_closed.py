'''UL205 resource-never-closed

## What it does
Finds a file opened and used up in one expression, never bound to a name and never closed:
`data = open(path).read()`, `config = json.load(open(path))`, `json.dump(data, open(path, "w"))`,
`for line in open(path):`. The statement moves into `with open(path) as f:` and uses `f`.

The files are those of `open()`, `io.open`, `codecs.open`, `gzip`/`bz2`/`lzma.open`,
`tarfile.open`, `zipfile.ZipFile`, `urllib.request.urlopen` (resolved by qualified name) and
`path.open()` on a `pathlib.Path`, the kinds UL202 knows (`unleak.knowledge.resources`).

## Why is this bad?
Nothing closes the file but the garbage collector. CPython's reference counting usually does it
at once, but not on PyPy, not while a traceback holds the frame, and not in a reference cycle:
the descriptor stays open ("Too many open files" in a loop over many files), and a file written
this way may not be flushed when the next line reads it back. Python warns about it
(`ResourceWarning: unclosed file`), and so do ruff (SIM115) and pylint (R1732), which fix
nothing.

## Example
```python
def load(path):
    config = json.load(open(path))
    return config["name"]
```

## Use instead
```python
def load(path):
    with open(path) as f:
        config = json.load(f)
    return config["name"]
```

## Fix safety
Safe where nothing can use the file after the new `with` ends: the file is the receiver of a
method that returns data (`read`, `readlines`, `write`, `namelist`, ...), an argument of a
function that reads or writes it and keeps nothing (`json.load`/`dump`, `pickle`, `yaml`,
`tomllib`, `shutil.copyfileobj`, `list`, ...), the iterable of the `for` that the `with` wraps,
or an argument of a call whose result the statement uses up the same way
(`for row in csv.reader(open(p)):`, `rows = list(csv.reader(open(p)))`). The
name is the first of `f`, `fh`, `handle`, `stream`, `f2`, ... that the module does not use
anywhere. Otherwise the fix is unsafe: a
call that may keep the file (`reader = csv.reader(open(path))` reads nothing once the `with`
has closed it), a method that may return an object tied to it (`zipfile.ZipFile(p).open(name)`),
a statement that calls something else before the file is opened (the `with` opens it first,
so an error from either now surfaces in the other order), or a `yield` (the file stays open
while the generator waits). When such a statement binds what the call made of the file to a name (`reader =
csv.reader(open(path))`), no `with` around it can be right: that is reported without a fix.
When it returns it or stores it on an object (`return addinfourl(open(path), headers, url)`,
`self.reader = csv.reader(open(path))`), the file is handed over with it, and whoever gets it
closes it: that is not reported, nor is a file the statement stores (`files.append(open(path))`,
`stack.enter_context(open(path))`) or closes (`open(path, "w").close()`, which creates a file). The statement must stand on a line of its own in a block of a
function or module (in a class body the `with` would add a class attribute); files opened
under a condition (`x if c else open(p).read()`, `a or open(p)`), in a lambda or a
comprehension are left alone, as are files bound to a name (UL202's) or returned.

An `aiohttp.ClientSession()` made in an `async def` only to call one method on it
(`reply = await aiohttp.ClientSession().get(url)`) is never closed either. What it makes (the
response) needs it open, so the `async with aiohttp.ClientSession() as session:` takes the
statement and the rest of its block. That fix is unsafe: the session now closes where the block
ends, and anything made from it that outlives the block can no longer read. When the statement
returns what the session made, or a later `return`/`yield` of the block hands out a name it binds
(`return reply`), that is reported without a fix.

Why a rule of its own and not UL202: UL202 moves the statements between a creation and a close
that the code already writes into a `with`; this rule adds the close the code never had, names
a new variable, and is unsafe in more places. A script that relies on CPython closing files
at once can ignore UL205 and keep UL202.
'''

from __future__ import annotations

import ast
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import cast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import quickscan
from unleak.knowledge.analysis import calls, enclosing_function, in_async_function, names_in_module, within
from unleak.knowledge.resource_scan import PathHolders
from unleak.knowledge.resources import ONE_SHOT, STORING_METHODS, opens_one_shot, stores
from unleak.rule import FixSafety, Invalid, Rule, SliceScope, Valid

# Methods of a file, an archive or a response that return data, not something tied to the object.
_DATA_METHODS = frozenset(
    {"read", "readlines", "readline", "read1", "readinto", "write", "writelines", "namelist", "getnames",
     "infolist", "getmembers", "extractall", "getcode", "geturl", "info", "fileno", "tell", "seek"}
)
# Functions that read or write a whole file they are given and keep nothing of it.
_CONSUMERS = frozenset(
    {"json.load", "json.dump", "pickle.load", "pickle.dump", "marshal.load", "marshal.dump", "plistlib.load",
     "plistlib.dump", "tomllib.load", "toml.load", "toml.dump", "yaml.load", "yaml.safe_load", "yaml.dump",
     "yaml.safe_dump", "shutil.copyfileobj", "builtins.list", "builtins.tuple", "builtins.sorted", "builtins.set",
     "builtins.dict", "builtins.next", "builtins.sum", "builtins.max", "builtins.min", "builtins.any", "builtins.all"}
)
_ONE_STATEMENT = m.SimpleStatementLine(body=[m.Expr() | m.Assign() | m.AnnAssign() | m.AugAssign() | m.Return()])
# Code between the opening and the statement that may not run, or not now.
_NOT_NOW = (cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.IfExp, cst.BooleanOperation)
_NAMES = ("f", "fh", "handle", "stream", *(f"f{number}" for number in range(2, 100)))
# A client session made for one call and dropped: `await aiohttp.ClientSession().get(url)`.
_INLINE_CLIENTS = ("aiohttp.ClientSession", "aiohttp.client.ClientSession")
_CLIENT_NAMES = ("session", "client_session", *(f"session{number}" for number in range(2, 100)))
_OPENER_NAMES = frozenset({qualified.rsplit(".", 1)[-1] for qualified in (*ONE_SHOT, *_INLINE_CLIENTS)})


class ResourceNeverClosed(Rule):
    code = "UL205"
    name = "resource-never-closed"
    safety = FixSafety.SAFE
    summary = "File opened and used in one expression is never closed: use `with`"
    trigger = (rb"(?:open|ZipFile|ClientSession)\s*\(",)
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)
    slice_scope = SliceScope.IN_FUNCTIONS
    _taken: frozenset[str]  # every name the module uses, set by `visit_Module`

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """A call named like an opener (`gzip.open` through a module or its alias, `x.open()` only
        on what may hold a path) in a statement the visitor takes, outside a class body, used
        there in place as the visitor wants it, and not handed over whole (see
        `_never_closed_may_fire`); or a client session made for one call in an `async def`."""
        scan = _Scan(tree)
        if not scan.lines:
            return False
        for statement, frame in _statements(tree):
            if isinstance(frame, ast.ClassDef) or not scan.on_lines(statement):
                continue
            if _never_closed_may_fire(statement, scan):
                return True
            if isinstance(frame, ast.AsyncFunctionDef) and _inline_client_may_fire(statement):
                return True
        return False

    def visit_Module(self, node: cst.Module) -> None:
        self._taken = names_in_module(self, node)

    @m.visit(_ONE_STATEMENT | m.For())
    def flag_never_closed(self, statement: cst.SimpleStatementLine | cst.For) -> None:
        block = self.get_metadata(ParentNodeProvider, statement)
        if not isinstance(block, (cst.IndentedBlock, cst.Module)) or isinstance(
            enclosing_function(self, statement), cst.ClassDef
        ):
            return
        region = statement.iter if isinstance(statement, cst.For) else statement.body[0]
        openings = self._openings(region)
        if not openings:
            return
        opened = ", ".join(f"`{_code(opening.func)}(...)`" for opening in openings)
        kept = next(filter(None, map(self._kept_by, openings)), None)
        if kept is not None and _outlives_the_statement(statement):
            if not _hands_over(statement):
                self.report(statement, f"{opened} is never closed, and {kept} past this statement: close it by hand")
            return
        names = [name for name in _NAMES if name not in self._taken][: len(openings)]
        unsafe = kept or self._order_changes(region, openings)
        message = f"{opened} is never closed: use `with ... as {names[0]}:`"
        self.report(
            statement,
            f"{message} (unsafe: {unsafe})" if unsafe else message,
            fix=_managed(statement, openings, names),
            safety=FixSafety.UNSAFE if unsafe else FixSafety.SAFE,
        )

    @m.visit(m.SimpleStatementLine())
    def flag_inline_client_session(self, statement: cst.SimpleStatementLine) -> None:
        """`response = await aiohttp.ClientSession().get(url)`: what the session made needs it
        open, so the `async with` takes the statement and the rest of its block."""
        block = self.get_metadata(ParentNodeProvider, statement)
        if not isinstance(block, cst.IndentedBlock) or not in_async_function(self, statement):
            return
        clients = [call for call in _calls_now(statement) if calls(self, call, *_INLINE_CLIENTS) and self._receiver_only(call)]
        if len(clients) != 1:
            return
        made = f"`{_code(clients[0].func)}()`"
        statements = list(block.body)
        rest = statements[statements.index(statement) :]
        if _hands_out(statement, rest):
            self.report(statement, f"{made} is never closed, and what it made may be handed out: close it by hand")
            return
        name = next(name for name in _CLIENT_NAMES if name not in self._taken)
        managed = _managed(statement, clients, [name], asynchronous=True)
        body = cst.ensure_type(managed.body, cst.IndentedBlock)
        managed = managed.with_changes(body=body.with_changes(body=[*body.body, *rest[1:]]))
        self.report(
            block,
            f"{made} is never closed: use `async with ... as {name}:` around the rest of the block (unsafe: it now "
            "closes there, and nothing may use what it made after)",
            fix=block.with_changes(body=[*statements[: len(statements) - len(rest)], managed]),
            safety=FixSafety.UNSAFE,
        )

    def _receiver_only(self, client: cst.Call) -> bool:
        """Whether `client` is only the receiver of a method call other than a close: `ClientSession().get(url)`."""
        attribute = self.get_metadata(ParentNodeProvider, client)
        if not isinstance(attribute, cst.Attribute) or attribute.value is not client:
            return False
        method = self.get_metadata(ParentNodeProvider, attribute)
        return isinstance(method, cst.Call) and method.func is attribute and attribute.attr.value != "close"

    def _openings(self, region: cst.CSTNode) -> list[cst.Call]:
        """The files opened in `region`, used there and nowhere else, in source order; an opening
        inside another one's arguments waits for the next pass."""
        found = [call for call in _calls_now(region) if opens_one_shot(self, call) and self._use(call) is not None]
        found = [call for call in found if not self._handed_over(call)]
        return [call for call in found if not any(other is not call and within(self, other, call) for other in found)]

    def _handed_over(self, opening: cst.Call) -> bool:
        """Closed or kept by the statement itself: `open(p, "w").close()`, `files.append(open(p))`,
        `stack.enter_context(open(p))` (the exit stack closes it)."""
        use = self._use(opening)
        if use is None or use[0] == "loop":
            return False
        user = cst.ensure_type(use[1], cst.Call)
        if use[0] == "method":
            return cst.ensure_type(user.func, cst.Attribute).attr.value == "close"
        return stores(self, user)

    def _use(self, opening: cst.Call) -> tuple[str, cst.CSTNode] | None:
        """How the statement uses the file: ("method", its call), ("argument", the call it is
        passed to) or ("loop", the `for`); None when it is bound, returned or otherwise kept."""
        parent = self.get_metadata(ParentNodeProvider, opening)
        if isinstance(parent, cst.Attribute) and parent.value is opening:
            method = self.get_metadata(ParentNodeProvider, parent)
            return ("method", method) if isinstance(method, cst.Call) and method.func is parent else None
        if isinstance(parent, cst.Arg) and parent.value is opening and not parent.star:
            return "argument", self.get_metadata(ParentNodeProvider, parent)
        if isinstance(parent, cst.For) and parent.iter is opening:
            return "loop", parent
        return None

    def _order_changes(self, region: cst.CSTNode, openings: list[cst.Call]) -> str | None:
        """Why the `with` would not run the statement as it ran: a `yield` in it, or a call that
        ran before the file was opened and now runs after."""
        if any(isinstance(node, cst.Yield) for node in _nodes_now(region)):
            return "the file would stay open while the generator waits at the `yield`"
        first = min(self._start(opening) for opening in openings)
        for call in _calls_now(region):
            if any(within(self, call, opening) or within(self, opening, call) for opening in openings):
                continue
            if self._start(call) < first:
                return f"`{_code(call.func)}()` runs before the file is opened now, after it with `with`"
        return None

    def _kept_by(self, opening: cst.Call) -> str | None:
        """Why something may use the file after the `with` ends; None when nothing can."""
        use = self._use(opening)
        assert use is not None
        how, user = use
        if how == "method":
            method = cst.ensure_type(cst.ensure_type(user, cst.Call).func, cst.Attribute).attr.value
            return None if method in _DATA_METHODS else f"`.{method}()` may return an object tied to the file"
        if how == "argument":
            consumer = cst.ensure_type(user, cst.Call)
            if calls(self, consumer, *_CONSUMERS) or self._used_up(consumer):
                return None
            return f"`{_code(consumer.func)}()` may keep the file"
        return None

    def _used_up(self, result: cst.Call) -> bool:
        """Whether the statement uses up what `result` returns, so that nothing keeps it: the
        iterable of the `for` (`for row in csv.reader(open(p)):`) or the argument of a consumer
        (`rows = list(csv.reader(open(p)))`)."""
        parent = self.get_metadata(ParentNodeProvider, result)
        if isinstance(parent, cst.For):
            return parent.iter is result
        if isinstance(parent, cst.Arg) and parent.value is result and not parent.star:
            return calls(self, cst.ensure_type(self.get_metadata(ParentNodeProvider, parent), cst.Call), *_CONSUMERS)
        return False

    def _start(self, node: cst.CSTNode) -> tuple[int, int]:
        start = self.get_metadata(PositionProvider, node).start
        return start.line, start.column

    VALID = (
        Valid(
            """
            import json

            def load(path):
                with open(path) as f:
                    return json.load(f)
            """
        ),
        Valid(
            """
            def opener(path):
                return open(path)
            """
        ),
        Valid(
            """
            def text(path, fallback):
                return open(path).read() if path else fallback
            """
        ),
        Valid(
            """
            def sizes(paths):
                return [len(open(p).read()) for p in paths]
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            import json

            def load(path):
                config = json.load(open(path))  # the settings
                return config["name"]
            """,
            """
            import json

            def load(path):
                with open(path) as f:
                    config = json.load(f)  # the settings
                return config["name"]
            """,
        ),
        Invalid(
            """
            def copy(source, target, f):
                # both at once
                open(target, "w").write(open(source).read())
            """,
            """
            def copy(source, target, f):
                # both at once
                with open(target, "w") as fh, open(source) as handle:
                    fh.write(handle.read())
            """,
        ),
        Invalid(
            """
            import csv

            def export(path, rows):
                csv.writer(open(path, "w", newline="")).writerows(rows)
            """,
            """
            import csv

            def export(path, rows):
                with open(path, "w", newline="") as f:
                    csv.writer(f).writerows(rows)
            """,
            unsafe=True,
        ),
        Invalid(
            """
            import csv

            def rows(path):
                reader = csv.reader(open(path))
                return list(reader)
            """
        ),
    )


def _outlives_the_statement(statement: cst.SimpleStatementLine | cst.For) -> bool:
    """Whether the statement keeps what it computes (binds or returns it), beyond the `with`."""
    return isinstance(statement, cst.SimpleStatementLine) and not isinstance(statement.body[0], cst.Expr)


def _hands_over(statement: cst.SimpleStatementLine | cst.For) -> bool:
    """Whether the statement returns what it computes or stores it on an object or in a
    container: whoever gets it owns the file (`return addinfourl(open(path), headers, url)`)."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    small = statement.body[0]
    if isinstance(small, cst.Return):
        return True
    if isinstance(small, cst.Assign):
        return any(not isinstance(target.target, cst.Name) for target in small.targets)
    return isinstance(small, cst.AnnAssign) and not isinstance(small.target, cst.Name)


def _hands_out(statement: cst.SimpleStatementLine, rest: Sequence[cst.BaseStatement]) -> bool:
    """Whether the statement returns what the session made, or a later `return`/`yield` of the
    block hands out a name the statement binds (`return response`)."""
    small = statement.body[0]
    if isinstance(small, cst.Return) or m.findall(statement, m.Yield()):
        return True
    bound = [target.target.value for target in small.targets if isinstance(target.target, cst.Name)] if isinstance(small, cst.Assign) else []
    handed = m.Return(value=m.OneOf(*map(m.Name, bound))) | m.Yield(value=m.OneOf(*map(m.Name, bound)))
    return bool(bound) and any(m.findall(line, handed) for line in rest)


def _managed(
    statement: cst.SimpleStatementLine | cst.For, openings: Sequence[cst.Call], names: Sequence[str], *, asynchronous: bool = False
) -> cst.With:
    """`with <opening> as <name>, ...:` (`async with`) around `statement`, which uses the names instead."""
    inner = statement.visit(_Renamer({id(opening): name for opening, name in zip(openings, names)}))
    inner = cst.ensure_type(inner, cst.BaseCompoundStatement | cst.SimpleStatementLine).with_changes(leading_lines=())
    items = [cst.WithItem(opening, asname=cst.AsName(cst.Name(name))) for opening, name in zip(openings, names)]
    return cst.With(
        items=items,
        body=cst.IndentedBlock(body=[inner]),
        asynchronous=cst.Asynchronous() if asynchronous else None,
        leading_lines=statement.leading_lines,
    )


def _nodes_now(region: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The nodes of `region` that run when it does, unconditionally (see `_NOT_NOW`)."""
    finder = _NowFinder()
    region.visit(finder)
    return iter(finder.nodes)


def _calls_now(region: cst.CSTNode) -> list[cst.Call]:
    return [node for node in _nodes_now(region) if isinstance(node, cst.Call)]


class _NowFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, _NOT_NOW):
            return False
        self.nodes.append(node)
        return True


class _Renamer(cst.CSTTransformer):
    """Puts a name in place of each opening (by identity)."""

    def __init__(self, names: dict[int, str]) -> None:
        super().__init__()
        self._names = names

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:
        name = self._names.get(id(original_node))
        return cst.Name(name) if name is not None else updated_node


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


# --- the cheap check on the stdlib AST ---------------------------------------------------------

_NOT_NOW_AST = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.IfExp, ast.BoolOp)
_ONE_STATEMENT_AST = (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Return)
_CONSUMER_NAMES = frozenset(qualified.rsplit(".", 1)[-1] for qualified in _CONSUMERS)
# `gzip.open(p)`: the modules whose `open` is one of `ONE_SHOT`, by their last name.
_OPENING_MODULES = frozenset(qualified.rsplit(".", 2)[-2] for qualified in ONE_SHOT if qualified.endswith(".open"))
_CLIENT_CLASSES = frozenset(qualified.rsplit(".", 1)[-1] for qualified in _INLINE_CLIENTS)
_FILE_OPENER_NAMES = frozenset(qualified.rsplit(".", 1)[-1] for qualified in ONE_SHOT)
# A call, with its parent and grandparent.
_Use = tuple[ast.Call, ast.AST, ast.AST]


class _Scan:
    """The openings `could_fire` looks for, shaped as the visitor wants them (see `could_fire`)."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        named = (node for node in quickscan.every_node(tree) if isinstance(node, ast.Call) and quickscan.called_name(node) in _OPENER_NAMES)
        self.lines = sorted(call.lineno for call in named if self.opens(call))  # where they may be

    def on_lines(self, node: ast.stmt) -> bool:
        """Whether a possible opening starts on one of the lines of `node`."""
        first = bisect_left(self.lines, node.lineno)
        return first < len(self.lines) and self.lines[first] <= (node.end_lineno or node.lineno)

    @cached_property
    def modules(self) -> frozenset[str]:
        """The names `gzip.open` may be called through: the modules, and what imports bind them to."""
        aliases = {
            alias.asname
            for node in quickscan.of_type(self.tree, ast.Import)
            for alias in cast(ast.Import, node).names
            if alias.asname and alias.name.rsplit(".", 1)[-1] in _OPENING_MODULES
        }
        return _OPENING_MODULES | {"builtins"} | aliases

    @cached_property
    def functions(self) -> frozenset[str]:
        """The names a file opener may be called by: `open`, `urlopen`..., and `from gzip import open as gopen`."""
        aliases = {
            alias.asname
            for node in quickscan.of_type(self.tree, ast.ImportFrom)
            for alias in cast(ast.ImportFrom, node).names
            if alias.asname and alias.name in _FILE_OPENER_NAMES
        }
        return _FILE_OPENER_NAMES | aliases

    @cached_property
    def paths(self) -> PathHolders:
        return PathHolders(self.tree)

    def opens(self, call: ast.Call) -> bool:
        """Whether `call` may be one of `ONE_SHOT` (or `path.open()`), or an `aiohttp.ClientSession()`."""
        return self.opens_file(call) or quickscan.called_name(call) in _CLIENT_CLASSES

    def opens_file(self, call: ast.Call) -> bool:
        """Whether `call` may be one of `ONE_SHOT`, or `path.open()`."""
        func = call.func
        if isinstance(func, ast.Name):
            return func.id in self.functions
        if not isinstance(func, ast.Attribute) or func.attr not in _FILE_OPENER_NAMES:
            return False
        if func.attr != "open":
            return isinstance(func.value, (ast.Name, ast.Attribute))  # `zipfile.ZipFile`, `urllib.request.urlopen`
        return isinstance(func.value, ast.Name) and func.value.id in self.modules or self.paths(func.value)


def _statements(tree: ast.Module) -> Iterator[tuple[ast.stmt, ast.AST | None]]:
    """Every statement, with the `def` or `class` whose own frame runs it (None: the module's)."""
    stack: list[tuple[list[ast.stmt], ast.AST | None]] = [(tree.body, None)]
    while stack:
        statements, frame = stack.pop()
        for statement in statements:
            yield statement, frame
            inner = statement if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else frame
            for block in _blocks(statement):
                stack.append((block, inner))


def _blocks(statement: ast.stmt) -> Iterator[list[ast.stmt]]:
    for field in ("body", "orelse", "finalbody"):
        block = getattr(statement, field, None)
        if isinstance(block, list):
            yield block
    for part in (*getattr(statement, "handlers", ()), *getattr(statement, "cases", ())):
        yield part.body


def _calls_now_ast(node: ast.AST, parent: ast.AST, grandparent: ast.AST) -> Iterator[_Use]:
    """The calls in `node` that run when it does (see `_NOT_NOW`), each with its parent and
    grandparent (a keyword argument's is the call)."""
    if isinstance(node, _NOT_NOW_AST):
        return
    if isinstance(node, ast.Call):
        yield node, parent, grandparent
    if isinstance(node, ast.keyword):  # LibCST's `Arg` of the call: its value's parent is the call
        yield from _calls_now_ast(node.value, parent, grandparent)
        return
    for child in ast.iter_child_nodes(node):
        yield from _calls_now_ast(child, node, parent)


def _used_here(call: ast.Call, parent: ast.AST, grandparent: ast.AST) -> str | None:
    """How a statement uses what `call` made, as `_use` sees it: the receiver of a method call
    ("method"), an argument ("argument", not `*args`), or the iterable of a `for` ("loop")."""
    if isinstance(parent, ast.Attribute) and isinstance(grandparent, ast.Call) and grandparent.func is parent:
        return "method"
    if isinstance(parent, ast.Call) and (call in parent.args or any(keyword.value is call for keyword in parent.keywords if keyword.arg)):
        return "argument"
    if isinstance(parent, (ast.For, ast.AsyncFor)) and parent.iter is call:
        return "loop"
    return None


def _never_closed_may_fire(statement: ast.stmt, scan: _Scan) -> bool:
    """An opening `flag_never_closed` may report in `statement`: used in place, not closed or
    stored at once (`open(p, "w").close()`, `files.append(open(p))`), and when the statement hands
    what it makes over (`return File(open(p))`, `self.f = File(open(p))`), one the statement may
    use up (`return open(p).read()`, `self.data = json.load(open(p))`)."""
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        region, parent = statement.iter, statement
    elif isinstance(statement, _ONE_STATEMENT_AST):
        region, parent = statement, statement
    else:
        return False
    hands_over = _hands_over_ast(statement)
    for call, user, outer in _calls_now_ast(region, parent, parent):
        how = _used_here(call, user, outer) if scan.opens_file(call) else None
        if how is None or _closes_or_stores(how, user):
            continue
        if not hands_over or _may_use_up(how, user, outer):
            return True
    return False


def _closes_or_stores(how: str, user: ast.AST) -> bool:
    """`_handed_over`: `open(p, "w").close()`, `files.append(open(p))` (`stores`' methods)."""
    if how == "method":
        return cast(ast.Attribute, user).attr == "close"
    call = cast(ast.Call, user)
    return how == "argument" and isinstance(call.func, ast.Attribute) and call.func.attr in STORING_METHODS


def _hands_over_ast(statement: ast.stmt) -> bool:
    """`_hands_over` on the stdlib AST."""
    if isinstance(statement, ast.Return):
        return True
    if isinstance(statement, ast.Assign):
        return any(not isinstance(target, ast.Name) for target in statement.targets)
    return isinstance(statement, ast.AnnAssign) and not isinstance(statement.target, ast.Name)


def _may_use_up(how: str, user: ast.AST, outer: ast.AST) -> bool:
    """Whether `_kept_by` may find nothing that keeps the file: a method that returns data, or a
    call that may be a consumer, or whose result may go to one."""
    if how == "method":
        return cast(ast.Attribute, user).attr in _DATA_METHODS
    consumer = cast(ast.Call, user)
    return quickscan.called_name(consumer) in _CONSUMER_NAMES or (
        isinstance(outer, ast.Call) and quickscan.called_name(outer) in _CONSUMER_NAMES
    )


def _inline_client_may_fire(statement: ast.stmt) -> bool:
    """`reply = await aiohttp.ClientSession().get(url)` in an `async def`: a session that is only
    the receiver of a method call other than `close`, in a simple statement."""
    if any(isinstance(getattr(statement, field, None), list) for field in ("body", "cases")):
        return False  # a compound statement: its parts are statements of their own
    return any(
        quickscan.called_name(call) in _CLIENT_CLASSES
        and _used_here(call, user, outer) == "method"
        and cast(ast.Attribute, user).attr != "close"
        for call, user, outer in _calls_now_ast(statement, statement, statement)
    )
