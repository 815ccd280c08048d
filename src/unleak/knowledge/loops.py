"""Event loops held in a name, and the edits the event-loop rules (UL102-UL104) share.

The three rules ask the same questions -- "what is `loop` used for?", "which function's body
runs this?", "does this `await` need parentheses here?" -- and make the same kind of edit:
rewrite a few calls, drop a few statements, and tidy the blocks that leaves behind (a
`try/finally` whose `finally` only closed the loop goes, its body dedented into place). The
answers live here once. Every function takes the running rule for its metadata; `loop_uses`,
`creation_of` and `asyncio_attribute` need `ScopeProvider` in the rule's METADATA_DEPENDENCIES.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment, ComprehensionScope, GlobalScope, ParentNodeProvider, ScopeProvider

from unleak.knowledge.analysis import FunctionLike, ancestors, calls, enclosing_function
from unleak.rule import ImportSpec, Rule

NEW_EVENT_LOOP = "asyncio.new_event_loop"
GET_EVENT_LOOP = "asyncio.get_event_loop"
GET_RUNNING_LOOP = "asyncio.get_running_loop"
# Calls that hand back an asyncio event loop (a new one, or the thread's current/running one).
LOOP_FACTORIES = frozenset({NEW_EVENT_LOOP, GET_EVENT_LOOP, GET_RUNNING_LOOP})
SET_EVENT_LOOP = "asyncio.set_event_loop"
# Loop methods that hand back a task, future or handle bound to the loop: dead once it is closed.
LOOP_BOUND_MAKERS = frozenset(
    {"create_task", "create_future", "call_soon", "call_soon_threadsafe", "call_later", "call_at", "run_in_executor"}
)
# `asyncio.run()` takes coroutines only; these hand back futures (bound to whatever loop is current).
FUTURE_MAKERS = frozenset(
    {
        "asyncio.gather",
        "asyncio.ensure_future",
        "asyncio.shield",
        "asyncio.wrap_future",
        "asyncio.create_task",
        "asyncio.run_coroutine_threadsafe",
        "asyncio.Future",
        "asyncio.Task",
    }
)
RUN_UNTIL_COMPLETE = m.Call(func=m.Attribute(attr=m.Name("run_until_complete")))
# `loop.run_until_complete(x)` or `(future=x)`: one awaitable, nothing else.
ONE_AWAITABLE = m.Call(args=[m.Arg(keyword=None, star="") | m.Arg(keyword=m.Name("future"))])

_ASSIGNS_A_CALL_TO_A_NAME = m.SimpleStatementLine(
    body=[m.Assign(targets=[m.AssignTarget(m.Name())], value=m.Call())]
)
_IMPORT_ASYNCIO = m.Import(
    names=[m.ZeroOrMore(), m.ImportAlias(name=m.Name("asyncio"), asname=None), m.ZeroOrMore()]
)
_NONE_ARGUMENT = m.Call(args=[m.Arg(value=m.Name("None"), keyword=None)])
# The expressions `await` takes without parentheses (the grammar's "primary" and atoms).
_PRIMARIES = (
    cst.Name,
    cst.Attribute,
    cst.Call,
    cst.Subscript,
    cst.BaseString,
    cst.BaseNumber,
    cst.List,
    cst.Set,
    cst.Dict,
    cst.ListComp,  # not a bare generator expression: `await x for x in y` does not parse
    cst.SetComp,
    cst.DictComp,
    cst.Ellipsis,
)


# --- where a node stands ------------------------------------------------------------------------


def lone_statement(rule: Rule, expression: cst.BaseExpression) -> cst.SimpleStatementLine | None:
    """The line when `expression` is the whole of a one-statement line (`loop.close()`), else None."""
    expr = rule.get_metadata(ParentNodeProvider, expression, None)
    line = rule.get_metadata(ParentNodeProvider, expr, None) if isinstance(expr, cst.Expr) else None
    if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
        return line
    return None


# --- what a loop held in a name is used for --------------------------------------------------


@dataclass
class LoopUses:
    """Every reference to the name an event loop was assigned to, by what it does."""

    name: str
    creation: cst.SimpleStatementLine  # `loop = asyncio.new_event_loop()`
    runs: list[cst.Call] = field(default_factory=list)  # `loop.run_until_complete(x)`
    installs: list[cst.SimpleStatementLine] = field(default_factory=list)  # `asyncio.set_event_loop(loop)`
    closes: list[cst.SimpleStatementLine] = field(default_factory=list)  # `loop.close()` statements
    methods: list[cst.Call] = field(default_factory=list)  # any other `loop.method(...)` call
    # Everything else: passed on, stored, returned, `del`eted, used by a nested function or lambda.
    escapes: list[cst.Name] = field(default_factory=list)

    def references(self) -> int:
        return sum(map(len, (self.runs, self.installs, self.closes, self.methods, self.escapes)))


def loop_creation(
    rule: Rule, statement: cst.CSTNode, factories: Iterable[str] = LOOP_FACTORIES
) -> cst.Name | None:
    """The target of a `NAME = <loop factory>()` statement, or None."""
    if not m.matches(statement, _ASSIGNS_A_CALL_TO_A_NAME):
        return None
    assign = cst.ensure_type(cst.ensure_type(statement, cst.SimpleStatementLine).body[0], cst.Assign)
    if not calls(rule, cst.ensure_type(assign.value, cst.Call), *factories):
        return None
    return cst.ensure_type(assign.targets[0].target, cst.Name)


def creating_call(creation: cst.SimpleStatementLine) -> cst.Call:
    """The call of a `NAME = <loop factory>()` line (see `loop_creation`)."""
    return cst.ensure_type(cst.ensure_type(creation.body[0], cst.Assign).value, cst.Call)


def creation_of(rule: Rule, name: cst.Name) -> cst.SimpleStatementLine | Assignment | None:
    """Where the loop `name` refers to comes from: its `NAME = <loop factory>()` statement, the
    single other assignment it has (a parameter, an import, a call of anything else), or None
    when it is assigned more than once or not at all (a global of another module, say)."""
    assignments = [a for a in rule.get_metadata(ScopeProvider, name)[name.value] if isinstance(a, Assignment)]
    if len(assignments) != 1:
        return None
    (assignment,) = assignments
    statement = _statement_of(rule, assignment.node)
    if statement is not None and loop_creation(rule, statement) is assignment.node:
        return statement
    return assignment


def loop_uses(rule: Rule, creation: cst.SimpleStatementLine) -> LoopUses | None:
    """What the loop created by `creation` is used for; None when the name is also assigned
    elsewhere in its scope (two loops under one name, `global loop`), where no answer is safe."""
    target = loop_creation(rule, creation)
    if target is None:
        return None
    scope = rule.get_metadata(ScopeProvider, target)
    assignments = list(scope.assignments[target.value])
    if len(assignments) != 1 or assignments[0].node is not target:
        return None
    uses = LoopUses(target.value, creation)
    for access in assignments[0].references:
        reference = cst.ensure_type(access.node, cst.Name)
        if not same_frame(access.scope, scope):
            uses.escapes.append(reference)
        else:
            _classify(rule, reference, uses)
    return uses


def same_frame(inner: object, outer: object) -> bool:
    """Whether code in scope `inner` runs in the frame of scope `outer`: comprehensions run in
    place; any other nested scope may run later, elsewhere."""
    while inner is not outer and isinstance(inner, ComprehensionScope):
        inner = inner.parent
    return inner is outer


def _classify(rule: Rule, reference: cst.Name, uses: LoopUses) -> None:
    parent = rule.get_metadata(ParentNodeProvider, reference)
    grandparent = rule.get_metadata(ParentNodeProvider, parent, None)
    if isinstance(parent, cst.Attribute) and isinstance(grandparent, cst.Call) and grandparent.func is parent:
        if parent.attr.value == "run_until_complete":
            uses.runs.append(grandparent)
        elif parent.attr.value == "close" and (line := lone_statement(rule, grandparent)) is not None:
            uses.closes.append(line)
        else:
            uses.methods.append(grandparent)
        return
    if (
        isinstance(parent, cst.Arg)
        and isinstance(grandparent, cst.Call)
        and len(grandparent.args) == 1
        and parent.keyword is None
        and calls(rule, grandparent, SET_EVENT_LOOP)
        and (line := lone_statement(rule, grandparent)) is not None
    ):
        uses.installs.append(line)
        return
    uses.escapes.append(reference)


def kept_results(rule: Rule, uses: LoopUses) -> list[cst.Call]:
    """The calls on the loop that make a task, future or handle something keeps beyond the loop's
    own runs: stored in a global, an attribute or a container, returned, yielded or passed on.
    Closing the loop would leave those dead; a result that is dropped, run by the loop
    (`loop.run_until_complete(task)`) or only asked about (`task.result()`) is not kept. Once the
    loop is installed, `asyncio.ensure_future(...)` and the like make their futures on it too.
    Needs `QualifiedNameProvider` as well."""
    methods = [(call, cst.ensure_type(call.func, cst.Attribute).attr.value) for call in uses.methods]
    makers = [call for call, method in methods if method in LOOP_BOUND_MAKERS]
    if uses.installs:
        frame = enclosing_function(rule, uses.creation)
        root = frame if frame is not None else ancestors(rule, uses.creation)[-1]
        makers += [
            call
            for call in m.findall(root, m.Call(func=m.Name() | m.Attribute()))
            if calls(rule, cst.ensure_type(call, cst.Call), *FUTURE_MAKERS) and enclosing_function(rule, call) is frame
        ]
    return [call for call in makers if _is_kept(rule, call, uses)]


def _is_kept(rule: Rule, call: cst.Call, uses: LoopUses) -> bool:
    if _run_by(rule, call, uses):
        return False
    value = _collection_holding(rule, call)
    parent = rule.get_metadata(ParentNodeProvider, value)
    if isinstance(parent, cst.Expr):
        return False
    if not isinstance(parent, (cst.Assign, cst.AnnAssign)) or parent.value is not value:
        return True
    targets = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [parent.target]
    return not all(isinstance(target, cst.Name) and _local_and_not_kept(rule, target, uses) for target in targets)


def _collection_holding(rule: Rule, node: cst.BaseExpression) -> cst.BaseExpression:
    """The list, tuple, set or comprehension (outermost) that `node` is an item of, else `node`."""
    while True:
        parent = rule.get_metadata(ParentNodeProvider, node)
        if isinstance(parent, cst.Element):
            parent = rule.get_metadata(ParentNodeProvider, parent)
        elif not (isinstance(parent, (cst.ListComp, cst.SetComp, cst.GeneratorExp)) and parent.elt is node):
            return node
        node = parent


def _run_by(rule: Rule, node: cst.CSTNode, uses: LoopUses) -> bool:
    """Whether `node` is inside the argument of one of the loop's `run_until_complete` calls."""
    return any(run in uses.runs for run in ancestors(rule, node))


