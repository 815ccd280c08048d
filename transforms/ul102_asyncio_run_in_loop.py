'''UL102 asyncio-run-in-loop

## What it does
Finds synchronous code that starts an event loop per item: a `def` that calls `asyncio.run()`
inside a `for`/`while` statement, or more than once, and a module-level `for`/`while` statement
that calls it. The function's body moves into a new `async def _<name>_async(<same parameters>)`
placed right before it, where each `asyncio.run(x)` becomes `await x`; the function keeps its
decorators, signature and docstring and becomes `return asyncio.run(_<name>_async(<the same
arguments>))`. A module-level loop moves into `async def _main()`, run once by
`asyncio.run(_main())` where the loop stood. One event loop per call instead of one per item.
Comprehensions are not statement loops: `[asyncio.run(f(x)) for x in xs]` alone is not flagged.
Runs on the thread's implicit loop count as `asyncio.run` calls here: `asyncio.get_event_loop()
.run_until_complete(x)`, and `loop.run_until_complete(x)` on a `loop = asyncio.get_event_loop()`
used only for such runs and `close()` (those two lines go). A lone one is UL107's.
A generator cannot become a coroutine (its callers iterate it): it keeps its body, run around
one loop of its own -- `loop = asyncio.new_event_loop()`, the body in `try:` with
`loop.run_until_complete(x)` for each run, and `loop.close()` in `finally:`, which runs when the
generator is exhausted, closed or collected.

## Why is this bad?
Every `asyncio.run()` creates a new event loop and closes it. Anything bound to the first loop
-- an `asyncio.Lock` or `Semaphore` that was ever contended, a `Queue`, a client session, a
connection pool -- fails in the next one with `RuntimeError: ... is bound to a different event
loop` or hangs, and creating and tearing down a loop (selector, executor, signal handling) per
item is slow (seed 003 #3).

The seed's fix turned the Celery task itself into `async def`. That breaks every synchronous
caller: a Celery worker calls the task function and gets back a coroutine object that nobody
awaits -- nothing runs, the task is marked successful (`RuntimeWarning: coroutine ... was never
awaited`), and a result backend cannot even serialize what it returned. The same goes for a cron
script, a Flask view or a test that calls it. Keeping a synchronous wrapper keeps the API.

## Example
```python
@celery_app.task
def check_all_agencies_for_recalls(agencies):
    """Celery task."""
    for agency in agencies:
        users = asyncio.run(find_affected_users(agency))
        asyncio.run(send_alerts(users))
```

## Use instead
```python
async def _check_all_agencies_for_recalls_async(agencies):
    for agency in agencies:
        users = await find_affected_users(agency)
        await send_alerts(users)


@celery_app.task
def check_all_agencies_for_recalls(agencies):
    """Celery task."""
    return asyncio.run(_check_all_agencies_for_recalls_async(agencies))
```

## Fix safety
Unsafe (runs with `--unsafe`). The function's API is kept: same name, decorators, signature
(defaults stay on the wrapper, which forwards every parameter explicitly: positional-only and
regular ones by position, `*args`, keyword-only ones by keyword, `**kwargs`) and return value.
A method's helper is a method of the same class (so `super()`, name mangling and overriding keep
working), called through `self`/`cls`; a `staticmethod`'s through its class. What changes is
that the whole body now runs inside one running event loop: a function it calls that starts a
loop of its own (`asyncio.run`, `run_until_complete`) now fails, tasks a coroutine leaves behind
keep running until the end of the call instead of being cancelled at the end of each item, and
`asyncio.get_event_loop()` in the body returns the running loop. A module-level loop's names
stay module globals (`global` in `_main`). In a generator the items' coroutines share the loop:
tasks one leaves behind are no longer cancelled before the next item (they are destroyed with
the loop at the end). `asyncio.Runner` (3.11+) would do the same with its cleanup; the fix
uses a plain loop, which every Python runs. Reported without a fix: bodies that
drive a loop by hand (or mix `asyncio.run` with runs on the implicit loop, which
`asyncio.run` leaves unset) or hold a nested function, lambda or generator expression that calls
`asyncio.run`, `asyncio.run(..., debug=...)`, and a `staticmethod` of a nested class. Async
functions are left to UL101.
'''

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial

