"""UL502 unbounded-window

## What it does
Finds a sliding window kept in an unbounded `collections.deque` on `self`: the attribute is
created with `deque()` (no `maxlen`), one method appends to it (`append`, `appendleft`, `extend`,
`extendleft`), and it is pruned only when a time or size condition holds, typically
`while self.requests and self.requests[0] < cutoff: self.requests.popleft()`.

Only that shape is reported: a deque with a `maxlen` (keyword or second positional argument), a
deque used as a plain queue (popped whenever it is not empty, as in a breadth-first search or a
worker queue), a deque that is never appended to or never pruned, and module-level or local
deques are left alone. A pop counts as pruning "by a condition" when an enclosing `while`/`if`
compares the deque itself (`self.requests[0] < cutoff`, `len(self.requests) > limit`) or the
clock (`time.monotonic() - start > 60`); checking that it is not empty does not count.

## Why is this bad?
Nothing but the pruning code bounds the window. When it does not run, or runs less often than
entries arrive (an exception or a cancellation between the append and the cleanup, a clock that
jumps, a burst of traffic), the deque keeps every entry and the process's memory grows without
bound under exactly the load the rate limiter was written for (seed 004 #3).

## Example
```python
class RateLimiter:
    def __init__(self, requests_per_minute: int = 60):
        self.requests_per_minute = requests_per_minute
        self.requests: deque[float] = deque()

    async def acquire(self) -> None:
        now = time.time()
        while self.requests and self.requests[0] < now - 60:
            self.requests.popleft()
        self.requests.append(now)
```

## Use instead
```python
class RateLimiter:
    def __init__(self, requests_per_minute: int = 60):
        self.requests_per_minute = requests_per_minute
        # The window never needs more entries than the limit: the oldest falls out by itself.
        self.requests: deque[float] = deque(maxlen=requests_per_minute)

    async def acquire(self) -> None:
        now = time.time()
        while self.requests and self.requests[0] < now - 60:
            self.requests.popleft()
        self.requests.append(now)
```

## Fix safety
Detect only. The right bound depends on what the window counts (the rate limit, a multiple of
it, a fixed safety cap), and a `maxlen` changes behaviour once it is reached: `append` then
silently drops the oldest entry. A human must choose it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import ast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import analysis, quickscan
from unleak.rule import FixSafety, Invalid, Rule, SliceScope, Valid

_DEQUE = "collections.deque"
_GROWING = frozenset({"append", "appendleft", "extend", "extendleft"})
_PRUNING = frozenset({"pop", "popleft"})
_NOT_INSTANCE_METHODS = frozenset({"builtins.staticmethod", "builtins.classmethod"})
_CLOCK_CALL = m.Call(
    func=m.MatchMetadataIfTrue(
        QualifiedNameProvider, lambda names: any(name.name.startswith(("time.", "datetime.")) for name in names)
    )
)
_ORDERING = m.LessThan() | m.LessThanEqual() | m.GreaterThan() | m.GreaterThanEqual()
_ORDERING_COMPARISON = m.Comparison(
    comparisons=[m.ZeroOrMore(), m.ComparisonTarget(operator=_ORDERING), m.ZeroOrMore()]
)
_LEN_CALL = m.Call(func=m.Name("len"))
_ZERO_OR_ONE = m.Integer(value="0") | m.Integer(value="1")
_NONE = m.Name("None")


@dataclass
class _AttributeUse:
    """What the class's methods do with one `self.<attr>`."""

    unbounded_deques: list[cst.Call] = field(default_factory=list)
    bounded: bool = False  # created with a maxlen somewhere (or as something else than a deque)
    grows: bool = False
    prunes: list[bool] = field(default_factory=list)  # for each pop: under a time/size condition?

    def is_sliding_window(self) -> bool:
        return bool(self.unbounded_deques) and not self.bounded and self.grows and bool(self.prunes) and all(self.prunes)