def _local_and_not_kept(rule: Rule, name: cst.Name, uses: LoopUses) -> bool:
    """Whether `name` is a local of the frame (not a module global, `global` or `nonlocal`) that
    is only run by the loop or asked about (`name.done()`), in that frame."""
    scope = rule.get_metadata(ScopeProvider, name)
    if isinstance(scope, GlobalScope) or any(assignment.scope is not scope for assignment in scope[name.value]):
        return False
    for access in (access for assignment in scope[name.value] for access in assignment.references):
        reference = access.node
        parent = rule.get_metadata(ParentNodeProvider, reference)
        asked_about = isinstance(parent, cst.Attribute) and parent.value is reference
        if not same_frame(access.scope, scope) or not (asked_about or _run_by(rule, reference, uses)):
            return False
    return True


@dataclass(frozen=True)
class ImplicitRun:
    """A coroutine run to completion on the thread's implicit loop, in one of two spellings:
    `asyncio.get_event_loop().run_until_complete(x)`, or `loop.run_until_complete(x)` on a
    `loop = asyncio.get_event_loop()` that is used for nothing but such runs and `loop.close()`."""

    call: cst.Call  # the `run_until_complete(x)` call
    factory: cst.BaseExpression  # `asyncio.get_event_loop` as the code spells it
    uses: LoopUses | None  # the named loop's creation, runs and closes; None for the chained spelling

    def leftovers(self) -> list[cst.SimpleStatementLine]:
        """The statements that go once every run of the loop is made another way."""
        return [self.uses.creation, *self.uses.closes] if self.uses is not None else []

    def runs(self) -> list[cst.Call]:
        """Every run on the same implicit loop (the chained spelling: this one)."""
        return list(self.uses.runs) if self.uses is not None else [self.call]


