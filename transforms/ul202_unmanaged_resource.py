'''UL202 unmanaged-resource

## What it does
Finds a resource assigned to a name and closed by hand later in the same block, where the close
is not in a `finally`: `f = open(path)` ... `f.close()`. The statements from the creation to the
close go into `with open(path) as f:` (`async with` for async resources), and the close call goes.

Built-in kinds, resolved by qualified name (aliases and from-imports followed): `open()`,
`io.open`, `codecs.open`, `gzip`/`bz2`/`lzma.open` (and their `GzipFile`/`BZ2File`/`LZMAFile`),
`tarfile.open`, `zipfile.ZipFile`, `shelve.open`, `tempfile.NamedTemporaryFile`/`TemporaryFile`/
`SpooledTemporaryFile`, `socket.socket`, `socket.create_connection`, `urllib.request.urlopen`,
`httpx.Client`, `requests.Session` (all `close`), `httpx.AsyncClient` (`await aclose()`, `async
with`), `aiohttp.ClientSession` (`await close()`, `async with`), `concurrent.futures` executors
(`shutdown()`), SQLAlchemy's `Session(...)` and the sessions of a `sessionmaker(...)` this module
assigns once (`db = SessionLocal()`), or that the project index finds in another module, also when reached
through a submodule (`db_manager.Session()` after `from app.db import manager as db_manager`)
(the async ones: `AsyncSession`, `async_sessionmaker`), and
playwright's `pw = await async_playwright().start()` ... `await pw.stop()` (`async with
async_playwright() as pw:`; `sync_playwright` alike). Objects made by a method are known by what
their receiver holds: `path.open()` on a `pathlib.Path` (built, derived with `/`, `.parent`,
`with_suffix()`..., or a parameter annotated `Path`).

Some kinds are released by a `try:` ... `finally:` that keeps the release call as written, since
`with` would not do the same thing: a `sqlite3.connect(...)` connection and its `cursor()`s (a
connection's `with` commits or rolls back and leaves it open; a cursor has no `with`),
`ftplib.FTP` and `smtplib.SMTP` (their `with` sends QUIT and treats the reply otherwise than
`quit()`; `close()` sends nothing), playwright's browsers, contexts and pages
(`browser = await p.chromium.launch()`, `browser.new_context()`, `context.new_page()`: closed with
`close()`, and `with` support depends on the version), and an executor shut down with arguments
(`pool.shutdown(wait=False)`: `with` waits).
Project pairs come from `[[tool.unleak.resources]]` in
`pyproject.toml`:

```toml
[[tool.unleak.resources]]
acquire = "get_browser"      # method or function that returns the resource
release = "cleanup"          # called with the resource (or on it) to free it
context = "browser_context"  # context manager taking the same arguments as acquire
```

turns `ctx = await manager.get_browser(headless=True)` ... `await manager.cleanup(ctx)` into
`async with manager.browser_context(headless=True) as ctx:` (same receiver, same arguments;
`await` on the acquire means `async with`, no `await` means `with`).

## Why is this bad?
When anything between the creation and the close raises, the close never runs: the file
descriptor, socket, connection pool or browser slot stays taken until the garbage collector
gets to it, or forever. A loop that fails now and then runs the process out of descriptors
("Too many open files", seed 004 #2), and a pool of browser slots that are only given back on
success deadlocks after a few failed workflows (seed 000 #3). `with` releases on every path.

## Example
```python
def first_line(path):
    handle = open(path)
    line = handle.readline()
    handle.close()
    return line
```

## Use instead
```python
def first_line(path):
    with open(path) as handle:
        line = handle.readline()
    return line
```

## Fix safety
Safe. The fix is made only when the name is assigned once, the close is a statement of its own
in the block that creates the resource, and nothing can use the resource after the close that
could not before: the close runs at the same point on the normal path, and now also when
something raises. So every other use of the name between the two must be an attribute access
(`handle.read()`, `handle.name`), the iterable of a `for` or of a comprehension, or an argument
of a call (`json.dump(data, handle)`, `writer = csv.writer(handle)`,
`await self.run(url, session=session)`) whose result is used, passed on or bound to a plain
name. In a `@contextmanager` (`@asynccontextmanager`) generator, `yield handle` (or
`yield csv.reader(handle)`) as a statement also stays: the caller's `with` block uses it while the
generator waits, and the close after the `yield` is that block's exit, which the new `with` now
also runs when the block raises (`with open(p) as handle: yield handle`). Left alone: code that closes in a `finally` or already uses `with`; resources that
escape -- returned or yielded (also inside what a call made of them: `return csv.reader(handle)`)
before the close, stored on `self` or in a container (`bag.append(handle)`,
`self.writer = csv.writer(handle)`, `stack.enter_context(handle)`, `Thread(args=(handle,))`),
assigned to another name, used by a nested function, lambda or a generator that leaves the
frame -- since then someone else may still need them open; closes in another method; a second
close on another path (`if bad: f.close(); return`, or a helper named like a release:
`safe_close(f)`, `cleanup(session)`), since closing twice is not harmless for every kind; session factories imported from a module the project index cannot read (their kind is unknown). A resource
still used after its close (or outside the block that creates it) is reported without a fix.
Async resources are rewritten only inside an `async def`.

The byte trigger is a call of `.close(`, `.aclose(`, `.stop(`, `.quit(` or `.shutdown(`; with configured pairs it also
accepts a call of one of their release names (`trigger_for`). `could_fire` then keeps only files
with an assignment from a call followed, in the same block, by a statement that calls one of
those names on the assigned name (`f.close()`) or, for a configured release, with it
(`manager.cleanup(ctx)`), where the call may create a resource: a built-in kind as the module
imports it, a session factory the project index knows, `x.open()` only with `pathlib` imported and
`x` bound to something that makes a path, `cursor()` only with `sqlite3` imported, playwright's
methods only with `playwright` imported.
'''

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import (
    Assignment,
    ComprehensionScope,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    Scope,
    ScopeProvider,
)