import ast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import (
    ComprehensionScope,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from unleak.knowledge.analysis import FunctionLike, ancestors, calls, enclosing_function, import_binding
from unleak.knowledge.loops import (
    ImplicitRun,
    NodeEditor,
    Rewrite,
    asyncio_attribute,
    asyncio_run_beside,
    awaiting,
    implicit_run,
    running_with,
    runs_per_item,
)
from unleak.knowledge import quickscan
from unleak.rule import FixSafety, ImportSpec, Invalid, Rule, Valid
from unleak.settings import Settings

ASYNCIO_RUN = "asyncio.run"
_ONE_COROUTINE = m.Call(args=[m.Arg(keyword=None, star="") | m.Arg(keyword=m.Name("main"))])
_DRIVES_A_LOOP = m.Call(func=m.Attribute(attr=m.Name("run_until_complete") | m.Name("run_forever")))
_DOCSTRING = m.SimpleStatementLine(body=[m.Expr(m.SimpleString() | m.ConcatenatedString())])
_NO_SPACE = cst.SimpleWhitespace("")
_BINDINGS = ("staticmethod", "classmethod")  # decorators the helper must share to be called the same way
_BY_HAND = "it also drives an event loop by hand, which fails inside a running loop"
_ASYNCIO_IS_TAKEN = "the name `asyncio` means something else here"
_Reference = tuple[cst.BaseExpression, tuple[ImportSpec, ...]]  # how the fix calls `asyncio.run`, and its import


class AsyncioRunInLoop(Rule):
    code = "UL102"
    name = "asyncio-run-in-loop"
    safety = FixSafety.UNSAFE
    summary = "`asyncio.run()` per item starts a new event loop each time: run one loop around the whole job"
    trigger = (rb"asyncio", rb"\brun(?:_until_complete)?\b")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """`asyncio.run` in a loop, or more than once in one sync function; `run_until_complete` counts
        where the file gets or creates a loop (runs on the implicit loop are this rule's, and UL104
        turns a loop created per item into `asyncio.run` for this rule's next pass)."""
        asyncio_run = quickscan.Callees(tree, "asyncio", {"run"})
        get_loop = quickscan.Callees(tree, "asyncio", {"get_event_loop", "new_event_loop"})
        implicit = any(map(get_loop, quickscan.of_type(tree, ast.Call)))

        def runs(call: ast.Call) -> bool:
            return asyncio_run(call) or (implicit and quickscan.called_name(call) == "run_until_complete")

        in_loop = any(quickscan.calls_in(loop, runs) for loop in quickscan.of_type(tree, ast.For, ast.While))
        functions = quickscan.of_type(tree, ast.FunctionDef)
        return in_loop or any(sum(map(runs, quickscan.own_calls(function))) > 1 for function in functions)

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self._taken: set[str] = set()  # every identifier of the module, and the names given out

    def visit_Module(self, node: cst.Module) -> None:
        self._taken = {name.value for name in m.findall(node, m.Name())}

    @m.visit(m.FunctionDef(asynchronous=None))
    def flag_function(self, function: cst.FunctionDef) -> None:
        scan = _Scan.of(self, function.body)
        repeated = any(runs_per_item(self, run, function) for run in (*scan.runs, *scan.unfixable_runs))
        if not repeated and len(scan.runs) + len(scan.unfixable_runs) < 2:
            return
        obstacle = scan.obstacle or (None if scan.generator else self._method_obstacle(function))
        reference = None if obstacle else self._run_reference(scan, function)
        if reference is None:
            self.report(function, f"{self.summary} (fix by hand: {obstacle or _ASYNCIO_IS_TAKEN})")
        elif scan.generator:
            self._one_loop_for_the_generator(function, scan, reference)
        else:
            self._split(function, scan, reference)

    @m.visit(m.For())
    @m.visit(m.While())
    def flag_module_loop(self, loop: cst.For | cst.While) -> None:
        at_module_level = enclosing_function(self, loop) is None
        if not at_module_level or any(isinstance(parent, (cst.For, cst.While)) for parent in ancestors(self, loop)):
            return  # only the outermost loop of the module moves
        scan = _Scan.of(self, loop)
        if not any(runs_per_item(self, run, loop) for run in (*scan.runs, *scan.unfixable_runs)):
            return
        reference = None if scan.obstacle else self._module_run_reference(scan, loop)
        if reference is None:
            self.report(loop, f"{self.summary} (fix by hand: {scan.obstacle or _ASYNCIO_IS_TAKEN})")
            return
        self._hoist(loop, scan, reference)

    # --- a function: async helper + synchronous wrapper ------------------------------------------

    def _method_obstacle(self, function: cst.FunctionDef) -> str | None:
        owner = _owning_class(self, function)
        if owner is None:
            return None
        if _has_decorator(function, "staticmethod"):
            if not isinstance(self.get_metadata(ParentNodeProvider, owner), cst.Module):
                return "a staticmethod of a nested class cannot name its class"
            return None
        if not [*function.params.posonly_params, *function.params.params]:
            return "a method without a `self` parameter"
        return None

    def _split(self, function: cst.FunctionDef, scan: _Scan, reference: _Reference) -> None:
        helper_name = self._fresh_name(f"_{function.name.value}_async")
        docstring, body = _docstring_and_rest(function.body)
        editor = scan.editor(partial(awaiting, self))
        prefix, comments = _split_leading_lines(function.leading_lines)
        owner = _owning_class(self, function)
        helper = cst.FunctionDef(
            name=cst.Name(helper_name),
            params=_without_defaults(function.params),
            body=cst.ensure_type(body.visit(editor), cst.BaseSuite),
            decorators=[cst.Decorator(cst.Name(kind)) for kind in _BINDINGS if _has_decorator(function, kind)],
            returns=function.returns,
            asynchronous=cst.Asynchronous(),
            leading_lines=self._lines_above_new_def(function, prefix),
        )
        run, imports = reference
        call = cst.Call(func=run, args=[cst.Arg(self._helper_call(function, owner, helper_name))])
        wrapper = function.with_changes(
            body=_returning(function.body, docstring, call),
            leading_lines=[*self._separation(function), *comments],
        )
        fix = cst.FlattenSentinel([helper, wrapper])
        self.report(function, fix=fix, imports=imports, stale_imports=scan.stale_imports(self))

    def _helper_call(self, function: cst.FunctionDef, owner: cst.ClassDef | None, helper_name: str) -> cst.Call:
        """`_f_async(a, b, *args, k=k, **kwargs)`, through `self`/`cls` or the class for a method."""
        params = function.params
        positional = [*params.posonly_params, *params.params]
        target: cst.BaseExpression = cst.Name(helper_name)
        if owner is not None and _has_decorator(function, "staticmethod"):
            target = cst.Attribute(cst.Name(owner.name.value), cst.Name(helper_name))
        elif owner is not None:
            receiver, *positional = positional
            target = cst.Attribute(cst.Name(receiver.name.value), cst.Name(helper_name))
        return cst.Call(func=target, args=list(_forwarded(params, positional)))

    def _run_reference(self, scan: _Scan, frame: cst.CSTNode) -> _Reference | None:
        """`asyncio.run` as the body spells it (`aio.run`, `run`), unless that name is local to the
        function (a local import or a parameter): then `asyncio.run`, imported at module level.
        A body that only runs on the implicit loop gets `aio.run` for `aio.get_event_loop()`.
        None when that needs the name `asyncio`, and it means something else."""
        run = next((run for run in scan.runs if run not in scan.implicit), None)
        if run is None:
            return asyncio_run_beside(self, scan.implicit[scan.runs[0]].factory, frame)
        root = run.func
        while isinstance(root, cst.Attribute):
            root = root.value
        scope = self.get_metadata(ScopeProvider, root)
        while isinstance(scope, ComprehensionScope):
            scope = scope.parent
        if not (isinstance(root, cst.Name) and scope.assignments[root.value]):
            return run.func, ()
        found = asyncio_attribute(self, frame, "run")
        return found if found is not None else (run.func, ())

    # --- a generator: one loop, run per item, closed when the generator ends ----------------------

    def _one_loop_for_the_generator(self, function: cst.FunctionDef, scan: _Scan, reference: _Reference) -> None:
        """`loop = asyncio.new_event_loop()`, then the body in `try:` with `loop.run_until_complete(x)`
        for each `asyncio.run(x)`, and `loop.close()` in `finally:` (run when the generator is
        exhausted, closed or collected)."""
        factory = self._asyncio_function(reference, function, "new_event_loop")
        docstring, body = _docstring_and_rest(function.body)
        if factory is None or not isinstance(body, cst.IndentedBlock):
            problem = _ASYNCIO_IS_TAKEN if factory is None else "a generator on one line"
            self.report(function, f"{self.summary} (fix by hand: {problem})")
            return
        used = {node.value for node in m.findall(function, m.Name())}
        name = next(name for name in _candidates(("loop", "event_loop")) if name not in used)
        run = cst.Attribute(cst.Name(name), cst.Name("run_until_complete"))
        first, *rest = cst.ensure_type(body.visit(scan.editor(lambda _: running_with(run))), cst.IndentedBlock).body
        creation = cst.SimpleStatementLine(
            [cst.Assign([cst.AssignTarget(cst.Name(name))], cst.Call(factory[0]))], leading_lines=first.leading_lines
        )
        close = cst.SimpleStatementLine([cst.Expr(cst.Call(cst.Attribute(cst.Name(name), cst.Name("close"))))])
        guarded = cst.Try(
            body=cst.IndentedBlock(body=[first.with_changes(leading_lines=()), *rest]),
            finalbody=cst.Finally(body=cst.IndentedBlock(body=[close])),
        )
        fixed = body.with_changes(body=[*docstring, creation, guarded])
        message = f"{self.summary} (a generator: one loop for all of it, closed when it ends)"
        self.report(function.body, message, fix=fixed, imports=factory[1], stale_imports=scan.stale_imports(self))

    def _asyncio_function(self, reference: _Reference, near: cst.CSTNode, name: str) -> _Reference | None:
        """`asyncio.<name>` spelled as the fix spells `asyncio.run` (`aio.<name>` for `aio.run`)."""
        run, imports = reference
        if isinstance(run, cst.Attribute):
            return run.with_changes(attr=cst.Name(name)), imports
        return asyncio_attribute(self, near, name)

    # --- a module-level loop: async def _main() + asyncio.run(_main()) -----------------------------

    def _module_run_reference(self, scan: _Scan, loop: cst.For | cst.While) -> _Reference | None:
        """`asyncio.run` as the loop's first run spells it (`aio.run` for `aio.get_event_loop()`)."""
        first = scan.runs[0]
        implicit = scan.implicit.get(first)
        return asyncio_run_beside(self, implicit.factory, loop) if implicit else (first.func, ())

    def _hoist(self, loop: cst.For | cst.While, scan: _Scan, reference: _Reference) -> None:
        main_name = self._fresh_name("_main", "_main_async")
        prefix, comments = _split_leading_lines(loop.leading_lines)
        moved = cst.ensure_type(loop.visit(scan.editor(partial(awaiting, self))), cst.BaseStatement)
        globals_ = [cst.NameItem(cst.Name(name)) for name in self._bound_names(loop)]
        body = [cst.SimpleStatementLine([cst.Global(globals_)])] if globals_ else []
        body.append(moved.with_changes(leading_lines=comments))
        main = cst.FunctionDef(
            name=cst.Name(main_name),
            params=cst.Parameters(),
            body=cst.IndentedBlock(body=body),
            asynchronous=cst.Asynchronous(),
            leading_lines=self._lines_above_new_def(loop, prefix),
        )
        run, imports = reference
        run_main = cst.SimpleStatementLine(
            body=[cst.Expr(cst.Call(func=run, args=[cst.Arg(cst.Call(cst.Name(main_name)))]))],
            leading_lines=self._separation(loop),
        )
        fix = cst.FlattenSentinel([main, run_main])
        self.report(loop, fix=fix, imports=imports, stale_imports=scan.stale_imports(self))

    def _bound_names(self, loop: cst.For | cst.While) -> list[str]:
        """The module names the loop binds (or deletes), in order: they must stay module globals."""
        scope = self.get_metadata(ScopeProvider, loop)
        bound = {
            assignment.name: self.get_metadata(PositionProvider, assignment.node).start
            for assignment in scope.assignments
            if isinstance(assignment.node, cst.CSTNode) and loop in ancestors(self, assignment.node)
        }
        for deleted in m.findall(loop, m.Del(target=m.Name())):
            name = cst.ensure_type(cst.ensure_type(deleted, cst.Del).target, cst.Name)
            bound.setdefault(name.value, self.get_metadata(PositionProvider, name).start)
        return sorted(bound, key=lambda name: (bound[name].line, bound[name].column))

    # --- shared ---------------------------------------------------------------------------------

    def _fresh_name(self, *bases: str) -> str:
        """The first of `bases` (then `<last>_2`, `<last>_3`, ...) that names nothing in this module."""
        name = next(name for name in _candidates(bases) if name not in self._taken)
        self._taken.add(name)
        return name

    def _lines_above_new_def(
        self, statement: cst.BaseStatement, blank: list[cst.EmptyLine]
    ) -> list[cst.EmptyLine]:
        """The blank lines that were above `statement`, at least PEP 8's unless it opens its block."""
        block = self.get_metadata(ParentNodeProvider, statement)
        if isinstance(block, (cst.IndentedBlock, cst.Module)) and block.body[0] is statement:
            return blank
        return max(blank, self._separation(statement), key=len)

    def _separation(self, statement: cst.BaseStatement) -> list[cst.EmptyLine]:
        """PEP 8's blank lines around a `def`: two at module level, one elsewhere."""
        at_top = isinstance(self.get_metadata(ParentNodeProvider, statement), cst.Module)
        return [cst.EmptyLine(indent=False)] * (2 if at_top else 1)

    VALID = (
        Valid(
            """
            import asyncio

            if __name__ == "__main__":
                asyncio.run(main())
            """
        ),
        Valid(
            """
            import asyncio

            def fetch_sync(url):
                return asyncio.run(fetch(url))
            """
        ),
        Valid(
            """
            import asyncio

            async def crawl(urls):
                for url in urls:
                    asyncio.run(fetch(url))
            """
        ),
        Valid(
            """
            def run(job):
                return job.execute()

            def process(jobs):
                for job in jobs:
                    run(job)
                run(final_job)
            """
        ),
        Valid(
            """
            import asyncio

            def fetch_all(urls):
                return [asyncio.run(fetch(url)) for url in urls]
            """
        ),
        Valid(
            """
            import asyncio

            def schedule(items):
                def one(item):
                    return asyncio.run(handle(item))

                for item in items:
                    pool.submit(one, item)
            """
        ),
    )
    INVALID = (
        Invalid(
            '''
            import asyncio


            @celery_app.task
            def check_all_agencies_for_recalls(agencies):
                """Celery task: alert the users affected by new recalls."""
                sent = 0
                for agency in agencies:
                    result = asyncio.run(RecallAlertService.check_agency(agency))
                    for recall in result.recalls:
                        users = asyncio.run(RecallAlertService.find_affected_users(recall))
                        sent += len(users)
                return sent
            ''',
            '''
            import asyncio


            async def _check_all_agencies_for_recalls_async(agencies):
                sent = 0
                for agency in agencies:
                    result = await RecallAlertService.check_agency(agency)
                    for recall in result.recalls:
                        users = await RecallAlertService.find_affected_users(recall)
                        sent += len(users)
                return sent


            @celery_app.task
            def check_all_agencies_for_recalls(agencies):
                """Celery task: alert the users affected by new recalls."""
                return asyncio.run(_check_all_agencies_for_recalls_async(agencies))
            ''',
            unsafe=True,
        ),
        Invalid(
            """
            from asyncio import run


            class Syncer:
                def sync(self, accounts, /, batch: int = 10, *extra, dry_run=False, **options) -> int:
                    for account in accounts:
                        run(self.push(account, batch, dry_run))
                    return run(self.flush()).count
            """,
            """
            from asyncio import run


            class Syncer:
                async def _sync_async(self, accounts, /, batch: int, *extra, dry_run, **options) -> int:
                    for account in accounts:
                        await self.push(account, batch, dry_run)
                    return (await self.flush()).count

                def sync(self, accounts, /, batch: int = 10, *extra, dry_run=False, **options) -> int:
                    return run(self._sync_async(accounts, batch, *extra, dry_run=dry_run, **options))
            """,
            unsafe=True,
        ),
        Invalid(
            """
            import asyncio as aio

            total = 0
            # one request per URL
            for url in URLS:
                total += aio.run(fetch(url))
            print(total)
            """,
            """
            import asyncio as aio

            total = 0


            async def _main():
                global url, total
                # one request per URL
                for url in URLS:
                    total += await fetch(url)


            aio.run(_main())
            print(total)
            """,
            unsafe=True,
        ),
        Invalid(
            """
            import asyncio

            def migrate():
                asyncio.run(create_tables())
                asyncio.run(copy_rows())
            """,
            """
            import asyncio


            async def _migrate_async():
                await create_tables()
                await copy_rows()


            def migrate():
                return asyncio.run(_migrate_async())
            """,
            unsafe=True,
        ),
        Invalid(
            """
            import asyncio

            def stream(ids):
                for item_id in ids:
                    yield asyncio.run(load(item_id))
            """,
            """
            import asyncio

            def stream(ids):
                loop = asyncio.new_event_loop()
                try:
                    for item_id in ids:
                        yield loop.run_until_complete(load(item_id))
                finally:
                    loop.close()
            """,
            unsafe=True,
        ),
        Invalid(
            """
            import asyncio

            def warm_caches(keys):
                for key in keys:
                    asyncio.run(warm(key))
                loop = asyncio.new_event_loop()
                loop.run_until_complete(report())
            """
        ),
    )


class _Scan(cst.CSTVisitor):
    """The `asyncio.run` calls a body makes itself, and what stops moving it into a coroutine."""

    def __init__(self, rule: Rule) -> None:
        super().__init__()
        self._rule = rule
        self._nested = 0  # depth of nested def / lambda / class
        self._generators = 0  # depth of generator expressions
        self.runs: list[cst.Call] = []
        self.implicit: dict[cst.Call, ImplicitRun] = {}  # the runs on the thread's implicit loop
        self.unfixable_runs: list[cst.Call] = []
        self.obstacle: str | None = None
        self.generator = False  # the body yields: it stays a generator, around one loop

    @classmethod
    def of(cls, rule: Rule, root: cst.CSTNode) -> _Scan:
        scan = cls(rule)
        root.visit(scan)
        if scan.implicit and len(scan.implicit) < len(scan.runs) + len(scan.unfixable_runs):
            scan._block(_BY_HAND)  # `asyncio.run` leaves no implicit loop behind on the main thread
        return scan

    def on_visit(self, node: cst.CSTNode) -> bool:
        self._nested += isinstance(node, FunctionLike)
        self._generators += isinstance(node, cst.GeneratorExp)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        self._nested -= isinstance(original_node, FunctionLike)
        self._generators -= isinstance(original_node, cst.GeneratorExp)

    def visit_Call(self, node: cst.Call) -> None:
        if calls(self._rule, node, ASYNCIO_RUN):
            if self._nested:
                self._block("a nested function, lambda or class calls `asyncio.run()`, which fails in a running loop")
            elif self._generators:
                self._block("`await` in a generator expression would make it asynchronous")
                self.unfixable_runs.append(node)
            elif not m.matches(node, _ONE_COROUTINE):
                self._block("`asyncio.run()` is given options")
                self.unfixable_runs.append(node)
            else:
                self.runs.append(node)
        elif not (self._nested or self._generators) and (implicit := implicit_run(self._rule, node)) is not None:
            self.runs.append(node)
            self.implicit[node] = implicit
        elif m.matches(node, _DRIVES_A_LOOP):
            self._block(_BY_HAND)

    def visit_Yield(self, node: cst.Yield) -> None:
        self.generator = self.generator or not self._nested

    def _block(self, reason: str) -> None:
        self.obstacle = self.obstacle or reason

    def editor(self, rewrite: Callable[[cst.Call], Rewrite]) -> NodeEditor:
        """Every run is rewritten by `rewrite(run)`; the implicit loops' `loop = get_event_loop()`
        and `close()` lines go."""
        leftovers = [line for run in self.implicit.values() for line in run.leftovers()]
        return NodeEditor({run: rewrite(run) for run in self.runs}, leftovers)

    def stale_imports(self, rule: Rule) -> tuple[ImportSpec, ...]:
        """`from asyncio import get_event_loop`, which the implicit runs may leave unused."""
        factories = [run.factory for run in self.implicit.values() if isinstance(run.factory, cst.Name)]
        return tuple(dict.fromkeys(spec for factory in factories if (spec := import_binding(rule, factory))))


def _owning_class(rule: Rule, function: cst.FunctionDef) -> cst.ClassDef | None:
    block = rule.get_metadata(ParentNodeProvider, function)
    owner = rule.get_metadata(ParentNodeProvider, block, None)
    return owner if isinstance(owner, cst.ClassDef) else None


def _has_decorator(function: cst.FunctionDef, name: str) -> bool:
    return any(m.matches(decorator.decorator, m.Name(name)) for decorator in function.decorators)


def _candidates(bases: tuple[str, ...]) -> Iterator[str]:
    yield from bases
    number = 2
    while True:
        yield f"{bases[-1]}_{number}"
        number += 1


def _split_leading_lines(lines: Sequence[cst.EmptyLine]) -> tuple[list[cst.EmptyLine], list[cst.EmptyLine]]:
    """(the blank lines above a statement, the comment lines after them)."""
    lines = list(lines)
    blank = next((i for i, line in enumerate(lines) if line.comment is not None), len(lines))
    return lines[:blank], lines[blank:]


def _docstring_and_rest(body: cst.BaseSuite) -> tuple[list[cst.BaseStatement], cst.BaseSuite]:
    """The docstring statement (if any), and the body without it."""
    if not isinstance(body, cst.IndentedBlock) or len(body.body) < 2 or not m.matches(body.body[0], _DOCSTRING):
        return [], body
    docstring, first, *rest = body.body
    prefix, comments = _split_leading_lines(first.leading_lines)
    return [docstring], body.with_changes(body=[first.with_changes(leading_lines=comments), *rest])


def _returning(body: cst.BaseSuite, docstring: list[cst.BaseStatement], call: cst.Call) -> cst.BaseSuite:
    """The wrapper's body: its docstring, then `return <call>`."""
    if isinstance(body, cst.SimpleStatementSuite):
        return body.with_changes(body=[cst.Return(call)])
    line = cst.SimpleStatementLine(body=[cst.Return(call)])
    return cst.ensure_type(body, cst.IndentedBlock).with_changes(body=[*docstring, line], footer=())


def _without_defaults(params: cst.Parameters) -> cst.Parameters:
    """The helper's parameters: the same names, kinds and annotations; the wrapper passes every value."""

    def required(param: cst.Param) -> cst.Param:
        return param.with_changes(default=None, equal=cst.MaybeSentinel.DEFAULT)

    return params.with_changes(
        posonly_params=[required(p) for p in params.posonly_params],
        params=[required(p) for p in params.params],
        kwonly_params=[required(p) for p in params.kwonly_params],
    )


def _forwarded(params: cst.Parameters, positional: list[cst.Param]) -> Iterator[cst.Arg]:
    """Every parameter passed on as what it is: by position, `*args`, `name=name`, `**kwargs`."""
    for param in positional:
        yield cst.Arg(cst.Name(param.name.value))
    if isinstance(params.star_arg, cst.Param):
        yield cst.Arg(cst.Name(params.star_arg.name.value), star="*")
    for param in params.kwonly_params:
        name = param.name.value
        yield cst.Arg(cst.Name(name), keyword=cst.Name(name), equal=cst.AssignEqual(_NO_SPACE, _NO_SPACE))
    if params.star_kwarg is not None:
        yield cst.Arg(cst.Name(params.star_kwarg.name.value), star="**")