def implicit_run(rule: Rule, call: cst.Call) -> ImplicitRun | None:
    """`call` as a run on the thread's implicit loop (see `ImplicitRun`), or None."""
    if not m.matches(call, RUN_UNTIL_COMPLETE) or not m.matches(call, ONE_AWAITABLE):
        return None
    receiver = cst.ensure_type(call.func, cst.Attribute).value
    if isinstance(receiver, cst.Call):
        chained = not receiver.args and calls(rule, receiver, GET_EVENT_LOOP)
        return ImplicitRun(call, receiver.func, None) if chained else None
    creation = creation_of(rule, receiver) if isinstance(receiver, cst.Name) else None
    if not isinstance(creation, cst.SimpleStatementLine) or loop_creation(rule, creation, (GET_EVENT_LOOP,)) is None:
        return None
    uses = loop_uses(rule, creation)
    if uses is None or uses.methods or uses.escapes or uses.installs:
        return None
    if not all(m.matches(run, ONE_AWAITABLE) for run in uses.runs):
        return None
    return ImplicitRun(call, creating_call(creation).func, uses)


def runs_per_item(rule: Rule, node: cst.CSTNode, stop: cst.CSTNode) -> bool:
    """Whether `node` is in the repeated part of a `for`/`while` statement inside `stop`."""
    chain = [node, *ancestors(rule, node)]
    for inner, outer in zip(chain, chain[1:]):
        if isinstance(outer, cst.For) and inner is outer.body:
            return True
        if isinstance(outer, cst.While) and (inner is outer.body or inner is outer.test):
            return True
        if outer is stop:
            return False
    return False