from unleak.knowledge import quickscan
from unleak.knowledge.bindings import binds_in, reaching_binding
from unleak.knowledge.analysis import calls, enclosing_function, in_async_function, in_context_manager_generator, within
from unleak.knowledge.layout import without_leading_blanks
from unleak.knowledge.loops import drop_statements
from unleak.knowledge.resources import BUILT_IN, METHOD_NAMES, Kind, creation_kind, stores
from unleak.rule import FixSafety, Invalid, Rule, Valid
from unleak.knowledge.declarations import module_facts
from unleak.knowledge.project import ProjectIndex, ProjectView
from unleak.knowledge.resource_scan import PathHolders, imported_packages
from unleak.knowledge.sessions import SESSION_FACTORIES, SessionCall, factory_session, project_session_maker
from unleak.settings import ResourcePair, Settings

Block = cst.IndentedBlock | cst.Module

_ASSIGNS_TO_A_NAME = m.SimpleStatementLine(
    body=[m.Assign(targets=[m.AssignTarget(m.Name())], value=m.Call() | m.Await(m.Call()))]
)
_CALL_STATEMENT = m.SimpleStatementLine(body=[m.Expr(m.Call() | m.Await(m.Call()))])


# `pw = await async_playwright().start()` ... `await pw.stop()`: the manager is the inner call.
_STARTED_BY = {
    "playwright.async_api.async_playwright": Kind(("stop",), asynchronous=True),
    "playwright.sync_api.sync_playwright": Kind(("stop",)),
}
# A helper named like a release (`safe_close(f)`, `cleanup(session)`) may close it on its path.
_RELEASE_LIKE = re.compile(r"close|release|clean_?up|dispose|shutdown|quit|stop|teardown|finali[sz]e", re.IGNORECASE)
_STARTED = m.Call(func=m.Attribute(value=m.Call(), attr=m.Name("start")), args=[])


@dataclass(frozen=True)
class _Resource:
    """A `NAME = <acquire>` statement this rule knows how to put in a `with`."""

    name: str
    creation: cst.SimpleStatementLine
    context: cst.BaseExpression  # what goes after `with`
    asynchronous: bool
    acquired_by: cst.BaseExpression  # the callee of the creation (`manager.get_browser`)
    pair: ResourcePair | None  # None: a built-in kind
    kind: Kind | None  # None: a configured pair

    @property
    def releases(self) -> tuple[str, ...]:
        """The method names that release it when called on it."""
        if self.kind is not None:
            return self.kind.releases
        return (cst.ensure_type(self.pair, ResourcePair).release.rsplit(".", 1)[-1],)

    def closes_by_with(self, release: cst.Call) -> bool:
        """Whether leaving a `with` does what `release` does: a configured pair, or a kind's own
        close without arguments (`executor.shutdown(wait=False)` is not `with`'s shutdown)."""
        if self.kind is None:
            return True
        method = cst.ensure_type(release.func, cst.Attribute).attr.value
        return self.kind.managed and method == self.kind.close and not release.args