class UnboundedWindow(Rule):
    code = "UL502"
    name = "unbounded-window"
    safety = FixSafety.DETECT
    summary = "Sliding window in a `deque()` without `maxlen`: only its pruning code bounds it; give it a `maxlen`"
    trigger = (rb"deque", rb"\.(append|extend)", rb"\.pop")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)
    slice_scope = SliceScope.TOP_LEVEL_CLASS

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """A `deque(...)` (or what it is imported as) stored in an attribute (`self.window = deque()`)."""
        callees = quickscan.Callees(tree, "collections", {"deque"})
        stores = quickscan.of_type(tree, ast.Assign, ast.AnnAssign)
        return any(_stores_deque_in_attribute(store, callees) for store in stores)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        uses: defaultdict[str, _AttributeUse] = defaultdict(_AttributeUse)
        for method in self._instance_methods(node):
            for attribute in self._self_attributes(method):
                self._record(uses[attribute.attr.value], attribute)
        for name, use in uses.items():
            if use.is_sliding_window():
                first = min(use.unbounded_deques, key=self._position)
                self.report(
                    first,
                    f"`self.{name}` is a sliding window in a `deque()` without `maxlen`: only the code that "
                    "prunes it bounds it, and when that code stops running it grows without limit; "
                    "use `deque(maxlen=...)` or another bounded structure",
                )

    def _instance_methods(self, node: cst.ClassDef) -> Iterator[cst.FunctionDef]:
        if not isinstance(node.body, cst.IndentedBlock):
            return
        for statement in node.body.body:
            if isinstance(statement, cst.FunctionDef) and not any(
                analysis.qualified_names(self, decorator.decorator) & _NOT_INSTANCE_METHODS
                for decorator in statement.decorators
            ):
                yield statement

    def _self_attributes(self, method: cst.FunctionDef) -> Iterator[cst.Attribute]:
        """Every `self.<attr>` in the method (nested functions included), `self` resolved by scope."""
        parameters = [*method.params.posonly_params, *method.params.params]
        if not parameters:
            return
        scope = self.get_metadata(ScopeProvider, parameters[0], None)
        assignments = scope.assignments[parameters[0].name.value] if scope else set()
        if len(assignments) != 1:
            return  # `self` is rebound
        for access in next(iter(assignments)).references:
            parent = self.get_metadata(ParentNodeProvider, access.node, None)
            if isinstance(parent, cst.Attribute) and parent.value is access.node:
                yield parent

    def _record(self, use: _AttributeUse, attribute: cst.Attribute) -> None:
        parent = self.get_metadata(ParentNodeProvider, attribute)
        if isinstance(parent, cst.AssignTarget):
            self._record_creation(use, self.get_metadata(ParentNodeProvider, parent).value)
        elif isinstance(parent, cst.AnnAssign) and parent.target is attribute and parent.value is not None:
            self._record_creation(use, parent.value)
        elif isinstance(parent, cst.Attribute) and parent.value is attribute:
            call = self.get_metadata(ParentNodeProvider, parent)
            if not (isinstance(call, cst.Call) and call.func is parent):
                return
            if parent.attr.value in _GROWING:
                use.grows = True
            elif parent.attr.value in _PRUNING:
                use.prunes.append(self._pruned_by_condition(call, attribute))

    def _record_creation(self, use: _AttributeUse, value: cst.BaseExpression) -> None:
        if isinstance(value, cst.Call) and analysis.calls(self, value, _DEQUE) and not _has_maxlen(value):
            use.unbounded_deques.append(value)
        elif not m.matches(value, _NONE):  # `self.window = None` on close neither bounds nor grows it
            use.bounded = True

    def _pruned_by_condition(self, pop: cst.Call, window: cst.Attribute) -> bool:
        """Whether an enclosing `while`/`if` of the pop compares the window or the clock."""
        for ancestor in analysis.ancestors(self, pop):
            if isinstance(ancestor, analysis.FunctionLike):
                return False
            if isinstance(ancestor, (cst.While, cst.If)) and self._compares_window_or_clock(ancestor.test, window):
                return True
        return False

    def _compares_window_or_clock(self, test: cst.BaseExpression, window: cst.Attribute) -> bool:
        same_window = m.Attribute(value=m.Name(_name(window.value)), attr=m.Name(window.attr.value))
        return any(
            not _is_emptiness_check(comparison)
            and m.findall(comparison, same_window | _CLOCK_CALL, metadata_resolver=self)
            for comparison in m.findall(test, _ORDERING_COMPARISON)
        )

    def _position(self, node: cst.CSTNode) -> tuple[int, int]:
        start = self.get_metadata(PositionProvider, node).start
        return start.line, start.column

    VALID = (
        Valid(
            """
            import time
            from collections import deque

            class RateLimiter:
                def __init__(self, limit: int = 60):
                    self.requests = deque(maxlen=limit)

                def acquire(self) -> None:
                    now = time.monotonic()
                    while self.requests and self.requests[0] < now - 60:
                        self.requests.popleft()
                    self.requests.append(now)
            """
        ),
        Valid(
            """
            from collections import deque

            class Crawler:
                def __init__(self, start):
                    self.frontier = deque([start])

                def crawl(self):
                    while self.frontier:
                        page = self.frontier.popleft()
                        self.frontier.extend(page.links)
            """
        ),
        Valid(
            """
            import collections

            class Worker:
                def __init__(self):
                    self.jobs = collections.deque()

                def submit(self, job):
                    self.jobs.append(job)

                def next_job(self):
                    return self.jobs.popleft() if self.jobs else None
            """
        ),
        Valid(
            """
            import time
            from collections import deque

            window = deque()

            def hit(now):
                window.append(now)
                while window and window[0] < now - 60:
                    window.popleft()
            """
        ),
        Valid(
            """
            import time
            from collections import deque

            class Samples:
                def __init__(self):
                    self.values = deque()

                def trim(self, cutoff):
                    while self.values and self.values[0] < cutoff:
                        self.values.popleft()
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            import asyncio
            import time
            from collections import deque

            class RateLimiter:
                \"\"\"Simple rate limiter with sliding window.\"\"\"

                def __init__(self, requests_per_minute: int = 60):
                    self.requests_per_minute = requests_per_minute
                    self.requests: deque[float] = deque()

                async def acquire(self) -> None:
                    \"\"\"Wait if necessary to respect rate limits.\"\"\"
                    now = time.time()
                    await self._cleanup_old_requests(now)
                    if len(self.requests) >= self.requests_per_minute:
                        sleep_time = 60 - (now - self.requests[0]) + 0.1
                        if sleep_time > 0:
                            await asyncio.sleep(sleep_time)
                    self.requests.append(now)

                async def _cleanup_old_requests(self, now: float) -> None:
                    \"\"\"Remove requests older than 1 minute.\"\"\"
                    cutoff = now - 60
                    while self.requests and self.requests[0] < cutoff:
                        self.requests.popleft()
            """
        ),
        Invalid(
            """
            import collections

            class RecentErrors:
                def __init__(self, limit):
                    self.limit = limit
                    self.errors = collections.deque([])

                def record(self, error):
                    self.errors.append(error)
                    if len(self.errors) > self.limit:
                        self.errors.popleft()
            """
        ),
        Invalid(
            """
            import time
            from collections import deque as Deque

            class Throughput:
                def __init__(self, window_seconds):
                    self.window_seconds = window_seconds
                    self.stamps = Deque()

                def tick(self):
                    now = time.monotonic()
                    self.stamps.appendleft(now)
                    while self.stamps and now - self.stamps[-1] > self.window_seconds:
                        self.stamps.pop()
            """
        ),
    )