def uninstalls(rule: Rule, root: cst.CSTNode) -> list[cst.SimpleStatementLine]:
    """The `asyncio.set_event_loop(None)` statements that run in `root` itself."""
    finder = _StatementFinder(lambda line: _is_uninstall(rule, line))
    root.visit(finder)
    return finder.found


def _is_uninstall(rule: Rule, line: cst.SimpleStatementLine) -> bool:
    if not m.matches(line, m.SimpleStatementLine(body=[m.Expr(_NONE_ARGUMENT)])):
        return False
    return calls(rule, cst.ensure_type(cst.ensure_type(line.body[0], cst.Expr).value, cst.Call), SET_EVENT_LOOP)


def _statement_of(rule: Rule, node: cst.CSTNode) -> cst.SimpleStatementLine | None:
    return next((p for p in ancestors(rule, node) if isinstance(p, cst.SimpleStatementLine)), None)


class _StatementFinder(cst.CSTVisitor):
    def __init__(self, wanted: Callable[[cst.SimpleStatementLine], bool]) -> None:
        super().__init__()
        self._wanted = wanted
        self.found: list[cst.SimpleStatementLine] = []

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        if self._wanted(node):
            self.found.append(node)
        return False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, FunctionLike):
            return False
        return super().on_visit(node)