class UnmanagedResource(Rule):
    code = "UL202"
    name = "unmanaged-resource"
    safety = FixSafety.SAFE
    summary = "Resource closed by hand, not on every path: use `with` (or `async with`)"
    trigger = (rb"\.(?:a?close|stop|quit|shutdown)\s*\(",)
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)
    uses_project = True
    trigger_reads = ("resources",)

    @classmethod
    def trigger_for(cls, settings: Settings) -> tuple[bytes, ...]:
        """The built-in closes, or a call of a configured release (`manager.cleanup(ctx)`, `cleanup(ctx)`)."""
        releases = sorted(_release_names(settings))
        if not releases:
            return cls.trigger
        alternatives = b"|".join(re.escape(name.encode()) for name in releases)
        return (cls.trigger[0] + rb"|\b(?:" + alternatives + rb")\s*\(",)

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        return cls.could_fire_under(tree, Settings())

    @classmethod
    def could_fire_under(cls, tree: ast.Module, settings: Settings) -> bool:
        return cls.could_fire_in(tree, settings, ProjectView.empty())

    @classmethod
    def could_fire_in(cls, tree: ast.Module, settings: Settings, project: ProjectView) -> bool:
        """An assignment from a call that may create a resource, then in the same block a
        statement that releases the assigned name: `NAME.close()`, or `release(NAME)` for a
        configured pair. The cheap shapes first; what may create a resource only for those."""
        configured = _release_names(settings)
        creations = list(_released_creations(tree, _BUILT_IN_CLOSERS | configured, configured))
        return bool(creations) and any(map(_possible_makers(tree, settings, project), creations))

    @m.visit(_ASSIGNS_TO_A_NAME)
    def flag_unmanaged_resource(self, line: cst.SimpleStatementLine) -> None:
        block = self.get_metadata(ParentNodeProvider, line)
        if not isinstance(block, (cst.IndentedBlock, cst.Module)):
            return
        if isinstance(enclosing_function(self, line), cst.ClassDef):
            return
        resource = self._resource(line)
        if resource is None or (resource.asynchronous and not in_async_function(self, line)):
            return
        references = self._references(resource, block)
        if references is None:
            return
        close = self._close_in_block(resource, block, references)
        if close is None:
            return
        statements = list(block.body)
        start, end = statements.index(line), statements.index(close)
        if any(self._outside(reference, statements[start : end + 1]) for reference in references):
            self.report(line, f"`{resource.name}` is closed by hand and used after its close: use `with` by hand")
            return
        others = [reference for reference in references if not within(self, reference, close)]
        if not all(self._stays_here(reference, resource) for reference in others):
            return  # escapes (someone else may need it open), or is closed on another path too
        undefined = self._undefined_context(resource)
        if undefined is not None:
            self.report(line, f"`{resource.name}` is closed by hand: use `with {undefined}(...)` (import it first)")
            return
        if resource.closes_by_with(_release_call(close)):
            self._wrap_in_with(resource, block, start, end)
        else:
            self._wrap_in_try(resource, block, start, end)

    def _undefined_context(self, resource: _Resource) -> str | None:
        """A configured context manager that is not a method on the acquire's receiver and whose
        first name is not defined where the `with` would use it; None when it is usable."""
        if resource.pair is None:
            return None
        context = resource.pair.context
        if isinstance(resource.acquired_by, cst.Attribute) and "." not in context:
            return None  # `manager.browser_context`, next to `manager.get_browser`
        root = context.split(".", 1)[0]
        return None if root in self.get_metadata(ScopeProvider, resource.creation) else context

    def _wrap_in_with(self, resource: _Resource, block: Block, start: int, end: int) -> None:
        """Report the block with `statements[start:end + 1]` replaced by the `with` statement."""
        statements = list(block.body)
        kept, leftover = drop_statements(statements[start + 1 : end + 1], [statements[end]])
        if not kept:
            return  # nothing runs between creation and close
        managed = _with_statement(resource, kept, leftover)
        fixed = block.with_changes(body=[*statements[:start], managed, *statements[end + 1 :]])
        self.report(block, f"{self._not_closed(resource)}: use `with`", fix=fixed)

    def _wrap_in_try(self, resource: _Resource, block: Block, start: int, end: int) -> None:
        """Report the block with the statements after the creation in a `try:` whose `finally:`
        is the release (for kinds whose `with` would not release them the same way)."""
        statements = list(block.body)
        close = cst.ensure_type(statements[end], cst.SimpleStatementLine)
        kept, leftover = drop_statements(statements[start + 1 : end + 1], [close])
        if not kept:
            return
        guarded = _try_finally(kept, leftover, close)
        fixed = block.with_changes(body=[*statements[: start + 1], guarded, *statements[end + 1 :]])
        release = cst.Module([]).code_for_node(cst.ensure_type(close.body[0], cst.Expr).value)
        self.report(block, f"{self._not_closed(resource)}: use `try:` ... `finally: {release}`", fix=fixed)

    def _not_closed(self, resource: _Resource) -> str:
        where = self.get_metadata(PositionProvider, resource.creation).start.line
        return f"`{resource.name}` (line {where}) is not closed when the code before its close raises"

    VALID = (
        Valid(
            """
            def first_line(path):
                with open(path) as handle:
                    return handle.readline()
            """
        ),
        Valid(
            """
            def first_line(path):
                handle = open(path)
                try:
                    return handle.readline()
                finally:
                    handle.close()
            """
        ),
        Valid(
            """
            def open_log(path):
                handle = open(path)
                handle.write("started\\n")
                registry.append(handle)
                handle.close()
            """
        ),
        Valid(
            """
            class Store:
                def start(self, path):
                    self.handle = open(path)
                    self.handle.write("started\\n")

                def stop(self):
                    self.handle.close()
            """
        ),
        Valid(
            """
            def open(path):
                return Fake(path)

            def first_line(path):
                handle = open(path)
                line = handle.readline()
                handle.close()
                return line
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            def first_line(path):
                handle = open(path)
                line = handle.readline()
                handle.close()
                return line
            """,
            """
            def first_line(path):
                with open(path) as handle:
                    line = handle.readline()
                return line
            """,
        ),
        Invalid(
            """
            import httpx

            async def fetch_all(urls):
                # one pool for every url
                client = httpx.AsyncClient(timeout=30)  # shared
                pages = []
                for url in urls:
                    pages.append((await client.get(url)).text)
                await client.aclose()
                return pages
            """,
            """
            import httpx

            async def fetch_all(urls):
                # one pool for every url
                async with httpx.AsyncClient(timeout=30) as client:  # shared
                    pages = []
                    for url in urls:
                        pages.append((await client.get(url)).text)
                return pages
            """,
        ),
        Invalid(
            """
            from requests import Session

            def download(url, target):
                session = Session()
                response = session.get(url)
                target.write_bytes(response.content)
                # done with the network
                session.close()
            """,
            """
            from requests import Session

            def download(url, target):
                with Session() as session:
                    response = session.get(url)
                    target.write_bytes(response.content)
                    # done with the network
            """,
        ),
        Invalid(
            """
            import json

            def save(path, data):
                handle = open(path, "w")
                json.dump(data, handle)  # lent to a call: still closed here
                handle.close()
            """,
            """
            import json

            def save(path, data):
                with open(path, "w") as handle:
                    json.dump(data, handle)  # lent to a call: still closed here
            """,
        ),
        Invalid(
            """
            import sqlite3

            def count(path):
                conn = sqlite3.connect(path)
                total = conn.execute("select count(*) from jobs").fetchone()[0]
                conn.close()
                return total
            """,
            """
            import sqlite3

            def count(path):
                conn = sqlite3.connect(path)
                try:
                    total = conn.execute("select count(*) from jobs").fetchone()[0]
                finally:
                    conn.close()
                return total
            """,
        ),
        Invalid(
            """
            def count_lines(path):
                handle = open(path)
                total = sum(1 for _ in handle.readlines())
                handle.close()
                handle.read()
                return total
            """
        ),
    )

    # --- what the assignment creates -------------------------------------------------------------

    def _resource(self, line: cst.SimpleStatementLine) -> _Resource | None:
        assign = cst.ensure_type(line.body[0], cst.Assign)
        name = cst.ensure_type(assign.targets[0].target, cst.Name).value
        awaited = isinstance(assign.value, cst.Await)
        call = cst.ensure_type(_unawaited(assign.value), cst.Call)
        built_in = self._built_in(call, awaited)
        if built_in is not None:
            context, kind = built_in
            return _Resource(name, line, context, kind.asynchronous, call.func, None, kind)
        pair = next((pair for pair in self.settings.resources if _names_function(call.func, pair.acquire)), None)
        if pair is None:
            return None
        context = call.with_changes(func=_context_function(call.func, pair.context))
        return _Resource(name, line, context, awaited, call.func, pair, None)

    def _built_in(self, call: cst.Call, awaited: bool) -> tuple[cst.Call, Kind] | None:
        """What goes after `with` for a built-in kind, and how it is closed; None for other calls."""
        if m.matches(call, _STARTED):
            manager = cst.ensure_type(cst.ensure_type(call.func, cst.Attribute).value, cst.Call)
            kind = next((kind for name, kind in _STARTED_BY.items() if calls(self, manager, name)), None)
            return (manager, kind) if kind is not None and kind.asynchronous == awaited else None
        kind = creation_kind(self, call, awaited)
        if kind is None and not awaited:
            kind = _session_kind(factory_session(self, call))
        return (call, kind) if kind is not None else None

    # --- how the name is used --------------------------------------------------------------------

    def _references(self, resource: _Resource, block: Block) -> list[cst.Name] | None:
        """Every use of the name that sees this resource, or None when that is not certain: the
        name is used in another scope, assigned again before the close, or used where another
        assignment of it may or may not have run (`f = open(a)` ... `f.close()` then
        `f = open(b)` in the same block is fine)."""
        assign = cst.ensure_type(resource.creation.body[0], cst.Assign)
        target = cst.ensure_type(assign.targets[0].target, cst.Name)
        scope = self.get_metadata(ScopeProvider, target)
        assignments = list(scope.assignments[target.value])
        if not any(isinstance(assignment, Assignment) and assignment.node is target for assignment in assignments):
            return None
        accesses = {access for assignment in assignments for access in assignment.references}
        if not all(_runs_in(access.scope, scope) for access in accesses):
            return None  # a nested function, lambda or generator may use it later, elsewhere
        uses = [cst.ensure_type(access.node, cst.Name) for access in accesses]
        if len(assignments) == 1:
            return uses
        return self._uses_of_this_creation(resource, block, uses, [assignment.node for assignment in assignments])

    def _uses_of_this_creation(
        self, resource: _Resource, block: Block, uses: list[cst.Name], bindings: list[cst.CSTNode]
    ) -> list[cst.Name] | None:
        """The uses of a reused name that see the resource; None when one may or may not."""
        close = self._close_in_block(resource, block, uses)
        statements = list(block.body)
        start = statements.index(resource.creation)
        end = statements.index(close) if close is not None else len(statements) - 1
        others = [binding for binding in bindings if not within(self, binding, resource.creation)]
        if binds_in(self, statements[start + 1 : end + 1], others):
            return None  # the close may be another object's
        seen = [(use, reaching_binding(self, use, bindings)) for use in uses]
        if any(binding is None for _, binding in seen):
            return None
        return [use for use, binding in seen if binding is resource.creation]

    def _close_in_block(
        self, resource: _Resource, block: Block, references: list[cst.Name]
    ) -> cst.SimpleStatementLine | None:
        """The first statement of `block` after the creation that only releases the resource."""
        creation_index = list(block.body).index(resource.creation)
        for statement in block.body[creation_index + 1 :]:
            uses_it = any(within(self, reference, statement) for reference in references)
            if uses_it and self._releases(resource, statement):
                return cst.ensure_type(statement, cst.SimpleStatementLine)
        return None

    def _releases(self, resource: _Resource, statement: cst.BaseStatement) -> bool:
        """`name.close()` (awaited for async kinds; `shutdown(wait=False)` and the like keep their
        arguments), or a configured `receiver.release(name)`/`name.release()`."""
        if not m.matches(statement, _CALL_STATEMENT):
            return False
        value = cst.ensure_type(cst.ensure_type(statement, cst.SimpleStatementLine).body[0], cst.Expr).value
        call = cst.ensure_type(_unawaited(value), cst.Call)
        if resource.kind is not None:
            method = m.Attribute(value=m.Name(resource.name), attr=m.OneOf(*map(m.Name, resource.kind.releases)))
            awaited = isinstance(value, cst.Await)
            return m.matches(call, m.Call(func=method)) and awaited == resource.kind.asynchronous
        if m.matches(call, m.Call(func=m.Attribute(value=m.Name(resource.name)), args=[])):
            return _names_function(call.func, resource.releases[0])
        return self._configured_release_of(resource, call)

    def _configured_release_of(self, resource: _Resource, call: cst.Call) -> bool:
        """`receiver.release(name)` for a configured pair, on the acquire's receiver."""
        if resource.pair is None:
            return False
        return (
            m.matches(call, m.Call(args=[m.Arg(value=m.Name(resource.name), keyword=None, star="")]))
            and _names_function(call.func, resource.pair.release)
            and _receiver_code(call.func) == _receiver_code(resource.acquired_by)
        )

    def _stays_here(self, reference: cst.Name, resource: _Resource) -> bool:
        """Whether nothing can use the resource through `reference` after its close that could
        not before: `name.attribute` (method calls included, but not another release: closing
        twice is not harmless for every kind), `for ... in name`, or an argument of a call
        (`json.dump(data, name)`, `csv.writer(name)`) that does not store it, and whose result
        is not returned, yielded or stored on an attribute either."""
        parent = self.get_metadata(ParentNodeProvider, reference)
        if isinstance(parent, cst.Attribute):
            return parent.value is reference and parent.attr.value not in resource.releases
        if isinstance(parent, cst.For):
            return parent.iter is reference
        if isinstance(parent, cst.CompFor) and parent.iter is reference:
            return self._comprehension_stays(parent)
        if isinstance(parent, cst.Yield):
            return self._lent_to_the_with_block(parent, reference)
        if isinstance(parent, cst.Arg) and parent.value is reference:
            call = cst.ensure_type(self.get_metadata(ParentNodeProvider, parent), cst.Call)
            if self._configured_release_of(resource, call) or _may_release(call) or stores(self, call):
                return False
            return self._stays_in_frame(call)
        return False

    def _outside(self, reference: cst.Name, span: list[cst.BaseStatement]) -> bool:
        """Whether `reference` stands outside the statements from the creation to the close."""
        return not any(within(self, reference, statement) for statement in span)

    def _comprehension_stays(self, loop: cst.CompFor) -> bool:
        """`[line for line in name]` runs at once; a generator over it only as long as it stays here."""
        comprehension = self.get_metadata(ParentNodeProvider, loop)
        if isinstance(comprehension, cst.GeneratorExp):
            return self._stays_in_frame(comprehension)
        return isinstance(comprehension, (cst.ListComp, cst.SetComp, cst.DictComp))

    def _stays_in_frame(self, result: cst.BaseExpression) -> bool:
        """Whether the value of `result` (which may hold the resource: `csv.writer(handle)`) stays
        in this frame: used, passed on, or bound to a plain name, but not returned, yielded, or
        put on an attribute, in a subscript or in a literal."""
        parent = self.get_metadata(ParentNodeProvider, result)
        if isinstance(parent, cst.Await):
            return self._stays_in_frame(parent)
        if isinstance(parent, cst.Arg) and parent.value is result:
            return self._stays_in_frame(cst.ensure_type(self.get_metadata(ParentNodeProvider, parent), cst.Call))
        if isinstance(parent, cst.Attribute):  # `csv.writer(handle).writerow(row)`
            return parent.value is result
        if isinstance(parent, cst.For):
            return parent.iter is result
        if isinstance(parent, cst.Yield):
            return self._lent_to_the_with_block(parent, result)
        return isinstance(parent, cst.Expr) or _bound_to_names(parent, result)

    def _lent_to_the_with_block(self, yielded: cst.Yield, value: cst.BaseExpression) -> bool:
        """`yield value` as a statement of a `@contextmanager` generator: the caller's `with` block
        uses it while the generator waits, and the close after the `yield` is that block's exit."""
        statement = self.get_metadata(ParentNodeProvider, yielded)
        return yielded.value is value and isinstance(statement, cst.Expr) and in_context_manager_generator(self, yielded)



