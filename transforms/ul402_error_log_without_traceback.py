"""UL402 error-log-without-traceback

## What it does
Finds logging calls at error level (`logger.error(...)`, `logger.critical(...)`,
`logging.error(...)`) made directly inside an `except` handler without `exc_info`, and makes
them log the traceback: `logger.error(...)` becomes `logger.exception(...)`; `.critical(...)` and
a bare `error(...)` imported from `logging` get `exc_info=True`.

## Why is this bad?
The log line keeps `str(e)` and throws the traceback away: "Failed to seed user: 'NoneType'
object has no attribute 'id'" says what broke, never where. The lessons of seed 003 ("Always
use `exc_info=True` for proper stack traces") came from debugging production errors logged
this way. `logger.exception()` is `logger.error(..., exc_info=True)`; ruff's TRY400 asks for
it, and G201 prefers it to `exc_info=True` at error level.

## Example
```python
try:
    seed_user(db)
except Exception as e:
    logger.error(f"Failed to seed user: {e}")
```

## Use instead
```python
try:
    seed_user(db)
except Exception as e:
    logger.exception(f"Failed to seed user: {e}")
```

## Fix safety
Safe. The same message is logged at the same level, with the traceback added. Only the method
name changes, or one keyword argument is appended: `.critical()` keeps its level
(`exception()` logs at ERROR), and `error()` imported from `logging` keeps its name (no new
import). A call that passes `exc_info=` or `**kwargs` already decides, and is left alone
(`exc_info=False` too), as is a handler that logs the traceback elsewhere (`.exception()` or
`exc_info=` in another call: pip shows the message at error level and the traceback at debug
level). So are calls in nested
functions, lambdas and classes (they run after the handler), `else:` and `finally:` blocks, and
`.error()` on anything that is not a logger (`messages.error(request, ...)`, `parser.error(...)`).
A loguru `logger.critical()` is reported without a fix: loguru formats the message with its
keyword arguments, so `exc_info=True` would not add a traceback and could break a message with
braces in it. `exc_info=None` is the default and logs no traceback, so it decides nothing: the
call is fixed as if it were not there (`.error(..., exc_info=None)` becomes `.exception(...)`
without it, since `exception()` would pass the `None` on; elsewhere it becomes `exc_info=True`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment, ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import quickscan
from unleak.rule import FixSafety, Invalid, Rule, SliceScope, Valid

_LOGGING_FUNCTIONS = frozenset({"logging.error", "logging.critical"})
_LOGGER_MODULES = frozenset({"logging", "loguru.logger"})  # used as loggers themselves
_LOGGER_FACTORIES = frozenset(
    {"logging.getLogger", "structlog.get_logger", "structlog.getLogger", "structlog.stdlib.get_logger"}
)
_LOGURU_LOGGER = "loguru.logger"
_LOGGER_NAMES = frozenset({"log", "_log", "logger", "_logger", "logging"})
_LOGGER_SUFFIXES = ("logger", "_log")

# Code that runs later, after the handler has finished and the exception is gone.
_DEFERRED = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
_HANDLERS = (cst.ExceptHandler, cst.ExceptStarHandler)
_NOT_THIS_EXCEPTION = (*_DEFERRED, *_HANDLERS)


def _resolving_to(wanted: Collection[str]) -> m.MatchMetadataIfTrue:
    """Matches a node that resolves to one of the `wanted` qualified names."""
    return m.MatchMetadataIfTrue(QualifiedNameProvider, lambda names: any(name.name in wanted for name in names))


_LOGGER_FACTORY_CALL = m.Call(func=_resolving_to(_LOGGER_FACTORIES))
_LOGGER_MODULE = m.Name(metadata=_resolving_to(_LOGGER_MODULES))
_LOGURU = m.Name(metadata=_resolving_to({_LOGURU_LOGGER}))
_LOGGING_EXCEPTION = m.Name(metadata=_resolving_to({"logging.exception"}))
_ERROR_LEVEL_CALL = m.Call(
    func=m.Attribute(attr=m.Name("error") | m.Name("critical")) | m.Name(metadata=_resolving_to(_LOGGING_FUNCTIONS))
)
# `exc_info=None` is the default (no traceback): it decides nothing.
_EXC_INFO_NONE = m.Arg(keyword=m.Name("exc_info"), value=m.Name("None"))
_DECIDES_EXC_INFO = m.Call(
    args=[
        m.ZeroOrMore(),
        m.Arg(keyword=m.Name("exc_info"), value=~m.Name("None")) | m.Arg(star="**"),
        m.ZeroOrMore(),
    ]
)
_PASSES_EXC_INFO = m.Call(
    args=[m.ZeroOrMore(), m.Arg(keyword=m.Name("exc_info"), value=~(m.Name("False") | m.Name("None"))), m.ZeroOrMore()]
)
_EXC_INFO_TRUE = cst.Arg(
    keyword=cst.Name("exc_info"),
    value=cst.Name("True"),
    equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
)


class ErrorLogWithoutTraceback(Rule):
    code = "UL402"
    name = "error-log-without-traceback"
    safety = FixSafety.SAFE
    summary = "Error-level log call in an exception handler drops the traceback; use `logger.exception()`"
    # A handler, and a call `_is_logger` can accept: a receiver named like a logger, the logging
    # module under an alias, `error` imported from logging, loguru, or a getLogger() binding.
    trigger = (
        rb"except",
        rb"(?i:log)\w*\s*\.\s*(?:error|critical)\s*\(|getLogger|get_logger|import\s+logging\s+as|from\s+logging\s+import|loguru",
    )
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)
    slice_scope = SliceScope.FUNCTION

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """A handler that calls `error`/`critical` on something `_is_logger` could accept."""
        is_logger_factory = quickscan.calls_named("getLogger", "get_logger")
        bound_to_loggers = _names_bound_to(tree, is_logger_factory)
        logging_functions = quickscan.Callees(tree, "logging", {"error", "critical"})
        loguru_names = quickscan.Callees(tree, "loguru", {"logger"}).function_names

        def may_log_error(call: ast.Call) -> bool:
            if any(_decides_exc_info(keyword) for keyword in call.keywords):
                return False
            if logging_functions(call):
                return True
            func = call.func
            if not (isinstance(func, ast.Attribute) and func.attr in ("error", "critical")):
                return False
            receiver = ast.unparse(func.value)
            named_like_a_logger = "log" in receiver.lower() or receiver in loguru_names
            receiver_is_a_factory_call = isinstance(func.value, ast.Call) and is_logger_factory(func.value)
            return named_like_a_logger or receiver in bound_to_loggers or receiver_is_a_factory_call

        return any(quickscan.calls_in(handler, may_log_error) for handler in quickscan.of_type(tree, ast.ExceptHandler))

    @m.visit(_ERROR_LEVEL_CALL)
    def flag_log_without_traceback(self, node: cst.Call) -> None:
        if m.matches(node, _DECIDES_EXC_INFO):
            return
        func = node.func
        if isinstance(func, cst.Attribute) and not self._is_logger(func.value):
            return
        handler = self._enclosing_handler(node)
        if handler is None or any(self._logs_traceback(call) for call in _own_calls(handler)):
            return
        if isinstance(func, cst.Attribute):
            self._report_logging_method(node, func)
        else:  # `error` imported from logging: keep the name, add no import
            self._report_adding_exc_info(node)

    def _report_logging_method(self, node: cst.Call, func: cst.Attribute) -> None:
        if func.attr.value == "error":
            exception = func.with_changes(attr=cst.Name("exception"))
            message = f"{_drops_traceback(func)}; use `{_code(exception)}()`"
            self.report(node, message, fix=_without_exc_info_none(node).with_changes(func=exception))
        elif self.matches(func.value, _LOGURU):
            self.report(node, f"{_drops_traceback(func)}; use `{_code(func.value)}.opt(exception=True).critical()`")
        else:
            self._report_adding_exc_info(node)

    def _report_adding_exc_info(self, node: cst.Call) -> None:
        self.report(node, f"{_drops_traceback(node.func)}; pass `exc_info=True`", fix=_with_exc_info(node))

    def _enclosing_handler(self, node: cst.CSTNode) -> cst.ExceptHandler | cst.ExceptStarHandler | None:
        """The `except` handler `node` runs in, if no def/lambda/class comes in between."""
        parent = self.get_metadata(ParentNodeProvider, node, None)
        while parent is not None and not isinstance(parent, _DEFERRED):
            if isinstance(parent, _HANDLERS):
                return parent
            parent = self.get_metadata(ParentNodeProvider, parent, None)
        return None

    def _logs_traceback(self, call: cst.Call) -> bool:
        """`log.exception(...)` or a logging call with `exc_info=` (pip logs the traceback at debug level)."""
        if m.matches(call, _PASSES_EXC_INFO):
            return True
        if isinstance(call.func, cst.Attribute):
            return call.func.attr.value == "exception" and self._is_logger(call.func.value)
        return self.matches(call.func, _LOGGING_EXCEPTION)

    def _is_logger(self, receiver: cst.BaseExpression) -> bool:
        """A logger by its name, the `logging` module (any alias) or a `getLogger()` call or binding."""
        if isinstance(receiver, cst.Attribute):
            return _has_logger_name(receiver.attr.value)
        if isinstance(receiver, cst.Name):
            return (
                _has_logger_name(receiver.value)
                or self.matches(receiver, _LOGGER_MODULE)
                or self._bound_to_logger_factory(receiver)
            )
        return self.matches(receiver, _LOGGER_FACTORY_CALL)

    def _bound_to_logger_factory(self, name: cst.Name) -> bool:
        """`audit = logging.getLogger("audit")` (or structlog's) in a scope `name` sees."""
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return False
        assignments = (assignment for assignment in scope[name.value] if isinstance(assignment, Assignment))
        values = (self._value_bound_to(assignment.node) for assignment in assignments)
        return any(value is not None and self.matches(value, _LOGGER_FACTORY_CALL) for value in values)

    def _value_bound_to(self, target: cst.CSTNode) -> cst.BaseExpression | None:
        """`value` in `target = value` or `target: T = value`; None for other bindings (imports, loops...)."""
        parent = self.get_metadata(ParentNodeProvider, target, None)
        if isinstance(parent, cst.AssignTarget):
            return self.get_metadata(ParentNodeProvider, parent).value
        if isinstance(parent, cst.AnnAssign):
            return parent.value
        return None


    VALID = (
        Valid(
            """
            try:
                seed_user(db)
            except Exception as e:
                logger.error(f"Failed to seed user: {e}", exc_info=True)
            """
        ),
        Valid(
            """
            if not user:
                logger.error("No user to seed")
            """
        ),
        Valid(
            """
            try:
                connect()
            except ConnectionError:
                def report_later():
                    logger.error("Connection lost earlier")

                schedule(report_later)
            """
        ),
        Valid(
            """
            try:
                form.save()
            except ValidationError as e:
                messages.error(request, f"Could not save: {e}")
            """
        ),
        Valid(
            """
            try:
                port = int(args.port)
            except ValueError:
                parser.error("--port must be a number")
            """
        ),
        Valid(
            """
            try:
                send()
            except OSError:
                retry()
            finally:
                logger.error("send() finished")
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            try:
                loop.close()
            except Exception as e:
                memory_logger.error(f"Error closing event loop: {e}")
            """,
            """
            try:
                loop.close()
            except Exception as e:
                memory_logger.exception(f"Error closing event loop: {e}")
            """,
        ),
        Invalid(
            """
            import logging as lg

            try:
                migrate()
            except Exception:
                lg.error("Migration failed")  # page the on-call
            """,
            """
            import logging as lg

            try:
                migrate()
            except Exception:
                lg.exception("Migration failed")  # page the on-call
            """,
        ),
        Invalid(
            """
            from logging import error

            try:
                migrate()
            except Exception as e:
                error("Migration failed: %s", e)
            """,
            """
            from logging import error

            try:
                migrate()
            except Exception as e:
                error("Migration failed: %s", e, exc_info=True)
            """,
        ),
        Invalid(
            """
            try:
                start_server()
            except OSError as e:
                self.logger.critical("Cannot start: %s", e)
            """,
            """
            try:
                start_server()
            except OSError as e:
                self.logger.critical("Cannot start: %s", e, exc_info=True)
            """,
        ),
        Invalid(
            """
            try:
                process_bids(session)
            except Exception as e:
                logger.critical(
                    "[AUTONOMOUS] Error processing bids for %s: %s",
                    session.id,
                    e,
                )
            """,
            """
            try:
                process_bids(session)
            except Exception as e:
                logger.critical(
                    "[AUTONOMOUS] Error processing bids for %s: %s",
                    session.id,
                    e,
                    exc_info=True,
                )
            """,
        ),
        Invalid(
            """
            try:
                server.serve()
            except Exception as e:
                logger.error("Server startup failed", error=str(e))
                raise
            """,
            """
            try:
                server.serve()
            except Exception as e:
                logger.exception("Server startup failed", error=str(e))
                raise
            """,
        ),
        Invalid(
            """
            import logging

            audit = logging.getLogger("audit")

            def charge(card):
                try:
                    gateway.charge(card)
                except GatewayError:
                    audit.error("Charge failed for %s", card.id)
            """,
            """
            import logging

            audit = logging.getLogger("audit")

            def charge(card):
                try:
                    gateway.charge(card)
                except GatewayError:
                    audit.exception("Charge failed for %s", card.id)
            """,
        ),
    )


def _has_logger_name(identifier: str) -> bool:
    lowered = identifier.lower()
    return lowered in _LOGGER_NAMES or lowered.endswith(_LOGGER_SUFFIXES)


def _own_calls(handler: cst.ExceptHandler | cst.ExceptStarHandler) -> list[cst.Call]:
    """The calls that run while `handler` handles its exception (not nested defs or handlers)."""
    collector = _OwnCalls()
    handler.body.visit(collector)
    return collector.calls


class _OwnCalls(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[cst.Call] = []

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(node)

    def on_visit(self, node: cst.CSTNode) -> bool:
        return not isinstance(node, _NOT_THIS_EXCEPTION) and super().on_visit(node)


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _drops_traceback(func: cst.BaseExpression) -> str:
    return f"`{_code(func)}()` in an exception handler drops the traceback"


def _decides_exc_info(keyword: ast.keyword) -> bool:
    """`exc_info=<anything but None>` or `**kwargs`: the call decides about the traceback itself."""
    if keyword.arg is None:
        return True
    return keyword.arg == "exc_info" and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is None)


def _without_exc_info_none(call: cst.Call) -> cst.Call:
    """`call` without its `exc_info=None` (`exception()` would pass it on and log no traceback)."""
    kept = [arg for arg in call.args if not m.matches(arg, _EXC_INFO_NONE)]
    if len(kept) == len(call.args):
        return call
    if kept and m.matches(call.args[-1], _EXC_INFO_NONE):  # the last one went: the new last ends the call
        kept[-1] = _ending_the_call(kept[-1], call.args[-1])
    return call.with_changes(args=kept)


def _ending_the_call(last: cst.Arg, removed: cst.Arg) -> cst.Arg:
    """`last` followed by what followed `removed` (its trailing comma, the whitespace before `)`),
    keeping the end-of-line comment that stood after `last`."""
    between = last.comma.whitespace_after if isinstance(last.comma, cst.Comma) else None
    closing = removed.comma.whitespace_after if isinstance(removed.comma, cst.Comma) else removed.whitespace_after_arg
    if isinstance(between, cst.ParenthesizedWhitespace) and between.first_line.comment is not None:
        if isinstance(closing, cst.ParenthesizedWhitespace):
            closing = closing.with_changes(first_line=between.first_line)
        else:
            closing = cst.ParenthesizedWhitespace(first_line=between.first_line, indent=True)
    if isinstance(removed.comma, cst.Comma):
        return last.with_changes(comma=removed.comma.with_changes(whitespace_after=closing))
    return last.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=closing)