# --- building the new code ---------------------------------------------------------------------


def awaited(rule: Rule, call: cst.Call, value: cst.BaseExpression) -> cst.Await:
    """`await value`, standing where `call` stood: parenthesized only where the grammar needs it."""
    if not isinstance(value, _PRIMARIES) and not value.lpar:
        value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    lpar, rpar = call.lpar, call.rpar
    parent = rule.get_metadata(ParentNodeProvider, call, None)
    needs_parentheses = (
        (isinstance(parent, (cst.Attribute, cst.Subscript)) and parent.value is call)
        or (isinstance(parent, cst.Call) and parent.func is call)
        or isinstance(parent, cst.Await)  # `await await x` does not parse
    )
    if needs_parentheses and not lpar:
        lpar, rpar = [cst.LeftParen()], [cst.RightParen()]
    return cst.Await(expression=value, lpar=lpar, rpar=rpar)


def asyncio_attribute(
    rule: Rule, near: cst.CSTNode, attribute: str
) -> tuple[cst.Attribute, tuple[ImportSpec, ...]] | None:
    """`asyncio.<attribute>` written at `near`, with the `import asyncio` it needs; None when the
    name `asyncio` means something else there."""
    for assignment in rule.get_metadata(ScopeProvider, near)["asyncio"]:
        if not (isinstance(assignment, Assignment) and m.matches(assignment.node, _IMPORT_ASYNCIO)):
            return None
    return cst.Attribute(cst.Name("asyncio"), cst.Name(attribute)), (ImportSpec("asyncio"),)


def asyncio_run_beside(
    rule: Rule, factory: cst.BaseExpression, near: cst.CSTNode
) -> tuple[cst.BaseExpression, tuple[ImportSpec, ...]] | None:
    """`aio.run` where the loop came from `aio.<factory>()`; else `asyncio.run` (imported), or None
    when the name `asyncio` means something else at `near`."""
    if isinstance(factory, cst.Attribute):
        return factory.with_changes(attr=cst.Name("run")), ()
    return asyncio_attribute(rule, near, "run")


def makes_a_future(rule: Rule, awaitable: cst.BaseExpression) -> bool:
    """Whether `awaitable` is a call that hands back a future, which `asyncio.run()` refuses."""
    return isinstance(awaitable, cst.Call) and calls(rule, awaitable, *FUTURE_MAKERS)


Rewrite = Callable[[cst.CSTNode], cst.CSTNode]


def running_with(reference: cst.BaseExpression) -> Rewrite:
    """A `NodeEditor` rewrite of `loop.run_until_complete(x)` (or `future=x`) into `reference(x)`."""

    def rewrite(updated: cst.CSTNode) -> cst.CSTNode:
        call = cst.ensure_type(updated, cst.Call)
        argument = call.args[0].with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)
        return call.with_changes(func=reference, args=[argument])

    return rewrite


def awaiting(rule: Rule, call: cst.Call) -> Rewrite:
    """A `NodeEditor` rewrite of `call` (`asyncio.run(x)`, `loop.run_until_complete(x)`) into
    `await x`, built from the call as edited: `x` may hold other rewrites."""
    return lambda updated: awaited(rule, call, cst.ensure_type(updated, cst.Call).args[0].value)