def _session_kind(session: SessionCall | None) -> Kind | None:
    """A session of a module's `sessionmaker(...)` (`async_sessionmaker`: an async one)."""
    return None if session is None else Kind(("close",), asynchronous=bool(session.asynchronous))


def _runs_in(inner: Scope, scope: Scope) -> bool:
    """Whether code in `inner` runs right where it stands in `scope`: `scope` itself, or list, set
    and dict comprehensions in it (a generator expression runs whenever it is consumed)."""
    while isinstance(inner, ComprehensionScope) and not isinstance(inner.node, cst.GeneratorExp):
        inner = inner.parent
    return inner is scope


def _may_release(call: cst.Call) -> bool:
    func = call.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return _RELEASE_LIKE.search(name) is not None


def _bound_to_names(statement: cst.CSTNode, value: cst.BaseExpression) -> bool:
    """`writer = value` (plain names only): a local that dies with the frame, not an attribute,
    a subscript or an unpacking."""
    if isinstance(statement, cst.Assign):
        return statement.value is value and all(isinstance(target.target, cst.Name) for target in statement.targets)
    return isinstance(statement, cst.AnnAssign) and statement.value is value and isinstance(statement.target, cst.Name)


def _release_call(close: cst.SimpleStatementLine) -> cst.Call:
    return cst.ensure_type(_unawaited(cst.ensure_type(close.body[0], cst.Expr).value), cst.Call)


