"""UL101 asyncio-run-in-async

## What it does
Finds `asyncio.run(coro)` called inside an `async def` and replaces it with `await coro`.

## Why is this bad?
`asyncio.run()` starts a new event loop, and a thread runs one loop at a time. Inside a coroutine a
loop is already running, so the call always raises
`RuntimeError: asyncio.run() cannot be called from a running event loop`, and the coroutine handed
to it is never awaited (seeds 000 and 003 #3). The caller meant to wait for the coroutine on the
loop it is already running on: that is `await`.

## Example
```python
async def crawl(urls):
    pages = []
    for url in urls:
        pages.append(asyncio.run(fetch(url)))
    return pages
```

## Use instead
```python
async def crawl(urls):
    pages = []
    for url in urls:
        pages.append(await fetch(url))
    return pages
```

## Fix safety
Safe: the call could only raise, and `await` runs the coroutine where it was meant to run. The
surroundings are kept; parentheses are added only where the grammar needs them
(`(await fetch(url)).text`, `await (primary or fallback())`, or to keep a comment inside the call).
The import of `asyncio` (or of `run`) goes when nothing else uses it any more. Where the code
already wrote `await asyncio.run(coro)`, that `await` is the one meant: it becomes `await coro`
(not `await (await coro)`), and `asyncio.run(asyncio.run(f()))` settles in one pass.
A module-level helper that only runs its argument (`def run_sync(coro): return asyncio.run(coro)`,
undecorated, bound once) raises the same way when an async function calls it: `run_sync(x)` there
becomes `await x` too (the helper stays for its synchronous callers).
Only the function's own body counts: a nested `def`, `lambda` or class body, and the `async def`'s
decorators, defaults and annotations, do not run on its loop. Reported without a fix: a call with
keyword arguments (`debug=`, `loop_factory=` have no `await` equivalent), a call without exactly
one positional argument, and a call inside a generator expression (an `await` there would turn it
into an async generator).
"""

from __future__ import annotations

import ast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import analysis, quickscan
from unleak.rule import FixSafety, Invalid, Rule, Valid
from unleak.settings import Settings

_DOCSTRING = m.SimpleStatementLine(body=[m.Expr(m.SimpleString() | m.ConcatenatedString())])
# Expressions `await` can take as they are; anything else (`a or b`, `x if c else y`, a bare
# generator expression, a walrus, another `await`) needs parentheses to stay one operand.
_PRIMARY = (
    cst.Name, cst.Attribute, cst.Subscript, cst.Call, cst.BaseNumber, cst.BaseString,
    cst.List, cst.Set, cst.Dict, cst.ListComp, cst.SetComp, cst.DictComp, cst.Ellipsis,
)