class NodeEditor(cst.CSTTransformer):
    """Rewrites and removes nodes of one subtree, chosen by identity, then tidies up: a block
    left empty gets `pass`, an `else:` left empty goes, and a `try` whose `finally` was emptied
    loses it (a `try/finally` with no handlers left is replaced by its own body, dedented).
    Comments above a removed statement move down to the next statement that stays; those in a
    `finally:` or `else:` clause that goes, go with it.

    Rewrites see the node with its children already edited, so nested rewrites compose.
    """

    def __init__(self, rewrites: Mapping[cst.CSTNode, Rewrite], removals: Iterable[cst.CSTNode] = ()) -> None:
        super().__init__()
        self._rewrites = rewrites
        self._removals = set(removals)
        self._edits = _BlockEdits()
        self._emptied: set[cst.SimpleStatementLine] = set()  # the `pass` lines this editor inserted

    def on_leave(
        self, original_node: cst.CSTNode, updated_node: cst.CSTNode
    ) -> cst.CSTNode | cst.RemovalSentinel:
        updated = super().on_leave(original_node, updated_node)
        if not isinstance(updated, cst.CSTNode):
            return updated  # an `else:` this editor emptied
        if original_node in self._removals:
            self._edits.doomed.add(updated)  # dropped by its block, which moves its comments on
            return updated
        rewrite = self._rewrites.get(original_node)
        return rewrite(updated) if rewrite is not None else updated

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body, leftover = self._edits.apply(updated_node.body)
        if body:
            return updated_node.with_changes(body=body, footer=[*leftover, *updated_node.footer])
        placeholder = cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=leftover)
        self._emptied.add(placeholder)
        return updated_node.with_changes(body=[placeholder])

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body, leftover = self._edits.apply(updated_node.body)
        return updated_node.with_changes(body=body, footer=[*leftover, *updated_node.footer])

    def leave_Else(self, original_node: cst.Else, updated_node: cst.Else) -> cst.Else | cst.RemovalSentinel:
        return cst.RemovalSentinel.REMOVE if self._is_emptied(updated_node.body) else updated_node

    def leave_Try(self, original_node: cst.Try, updated_node: cst.Try) -> cst.Try:
        final = updated_node.finalbody
        if final is None or not self._is_emptied(final.body):
            return updated_node
        # The comments inside the `finally:` were about the teardown that is gone; they go with it.
        body = cst.ensure_type(updated_node.body, cst.IndentedBlock)
        if updated_node.handlers:
            kept = updated_node.with_changes(finalbody=None)
            self._edits.trailing[kept] = list(final.leading_lines)
            return kept
        if self._is_emptied(body):
            self._edits.doomed.add(updated_node)
        else:
            self._edits.dissolved.add(updated_node)
            self._edits.trailing[updated_node] = [*body.footer, *final.leading_lines]
        return updated_node

    def _is_emptied(self, block: cst.BaseSuite) -> bool:
        return isinstance(block, cst.IndentedBlock) and len(block.body) == 1 and block.body[0] in self._emptied


@dataclass
class _BlockEdits:
    """What happens to statements when their block is rebuilt."""

    doomed: set[cst.CSTNode] = field(default_factory=set)  # dropped
    dissolved: set[cst.CSTNode] = field(default_factory=set)  # `try`s replaced by their own body
    trailing: dict[cst.CSTNode, list[cst.EmptyLine]] = field(default_factory=dict)  # lines for the next statement

    def apply(
        self, statements: Iterable[cst.BaseStatement]
    ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        """The block's new statements, and the comment lines left over after the last one."""
        kept: list[cst.BaseStatement] = []
        carried: list[cst.EmptyLine] = []
        for statement in statements:
            if statement in self.doomed:
                carried += statement.leading_lines
                continue
            lines_above = [*carried, *statement.leading_lines]
            if statement in self.dissolved:
                first, *rest = cst.ensure_type(cst.ensure_type(statement, cst.Try).body, cst.IndentedBlock).body
                kept += [first.with_changes(leading_lines=[*lines_above, *first.leading_lines]), *rest]
            else:
                kept.append(statement.with_changes(leading_lines=lines_above) if carried else statement)
            carried = list(self.trailing.get(statement, ()))
        return kept, carried


def drop_statements(
    statements: Iterable[cst.BaseStatement], doomed: Iterable[cst.CSTNode]
) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
    """`statements` without the `doomed` ones, whose comment lines move down to the next one kept;
    and the lines left over after the last one."""
    return _BlockEdits(doomed=set(doomed)).apply(statements)