def _unawaited(value: cst.BaseExpression) -> cst.BaseExpression:
    return value.expression if isinstance(value, cst.Await) else value


def _dotted(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        receiver = _dotted(node.value)
        return None if receiver is None else f"{receiver}.{node.attr.value}"
    return None


def _names_function(func: cst.BaseExpression, configured: str) -> bool:
    """`manager.get_browser` and `get_browser` name the configured `get_browser` (a dotted
    configured name must match the end of the callee)."""
    if isinstance(func, cst.Attribute):
        last = func.attr.value
    elif isinstance(func, cst.Name):
        last = func.value
    else:
        return False
    if "." not in configured:
        return last == configured
    written = _dotted(func)
    return written is not None and (written == configured or written.endswith(f".{configured}"))


def _receiver_code(func: cst.BaseExpression) -> str | None:
    return cst.Module([]).code_for_node(func.value) if isinstance(func, cst.Attribute) else None


def _context_function(func: cst.BaseExpression, context: str) -> cst.BaseExpression:
    """The context manager on the acquire's receiver (`manager.browser_context`), or as configured."""
    if isinstance(func, cst.Attribute) and "." not in context:
        return func.with_changes(attr=cst.Name(context))
    return cst.parse_expression(context)


def _try_finally(kept: list[cst.BaseStatement], leftover: list[cst.EmptyLine], close: cst.SimpleStatementLine) -> cst.Try:
    """`try:` over `kept`, `finally:` the release (its end-of-line comment kept, the lines above it
    left at the end of the `try:` body, where they stood)."""
    first, *rest = kept
    return cst.Try(
        body=cst.IndentedBlock(
            body=[first.with_changes(leading_lines=without_leading_blanks(first.leading_lines)), *rest],
            footer=leftover,
        ),
        finalbody=cst.Finally(body=cst.IndentedBlock(body=[close.with_changes(leading_lines=())])),
        leading_lines=(),
    )


def _with_statement(resource: _Resource, kept: list[cst.BaseStatement], leftover: list[cst.EmptyLine]) -> cst.With:
    first, *rest = kept
    return cst.With(
        items=[cst.WithItem(resource.context, asname=cst.AsName(cst.Name(resource.name)))],
        body=cst.IndentedBlock(
            body=[first.with_changes(leading_lines=without_leading_blanks(first.leading_lines)), *rest],
            header=resource.creation.trailing_whitespace,
            footer=leftover,
        ),
        asynchronous=cst.Asynchronous() if resource.asynchronous else None,
        leading_lines=resource.creation.leading_lines,
    )


# --- the cheap check on the stdlib AST ---------------------------------------------------------


def _release_names(settings: Settings) -> set[str]:
    return {pair.release.rsplit(".", 1)[-1] for pair in settings.resources}


def _released_creations(tree: ast.Module, closers: set[str], configured: set[str]) -> Iterator[ast.Call]:
    """The calls assigned to a name (`f = open(p)`, `c = await m.get_browser()`) that a later
    statement of the same block releases: `f.close()` (one of `closers`) or, for a `configured`
    release, `m.cleanup(c)`."""
    for statements in quickscan.statement_lists(tree):
        assigned: dict[str, list[ast.Call]] = {}
        for statement in statements:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
                value = _unawaited_ast(statement.value)
                if isinstance(value, ast.Call):
                    assigned.setdefault(statement.targets[0].id, []).append(value)
            elif assigned and isinstance(statement, ast.Expr):
                value = _unawaited_ast(statement.value)
                for released in _released_names(value, closers, configured) if isinstance(value, ast.Call) else ():
                    yield from assigned.pop(released, [])


def _unawaited_ast(value: ast.expr) -> ast.expr:
    return value.value if isinstance(value, ast.Await) else value


def _released_names(call: ast.Call, closers: set[str], configured: set[str]) -> Iterator[str]:
    """NAME in `NAME.close()` (any arguments: `pool.shutdown(wait=False)`), and in `release(NAME)`
    or `receiver.release(NAME)` for a configured release (its one argument)."""
    func, called = call.func, quickscan.called_name(call)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and called in closers:
        yield func.value.id
    if called in configured and len(call.args) == 1 and not call.keywords and isinstance(call.args[0], ast.Name):
        yield call.args[0].id


def _possible_makers(tree: ast.Module, settings: Settings, project: ProjectView) -> Callable[[ast.Call], bool]:
    """What a creating call may look like: a built-in kind through its module as this file imports
    it (`tempfile.TemporaryFile()` only after `import tempfile`), a name imported from a resource
    package, `open`, a configured acquire, a method that makes a resource of an object this module
    can hold (`path.open()` with `pathlib` imported and `path` bound to a path, `conn.cursor()`
    with `sqlite3` imported, playwright's `<manager>.start()`, `p.chromium.launch()`,
    `browser.new_page()` with `playwright` imported), or a session factory the project index knows
    (this module's own `SessionLocal = sessionmaker(...)` too)."""
    acquires = {pair.acquire.rsplit(".", 1)[-1] for pair in settings.resources}
    names = {"open"} | acquires
    for node in quickscan.of_type(tree, ast.ImportFrom):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _RESOURCE_PACKAGES:
            names |= {alias.asname or alias.name for alias in node.names}
    modules: dict[str, set[str]] = {}  # a name an import binds -> the modules it stands for
    for node in quickscan.of_type(tree, ast.Import):
        for alias in cast(ast.Import, node).names:
            root = alias.name.split(".")[0]  # `import os.path` binds `os`; `import os.path as p`, `p`
            modules.setdefault(alias.asname or root, set()).add(alias.name if alias.asname else root)
    packages = imported_packages(tree)
    playwright = "playwright" in packages
    paths = PathHolders(tree)
    sessions = _session_makers(tree, project)

    def made_by_method(func: ast.Attribute, call: ast.Call) -> bool:
        """`path.open()`, `conn.cursor()`, `p.chromium.launch()`, `async_playwright().start()`."""
        if func.attr == "open":
            return paths(func.value)
        if func.attr == "cursor":
            return "sqlite3" in packages
        if func.attr == "start":
            return playwright and isinstance(func.value, ast.Call) and not call.args and not call.keywords
        return playwright and func.attr in _PLAYWRIGHT_METHODS

    def accepts(call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Name):
            return func.id in names or sessions(call)
        if not isinstance(func, ast.Attribute):
            return False
        if func.attr in acquires or made_by_method(func, call) or sessions(call):
            return True
        if func.attr not in _BUILT_IN_LAST_NAMES:
            return False
        if not isinstance(func.value, ast.Name):  # `sqlalchemy.orm.Session()`, but not `self.storage.open()`
            return _root_name(func.value) in modules
        return func.value.id in names or any(f"{module}.{func.attr}" in BUILT_IN for module in modules.get(func.value.id, ()))

    return accepts


def _session_makers(tree: ast.Module, project: ProjectView) -> Callable[[ast.Call], bool]:
    """A call of a session factory the project index knows; a view without this module's own
    declarations (a gate asked outside a run) learns them from `tree`."""
    in_project = project_session_maker(project)
    if project.own.bindings:
        return in_project
    in_module = project_session_maker(ProjectIndex().view(module_facts(tree, None)))
    return lambda call: in_project(call) or in_module(call)


def _root_name(node: ast.expr) -> str | None:
    """`sqlalchemy` for `sqlalchemy.orm`; None when the chain does not start with a name."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


_RESOURCE_PACKAGES = frozenset(
    qualified.split(".")[0] for qualified in (*BUILT_IN, *SESSION_FACTORIES, *_STARTED_BY)
)
_BUILT_IN_LAST_NAMES = frozenset(qualified.rsplit(".", 1)[-1] for qualified in BUILT_IN)
_BUILT_IN_CLOSERS = frozenset(release for kind in (*BUILT_IN.values(), *_STARTED_BY.values()) for release in kind.releases)
_PLAYWRIGHT_METHODS = METHOD_NAMES - {"open", "cursor"}
