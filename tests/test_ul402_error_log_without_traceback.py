"""UL402 beyond its embedded examples: look-alikes, aliases, nesting, layout of the added keyword."""

from __future__ import annotations

import ast
import textwrap

import pytest

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul401_bare_except import BareExcept
from unleak.transforms.ul402_error_log_without_traceback import ErrorLogWithoutTraceback

RULE = (ErrorLogWithoutTraceback,)


def _code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def messages(text: str) -> list[str]:
    return [finding.message for finding in run_rules(_code(text), RULE, fixing=False).findings]


def fixed(text: str) -> str:
    """The fixed code, checked to be a fixed point of the rule."""
    once = fixed_text(run_rules(_code(text), RULE))
    again = run_rules(once, RULE)
    assert again.fixed is None and again.error is None and again.findings == []
    return once


def in_handler(call: str, prelude: str = "") -> str:
    return prelude + f"try:\n    work()\nexcept Exception as e:\n    {call}\n"


@pytest.mark.parametrize(
    "prelude, call",
    [
        pytest.param("", "self.error('bad input')", id="self-error"),
        pytest.param("", "catalog.error('missing')", id="catalog"),
        pytest.param("", "dialog.error('Oops')", id="dialog"),
        pytest.param("", "response.error(e)", id="response"),
        pytest.param("from django.contrib import messages\n", "messages.error(request, 'x')", id="django-messages"),
        pytest.param("import argparse\nparser = argparse.ArgumentParser()\n", "parser.error('x')", id="argparse"),
        pytest.param("def error(msg):\n    print(msg)\n", "error(f'failed: {e}')", id="own-error-function"),
        pytest.param("from myapp.log import error\n", "error('x')", id="error-not-from-logging"),
        pytest.param("from myapp import getLogger\naudit = getLogger()\n", "audit.error('x')", id="own-getLogger"),
        pytest.param("", "logger.warning('x')", id="warning-level"),
        pytest.param("", "logger.exception('x')", id="already-exception"),
        pytest.param("", "logger.error('x', exc_info=False)", id="exc_info-false"),
        pytest.param("", "logger.critical('x', exc_info=e)", id="exc_info-exception"),
        pytest.param("", "logger.error('x', **context)", id="double-star-kwargs"),
        pytest.param("", "callbacks.append(lambda: logger.error('x'))", id="lambda"),
        pytest.param("", "class Report:\n        logger.error('x')", id="nested-class"),
        pytest.param("", "error = logger.error", id="not-a-call"),
    ],
)
def test_look_alikes_and_decided_calls_are_left_alone(prelude: str, call: str) -> None:
    code = in_handler(call, prelude)
    result = run_rules(code, RULE, unsafe=True)
    assert result.error is None and result.findings == [] and result.fixed is None


def test_else_block_and_code_after_the_try_are_not_in_the_handler() -> None:
    assert messages(
        """
        try:
            work()
        except Exception:
            pass
        else:
            logger.error("no exception here")
        logger.error("nor here")
        """
    ) == []


def test_handler_that_logs_the_traceback_elsewhere_is_left_alone() -> None:
    # pip's idiom: the message for the user at error level, the traceback at debug level.
    for recorder in ("logger.debug('Exception information:', exc_info=True)", "log.exception('details')"):
        code = f"try:\n    work()\nexcept Exception as e:\n    logger.critical(str(e))\n    {recorder}\n"
        result = run_rules(code, RULE, unsafe=True)
        assert result.findings == [] and result.fixed is None


@pytest.mark.parametrize(
    "other",
    [
        pytest.param("logger.debug('details', exc_info=False)", id="exc_info-false"),
        pytest.param("task.exception()", id="future-exception"),
        pytest.param("def later():\n        logger.exception('x')", id="nested-def"),
        pytest.param(
            "try:\n        undo()\n    except OSError:\n        logger.exception('undo failed')", id="inner-handler"
        ),
    ],
)
def test_other_calls_that_do_not_log_this_traceback(other: str) -> None:
    code = f"try:\n    work()\nexcept Exception as e:\n    {other}\n    logger.error('work failed')\n"
    assert fixed(code) == code.replace("logger.error", "logger.exception")


