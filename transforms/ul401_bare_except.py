"""UL401 bare-except

## What it does
Finds `except:` clauses without an exception type and narrows them to `except Exception:`.

## Why is this bad?
A bare `except:` also catches `KeyboardInterrupt`, `SystemExit`, `GeneratorExit` and
`asyncio.CancelledError`. A worker that swallows `CancelledError` cannot be shut down: its
task keeps running after `task.cancel()`, and the service hangs on deploy (seed 001 #3).

## Example
```python
try:
    content = json.loads(raw)
except:
    content = {}
```

## Use instead
```python
try:
    content = json.loads(raw)
except Exception:
    content = {}
```

## Fix safety
Safe. The handler stops catching only the exceptions that mean "stop now". A handler that ends
in a bare `raise` (clean up, then re-raise) is legitimate and left alone. A handler that re-raises
on some paths only, or a module that redefines `Exception`, is reported without a fix.
"""

from __future__ import annotations

import ast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import BuiltinAssignment, ScopeProvider

from unleak.knowledge import quickscan
from unleak.rule import FixSafety, Invalid, Rule, SliceScope, Valid

_BARE_RAISE = m.Raise(exc=None)
_ENDS_IN_BARE_RAISE = m.ExceptHandler(
    body=m.IndentedBlock(body=[m.ZeroOrMore(), m.SimpleStatementLine(body=[m.ZeroOrMore(), _BARE_RAISE])])
    | m.SimpleStatementSuite(body=[m.ZeroOrMore(), _BARE_RAISE])
)


class BareExcept(Rule):
    code = "UL401"
    name = "bare-except"
    safety = FixSafety.SAFE
    summary = "Bare `except:` also catches KeyboardInterrupt, SystemExit and CancelledError; catch `Exception`"
    trigger = (rb"except\s*:",)
    METADATA_DEPENDENCIES = (ScopeProvider,)
    slice_scope = SliceScope.FUNCTION

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        return any(handler.type is None for handler in quickscan.of_type(tree, ast.ExceptHandler))

    @m.visit(m.ExceptHandler(type=None))
    def flag_bare_except(self, node: cst.ExceptHandler) -> None:
        if m.matches(node, _ENDS_IN_BARE_RAISE):
            return
        if _reraises_somewhere(node.body):
            self.report(node, f"{self.summary} (it re-raises on some paths only: name the exceptions by hand)")
        elif self._exception_is_redefined(node):
            self.report(node, f"{self.summary} (`Exception` is redefined in this module: fix by hand)")
        else:
            narrowed = node.with_changes(type=cst.Name("Exception"), whitespace_after_except=cst.SimpleWhitespace(" "))
            self.report(node, fix=narrowed)

    def _exception_is_redefined(self, node: cst.ExceptHandler) -> bool:
        scope = self.get_metadata(ScopeProvider, node, None)
        if scope is None:
            return False
        return any(not isinstance(assignment, BuiltinAssignment) for assignment in scope["Exception"])

    VALID = (
        Valid(
            """
            try:
                risky()
            except Exception:
                pass
            """
        ),
        Valid(
            """
            try:
                risky()
            except:
                rollback()
                raise
            """
        ),
        Valid(
            """
            try:
                risky()
            except (ValueError, KeyError):
                pass
            """
        ),
        Valid(
            """
            text = "try: x() except: pass"
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            try:
                content = json.loads(raw)
            except:
                content = {}
            """,
            """
            try:
                content = json.loads(raw)
            except Exception:
                content = {}
            """,
        ),
        Invalid(
            """
            async def worker(queue):
                while True:
                    try:
                        await handle(await queue.get())
                    except:  # keep the worker alive
                        continue
            """,
            """
            async def worker(queue):
                while True:
                    try:
                        await handle(await queue.get())
                    except Exception:  # keep the worker alive
                        continue
            """,
        ),
        Invalid(
            """
            try: import ujson as json
            except : import json
            """,
            """
            try: import ujson as json
            except Exception: import json
            """,
        ),
        Invalid(
            """
            try:
                send()
            except:
                if fatal():
                    raise
                log()
            """
        ),
        Invalid(
            """
            from errors import AppError as Exception

            try:
                send()
            except:
                pass
            """
        ),
    )


def _reraises_somewhere(body: cst.BaseSuite) -> bool:
    """A bare `raise` anywhere in the handler, outside nested functions and classes."""
    finder = _BareRaiseFinder()
    body.visit(finder)
    return finder.found


class _BareRaiseFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def visit_Raise(self, node: cst.Raise) -> None:
        self.found = self.found or node.exc is None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False