def _with_exc_info(call: cst.Call) -> cst.Call:
    """`call` with `exc_info=True` appended (or put in place of `exc_info=None`), laid out like the
    arguments already there."""
    if any(m.matches(arg, _EXC_INFO_NONE) for arg in call.args):
        true = cst.Name("True")
        return call.with_changes(
            args=[arg.with_changes(value=true) if m.matches(arg, _EXC_INFO_NONE) else arg for arg in call.args]
        )
    if not call.args:
        return call.with_changes(args=[_EXC_INFO_TRUE])
    *before, last = call.args
    trailing_comma = last.comma if isinstance(last.comma, cst.Comma) else None
    closing = trailing_comma.whitespace_after if trailing_comma else last.whitespace_after_arg  # before `)`
    separator = _separator(call)
    if isinstance(closing, cst.ParenthesizedWhitespace) and isinstance(separator, cst.ParenthesizedWhitespace):
        # One argument per line: the last one keeps its end-of-line comment, the new one gets a
        # line of its own, and the lines before `)` (comments, blanks) stay before `)`.
        separator = separator.with_changes(first_line=closing.first_line)
        closing = closing.with_changes(first_line=cst.TrailingWhitespace())
    last = last.with_changes(comma=(trailing_comma or cst.Comma()).with_changes(whitespace_after=separator))
    if trailing_comma:
        added = _EXC_INFO_TRUE.with_changes(comma=cst.Comma(whitespace_after=closing))
    else:
        last = last.with_changes(whitespace_after_arg=cst.SimpleWhitespace(""))
        added = _EXC_INFO_TRUE.with_changes(whitespace_after_arg=closing)
    return call.with_changes(args=[*before, last, added])


def _separator(call: cst.Call) -> cst.BaseParenthesizableWhitespace:
    """The whitespace this call puts between two arguments (or after `(`), without its comments."""
    previous_comma = call.args[-2].comma if len(call.args) > 1 else None
    if isinstance(previous_comma, cst.Comma):
        template = previous_comma.whitespace_after
    elif isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
        template = call.whitespace_before_args
    else:
        return cst.SimpleWhitespace(" ")
    if isinstance(template, cst.ParenthesizedWhitespace):
        return template.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
    return template


def _names_bound_to(tree: ast.Module, accepts: Callable[[ast.Call], bool]) -> set[str]:
    """The names assigned (anywhere) from a call `accepts` accepts: `audit = logging.getLogger("audit")`."""
    bound: set[str] = set()
    for node in quickscan.of_type(tree, ast.Assign, ast.AnnAssign):
        value = getattr(node, "value", None)
        if isinstance(value, ast.Call) and accepts(value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]  # type: ignore[attr-defined]
            bound |= {target.id for target in targets if isinstance(target, ast.Name)}
    return bound