@pytest.mark.parametrize(
    "prelude, call, after",
    [
        pytest.param("", "LOGGER.error('x')", "LOGGER.exception('x')", id="upper-case"),
        pytest.param("", "self._log.error('x')", "self._log.exception('x')", id="self-_log"),
        pytest.param("", "app.logger.error('x')", "app.logger.exception('x')", id="app-logger"),
        pytest.param("", "_logger.error('x')", "_logger.exception('x')", id="private"),
        pytest.param("", "request_log.error('x')", "request_log.exception('x')", id="suffix-_log"),
        pytest.param("", "log.critical('x')", "log.critical('x', exc_info=True)", id="critical"),
        pytest.param(
            "import logging\n", "logging.critical('x')", "logging.critical('x', exc_info=True)", id="module-critical"
        ),
        pytest.param(
            "import logging\n",
            "logging.getLogger(__name__).error('x')",
            "logging.getLogger(__name__).exception('x')",
            id="getLogger-call",
        ),
        pytest.param(
            "from logging import error as log_error\n",
            "log_error('x %s', e)",
            "log_error('x %s', e, exc_info=True)",
            id="aliased-function",
        ),
        pytest.param(
            "from logging import critical\n", "critical('x')", "critical('x', exc_info=True)", id="critical-function"
        ),
        pytest.param(
            "import structlog\nevents = structlog.get_logger()\n",
            "events.error('failed', error=str(e))",
            "events.exception('failed', error=str(e))",
            id="structlog",
        ),
        pytest.param(
            "import logging\naudit: logging.Logger = logging.getLogger('audit')\n",
            "audit.error('x')",
            "audit.exception('x')",
            id="annotated-binding",
        ),
        pytest.param("from loguru import logger as lg\n", "lg.error('x')", "lg.exception('x')", id="loguru-error"),
        pytest.param(
            "", "logger.critical('x %s', *args)", "logger.critical('x %s', *args, exc_info=True)", id="star-args"
        ),
        pytest.param("", "logger.critical( 'x' )", "logger.critical( 'x', exc_info=True )", id="spaces-in-parens"),
    ],
)
def test_logger_calls_get_the_traceback(prelude: str, call: str, after: str) -> None:
    assert fixed(in_handler(call, prelude)) == in_handler(after, prelude)


def test_message_names_the_call_and_what_to_use() -> None:
    assert messages(in_handler("self.logger.error('x')")) == [
        "`self.logger.error()` in an exception handler drops the traceback; use `self.logger.exception()`"
    ]
    assert messages(in_handler("error('x')", "from logging import error\n")) == [
        "`error()` in an exception handler drops the traceback; pass `exc_info=True`"
    ]


def test_loguru_critical_is_reported_without_a_fix() -> None:
    # loguru formats the message with the keyword arguments: `exc_info=True` would not help.
    code = in_handler("logger.critical(f'state: {state}')", "from loguru import logger\n")
    result = run_rules(code, RULE, unsafe=True)
    assert result.fixed is None
    assert [(f.message, f.fixable) for f in result.findings] == [
        (
            "`logger.critical()` in an exception handler drops the traceback; "
            "use `logger.opt(exception=True).critical()`",
            False,
        )
    ]


@pytest.mark.parametrize("clause", ["except:", "except ValueError:", "except (KeyError, ValueError) as e:"])
def test_any_except_clause(clause: str) -> None:
    assert fixed(f"try:\n    work()\n{clause}\n    logger.error('x')\n") == (
        f"try:\n    work()\n{clause}\n    logger.exception('x')\n"
    )


def test_except_star() -> None:
    before = """
        try:
            gather_all()
        except* ConnectionError as group:
            logger.error("%d connections failed", len(group.exceptions))
        """
    assert fixed(before) == _code(before.replace("logger.error", "logger.exception"))


def test_nested_try_in_a_handler_is_still_in_the_outer_exception_context() -> None:
    before = """
        try:
            charge()
        except PaymentError:
            try:
                logger.error("refunding")
                refund()
            except RefundError:
                logger.error("refund failed")
            finally:
                logger.error("charge failed")
        """
    assert fixed(before) == _code(before.replace("logger.error", "logger.exception"))


def test_handler_inside_a_function_inside_a_handler() -> None:
    before = """
        try:
            connect()
        except ConnectionError:
            def retry():
                try:
                    connect()
                except ConnectionError:
                    logger.error("retry failed")
                logger.error("retry done")

            schedule(retry)
        """
    assert fixed(before) == _code(before.replace('error("retry failed")', 'exception("retry failed")'))