def _has_maxlen(call: cst.Call) -> bool:
    """`deque(maxlen=n)` or `deque(items, n)`, with a bound other than None."""
    keyword = next((arg.value for arg in call.args if arg.keyword and arg.keyword.value == "maxlen"), None)
    positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
    bound = keyword if keyword is not None else (positional[1] if len(positional) > 1 else None)
    return bound is not None and not m.matches(bound, _NONE)


def _is_emptiness_check(comparison: cst.Comparison) -> bool:
    """`len(q) > 0`, `len(q) >= 1`, `0 < len(q)`: the same as `if q:`."""
    operands = [comparison.left, *(target.comparator for target in comparison.comparisons)]
    return len(operands) == 2 and any(m.matches(o, _LEN_CALL) for o in operands) and any(m.matches(o, _ZERO_OR_ONE) for o in operands)


def _name(expression: cst.BaseExpression) -> str:
    return expression.value if isinstance(expression, cst.Name) else ""


def _stores_deque_in_attribute(store: ast.AST, is_deque: quickscan.Callees) -> bool:
    targets = store.targets if isinstance(store, ast.Assign) else [getattr(store, "target", None)]
    value = getattr(store, "value", None)
    return (
        isinstance(value, ast.Call)
        and is_deque(value)
        and not _may_be_bounded(value)
        and any(isinstance(target, ast.Attribute) for target in targets)
    )


def _may_be_bounded(call: ast.Call) -> bool:
    """A `maxlen` that is not a literal None (or `**kwargs` that may hold one)."""
    maxlen = [keyword.value for keyword in call.keywords if keyword.arg == "maxlen"] + call.args[1:2]
    unknown = any(keyword.arg is None for keyword in call.keywords)
    return unknown or any(not (isinstance(value, ast.Constant) and value.value is None) for value in maxlen)
