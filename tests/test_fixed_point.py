"""The fixed point of `engine.transform.fix`: passes repeat until nothing changes, and the last
pass is skipped when the cheap gates show that no selected rule can fire on the fixed source."""

from __future__ import annotations

import pytest

from tests.test_output_formats import NESTED, UNSAFE_ONLY
from tests.test_slicing import RULES, run
from unleak.engine import transform

SETTLES_AT_ONCE = """\
import logging

logger = logging.getLogger(__name__)


def seed(db):
    try:
        db.seed()
    except Exception as error:
        logger.error("seeding failed: %s", error)
"""


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The source each LibCST pass of the run sees."""
    seen: list[str] = []
    one_pass = transform._one_pass

    def counted(outcome: transform.Outcome, *args: object) -> list[object]:
        seen.append(outcome.module.code)
        return one_pass(outcome, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(transform, "_one_pass", counted)
    return seen


def test_a_fix_no_rule_can_fire_on_is_final_after_one_pass(passes: list[str]) -> None:
    result = run(SETTLES_AT_ONCE, RULES, sliced=False)
    assert result.fixed is not None and b'logger.exception("seeding failed: %s", error)' in result.fixed
    assert len(passes) == 1
    assert run(result.fixed.decode(), RULES, sliced=False).fixed is None  # and it is the fixed point
    assert len(passes) == 1  # the second run did not parse it either


def test_a_fix_that_leaves_something_a_rule_may_fire_on_gets_another_pass(passes: list[str]) -> None:
    result = run(NESTED, RULES, sliced=False)  # UL202's fix holds the bare `except:` UL401 fixes
    assert result.fixed is not None and b"except Exception:" in result.fixed and b"with open(path) as f:" in result.fixed
    assert len(passes) >= 2
    assert run(result.fixed.decode(), RULES, sliced=False).fixed is None


def test_a_pass_that_leaves_a_finding_gets_another_pass_for_its_final_position(passes: list[str]) -> None:
    code = SETTLES_AT_ONCE + "\n\n" + UNSAFE_ONLY.replace("import asyncio\n\n", "import asyncio\n\n\n")
    result = run(code, RULES, sliced=False)
    assert result.fixed is not None
    assert [finding.rule for finding in result.findings] == ["UL102"]
    assert len(passes) == 2