@pytest.mark.parametrize(
    "before, after",
    [
        pytest.param(
            """
            logger.critical(
                "failed: %s",
                e
            )
            """,
            """
            logger.critical(
                "failed: %s",
                e,
                exc_info=True
            )
            """,
            id="no-trailing-comma",
        ),
        pytest.param(
            """
            logger.critical("failed for %s: %s",
                            user_id,  # from the session
                            e)
            """,
            """
            logger.critical("failed for %s: %s",
                            user_id,  # from the session
                            e,
                            exc_info=True)
            """,
            id="hanging-indent",
        ),
        pytest.param(
            """
            logger.critical(
                f"failed: {e}"
            )
            """,
            """
            logger.critical(
                f"failed: {e}",
                exc_info=True
            )
            """,
            id="single-argument",
        ),
        pytest.param(
            """
            logger.critical(  # the worker dies here
                "failed: %s",  # shown on the dashboard
                e,  # the cause
                # keep this note last
            )
            """,
            """
            logger.critical(  # the worker dies here
                "failed: %s",  # shown on the dashboard
                e,  # the cause
                exc_info=True,
                # keep this note last
            )
            """,
            id="comments",
        ),
    ],
)
def test_multiline_exc_info_is_laid_out_like_the_call(before: str, after: str) -> None:
    indented = textwrap.indent(_code(before), "    ")
    assert fixed(f"try:\n    work()\nexcept Exception as e:\n{indented}") == (
        f"try:\n    work()\nexcept Exception as e:\n{textwrap.indent(_code(after), '    ')}"
    )


def test_comments_and_layout_are_kept_when_renaming() -> None:
    before = """
        try:
            work()
        except Exception as e:  # anything
            logger.error(  # the worker dies here
                "failed: %s",  # shown on the dashboard
                e,
            )  # page someone
        """
    assert fixed(before) == _code(before.replace("logger.error", "logger.exception"))


def test_suppression_comment_silences_the_call() -> None:
    code = in_handler("logger.error('expected, no traceback wanted')  # unleak: ignore[UL402]")
    result = run_rules(code, RULE)
    assert result.findings == [] and result.fixed is None


def test_suppression_of_another_rule_does_not_silence_it() -> None:
    code = in_handler("logger.error('x')  # unleak: ignore[UL401]")
    assert fixed(code) == in_handler("logger.exception('x')  # unleak: ignore[UL401]")


def test_with_bare_except_both_fixes_apply() -> None:
    before = """
        try:
            content = json.loads(raw)
        except:
            logger.error("bad payload %r", raw)
            content = {}
        """
    result = run_rules(_code(before), (BareExcept, ErrorLogWithoutTraceback))
    assert fixed_text(result) == _code(
        """
        try:
            content = json.loads(raw)
        except Exception:
            logger.exception("bad payload %r", raw)
            content = {}
        """
    )
    assert result.fixes == {"UL401": 1, "UL402": 1}
    assert result.findings == []


@pytest.mark.parametrize(
    ("code", "possible"),
    [
        ("try:\n    x()\nexcept E:\n    logger.error('failed')\n", True),
        ("audit = logging.getLogger('a')\ntry:\n    x()\nexcept E:\n    audit.error('failed')\n", True),
        ("try:\n    x()\nexcept E:\n    logging.getLogger().error('failed')\n", True),
        # a logger is made somewhere, but `self.error` is no logger (Django's template parser)
        ("log = logging.getLogger()\ntry:\n    x()\nexcept E:\n    raise self.error(token, 'bad')\n", False),
        ("try:\n    x()\nexcept E:\n    parser.error('bad')\n", False),
    ],
)
def test_could_fire_needs_a_receiver_that_may_be_a_logger(code: str, possible: bool) -> None:
    assert ErrorLogWithoutTraceback.could_fire(ast.parse(code)) is possible


@pytest.mark.parametrize(
    "call, after",
    [
        pytest.param("logger.error('x', exc_info=None)", "logger.exception('x')", id="error"),
        pytest.param("logger.error('x %s', e, exc_info=None, stack_info=True)",
                     "logger.exception('x %s', e, stack_info=True)", id="error-not-last"),
        pytest.param("logger.critical('x', exc_info=None)", "logger.critical('x', exc_info=True)", id="critical"),
        pytest.param("logger.error(exc_info=None, msg='x')", "logger.exception(msg='x')", id="error-first"),
    ],
)
def test_exc_info_none_is_the_default_not_an_opt_out(call: str, after: str) -> None:
    assert fixed(in_handler(call)) == in_handler(after)


def test_exc_info_none_passes_the_cheap_check() -> None:
    assert ErrorLogWithoutTraceback.could_fire(ast.parse(in_handler("logger.error('x', exc_info=None)")))
    assert not ErrorLogWithoutTraceback.could_fire(ast.parse(in_handler("logger.error('x', exc_info=False)")))


def test_exc_info_none_removed_from_a_call_laid_out_one_argument_a_line() -> None:
    before = 'try:\n    w()\nexcept E:\n    logger.error(\n        "x",  # why\n        exc_info=None{comma}\n    )\n'
    after = 'try:\n    w()\nexcept E:\n    logger.exception(\n        "x"{comma}  # why\n    )\n'
    for comma in (",", ""):
        assert fixed(before.format(comma=comma)) == after.format(comma=comma)