class AsyncioRunInAsync(Rule):
    code = "UL101"
    name = "asyncio-run-in-async"
    safety = FixSafety.SAFE
    summary = "`asyncio.run()` inside an async function raises RuntimeError (a loop is already running): `await` it"
    trigger = (rb"asyncio", rb"\brun\b", rb"\basync\s+def\b")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """An `async def` that calls `run` (or what it is imported as), or a module-level function that does."""
        callees = quickscan.Callees(tree, "asyncio", {"run"})
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        helpers = {function.name for function in functions if quickscan.calls_in(function, callees)}

        def runs(call: ast.Call) -> bool:
            return callees(call) or (isinstance(call.func, ast.Name) and call.func.id in helpers)

        return any(quickscan.calls_in(function, runs) for function in quickscan.of_type(tree, ast.AsyncFunctionDef))

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self._helpers: dict[str, cst.FunctionDef] = {}  # module-level `def f(coro): return asyncio.run(coro)`

    def visit_Module(self, node: cst.Module) -> None:
        self._helpers = {
            statement.name.value: statement
            for statement in node.body
            if isinstance(statement, cst.FunctionDef) and self._only_runs_its_argument(statement)
        }

    @m.visit(m.Call())
    def flag_asyncio_run(self, node: cst.Call) -> None:
        helper = self._helper_called(node)
        if not (helper or analysis.calls(self, node, "asyncio.run")) or not analysis.in_async_function(self, node):
            return
        summary = self.summary
        if helper is not None:
            summary = f"`{helper.name.value}()` runs `asyncio.run()`, which raises inside an async function: `await` it"
        reason = self._why_not_fixable(node)
        if reason:
            self.report(node, f"{summary} ({reason}: fix by hand)")
        else:
            stale = analysis.import_binding(self, node.func) if helper is None else None
            self.report(node, summary, fix=self._replacement(node), stale_imports=(stale,) if stale else ())

    def _only_runs_its_argument(self, function: cst.FunctionDef) -> bool:
        """`def f(coro): return asyncio.run(coro)` (a docstring allowed), undecorated and synchronous."""
        params = function.params
        if function.asynchronous or function.decorators or len(params.params) != 1 or params.posonly_params:
            return False
        if isinstance(params.star_arg, cst.CSTNode) or params.kwonly_params or params.star_kwarg:
            return False
        if params.params[0].default is not None:
            return False
        body = function.body
        statements = list(body.body) if isinstance(body, cst.IndentedBlock) else []
        if statements and m.matches(statements[0], _DOCSTRING):
            statements = statements[1:]
        parameter = params.params[0].name.value
        returned = m.Return(m.Call(args=[m.Arg(m.Name(parameter), keyword=None, star="")]))
        if len(statements) != 1 or not m.matches(statements[0], m.SimpleStatementLine([returned])):
            return False
        run = cst.ensure_type(cst.ensure_type(statements[0], cst.SimpleStatementLine).body[0], cst.Return).value
        return analysis.calls(self, cst.ensure_type(run, cst.Call), "asyncio.run")

    def _helper_called(self, call: cst.Call) -> cst.FunctionDef | None:
        """The module's helper that `call` calls, when that name means nothing else where it is called."""
        if not isinstance(call.func, cst.Name) or call.func.value not in self._helpers:
            return None
        helper = self._helpers[call.func.value]
        assignments = list(self.get_metadata(ScopeProvider, call)[call.func.value])
        return helper if len(assignments) == 1 and assignments[0].node is helper else None

    def _replacement(self, call: cst.Call) -> cst.BaseExpression:
        """`await coro` for `asyncio.run(coro)`; under an `await` already (`await asyncio.run(coro)`),
        that `await` is the one meant, and the call becomes `coro`."""
        operand = self._coroutine(call)
        parent = self.get_metadata(ParentNodeProvider, call)
        if isinstance(parent, cst.Await) and parent.expression is call:
            return operand.with_changes(lpar=[*call.lpar, *operand.lpar], rpar=[*operand.rpar, *call.rpar])
        lpar, rpar = call.lpar, call.rpar
        if not lpar and self._is_operand_of_primary(call):
            lpar, rpar = [cst.LeftParen()], [cst.RightParen()]
        return cst.Await(expression=operand, lpar=lpar, rpar=rpar)

    def _coroutine(self, call: cst.Call) -> cst.BaseExpression:
        """What `await` takes for `asyncio.run(coro)`: `coro`, parenthesized where needed. An
        `asyncio.run(...)` that is the whole argument becomes `(await ...)` in the same fix, so that
        no `await asyncio.run(...)` is left for the next pass to take for one the code wrote."""
        argument = call.args[0]
        inner = argument.value
        if isinstance(inner, cst.Call) and self._is_fixable_run(inner):
            argument = argument.with_changes(value=cst.Await(self._coroutine(inner), lpar=inner.lpar, rpar=inner.rpar))
        return _operand(call, argument)

    def _is_fixable_run(self, call: cst.Call) -> bool:
        return analysis.calls(self, call, "asyncio.run") and self._why_not_fixable(call) is None

    def _why_not_fixable(self, node: cst.Call) -> str | None:
        if any(argument.keyword is not None for argument in node.args):
            return "its keyword arguments have no `await` equivalent"
        if len(node.args) != 1 or node.args[0].star:
            return "it has no single coroutine argument to await"
        if self._in_generator_expression(node):
            return "an `await` would turn the generator expression into an async generator"
        return None

    def _in_generator_expression(self, node: cst.Call) -> bool:
        for parent in analysis.ancestors(self, node):
            if isinstance(parent, analysis.FunctionLike):
                return False
            if isinstance(parent, cst.GeneratorExp):
                return True
        return False

    def _is_operand_of_primary(self, node: cst.Call) -> bool:
        """`run(x).attr`, `run(x)[0]` and `run(x)()` need `(await x)`."""
        parent = self.get_metadata(ParentNodeProvider, node)
        if isinstance(parent, (cst.Attribute, cst.Subscript)):
            return parent.value is node
        return isinstance(parent, cst.Call) and parent.func is node

    VALID = (
        Valid(
            """
            import asyncio

            async def serve():
                await asyncio.sleep(1)

            def main():
                asyncio.run(serve())
            """
        ),
        Valid(
            """
            import asyncio

            async def crawl(urls):
                def load(url):
                    return asyncio.run(fetch(url))
                return await asyncio.to_thread(load, urls[0])
            """
        ),
        Valid(
            """
            import asyncio

            async def crawl(url):
                with ThreadPoolExecutor(max_workers=1) as pool:
                    return pool.submit(asyncio.run, fetch(url)).result()
            """
        ),
        Valid(
            """
            import asyncio
            from tasks import run

            async def deploy(job):
                return run(job)
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            import asyncio

            async def crawl(urls):
                pages = []
                for url in urls:
                    pages.append(asyncio.run(fetch(url)))
                return pages
            """,
            """
            async def crawl(urls):
                pages = []
                for url in urls:
                    pages.append(await fetch(url))
                return pages
            """,
        ),
        Invalid(
            """
            import asyncio as aio

            async def check_agency(agency):
                result = aio.run(
                    RecallAlertService.check_agency_for_new_recalls(agency)
                )
                return aio.run(fetch(result)).status
            """,
            """
            async def check_agency(agency):
                result = await RecallAlertService.check_agency_for_new_recalls(agency)
                return (await fetch(result)).status
            """,
        ),
        Invalid(
            """
            from asyncio import run as go

            async def load(primary, fallback):
                return go(primary() or fallback())
            """,
            """
            async def load(primary, fallback):
                return await (primary() or fallback())
            """,
        ),
        Invalid(
            """
            import asyncio

            async def main():
                asyncio.run(serve(), debug=True)
            """
        ),
    )


def _operand(call: cst.Call, argument: cst.Arg) -> cst.BaseExpression:
    """The coroutine expression, in parentheses (keeping the call's own layout) when it needs them
    to stay one operand of `await`, or when dropping the call's parentheses would drop a comment."""
    operand = argument.value
    holds_comment = len(m.findall(call, m.Comment())) > len(m.findall(operand, m.Comment()))
    if not holds_comment and (operand.lpar or isinstance(operand, _PRIMARY)):
        return operand
    comma = argument.comma
    closing = comma.whitespace_after if isinstance(comma, cst.Comma) else argument.whitespace_after_arg
    return operand.with_changes(
        lpar=[cst.LeftParen(whitespace_after=call.whitespace_before_args), *operand.lpar],
        rpar=[*operand.rpar, cst.RightParen(whitespace_before=closing)],
    )
