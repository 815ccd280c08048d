"""What a rule is: the base class every module in `transforms/` subclasses.

A rule is a LibCST visitor built from matchers. It never edits the tree itself: it calls
`self.report(node, message, fix=replacement)` and the engine decides whether to apply the
replacement (fix safety, suppression comments, `--unsafe`), applies it, adds the imports the
fix needs and verifies the result. One rule therefore stays a small, readable description of
"what is wrong here and what the right code looks like".
"""

from __future__ import annotations

import ast
import enum
import textwrap
from dataclasses import dataclass
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar, Union

import libcst as cst
import libcst.matchers as m
from libcst.metadata import (
    BaseMetadataProvider,
    CodeRange,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from unleak import matcher_dispatch
from unleak.knowledge.project import ProjectView
from unleak.settings import Settings

# Nodes whose first line is "the first line of the matched statement" for suppression comments.
_STATEMENT_LIKE = (cst.BaseStatement, cst.ExceptHandler, cst.ExceptStarHandler)

Replacement = Union[cst.CSTNode, cst.RemovalSentinel, cst.FlattenSentinel]

# LibCST's QualifiedNameProvider walks the whole module to store, for every node, what its scope
# says: `scope.get_qualified_names_for(node)`. A rule asks that of a few nodes, so rules resolve
# the scopes only and `Rule.get_metadata` asks the node's scope when a rule asks its names.
_ASKED_OF_SCOPES = {QualifiedNameProvider: ScopeProvider}
_MISSING = object()
T = TypeVar("T")


class FixSafety(str, enum.Enum):
    """How much a rule's fix can be trusted, as in ruff."""

    SAFE = "safe"  # keeps the meaning of correct programs; applied by default
    UNSAFE = "unsafe"  # may change an API or behaviour callers rely on; needs --unsafe
    DETECT = "detect"  # reports only, never edits


class SliceScope(str, enum.Enum):
    """How much of a module a rule must see (see `unleak.engine.slicing`).

    A rule may declare less than the whole module only if what it reports and fixes in a function
    (or class) does not depend on the module's other functions and classes beyond their names and
    kinds: not on their bodies, decorators or signatures, not on where else a module-level name
    is used (a binding's references, an import a fix may leave unused). A rule that needs every
    name the module uses, to pick a fresh one, asks `unleak.knowledge.analysis.names_in_module`,
    which sees the whole module.
    """

    WHOLE_MODULE = "module"  # the default: when unsure, the rule sees everything
    TOP_LEVEL_CLASS = "class"  # the enclosing top-level class whole (it looks at sibling methods)
    FUNCTION = "function"  # the enclosing top-level function or method, and the class's other statements
    # As FUNCTION for what it finds in functions; what it finds in module-level code may depend on
    # the uses of a module-level name anywhere, so a module where it may fire there goes whole.
    IN_FUNCTIONS = "in-functions"


@dataclass(frozen=True)
class ImportSpec:
    """An import a fix needs: `from module import name as alias` (or `import module`)."""

    module: str
    name: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class Valid:
    """An example the rule must leave alone: no finding, no change."""

    code: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", _dedent(self.code))


@dataclass(frozen=True)
class Invalid:
    """An example the rule must flag; `fixed` is the exact output (None: report only)."""

    code: str
    fixed: str | None = None
    unsafe: bool = False  # the fix only runs with --unsafe

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", _dedent(self.code))
        if self.fixed is not None:
            object.__setattr__(self, "fixed", _dedent(self.fixed))


def _dedent(code: str) -> str:
    """Examples are written indented inside the rule class; the leading newline is dropped."""
    return textwrap.dedent(code).lstrip("\n")


@dataclass(eq=False)
class Report:
    """One finding of one rule in one parse of a file (holds CST nodes: never leaves the worker)."""

    rule: type[Rule]
    node: cst.CSTNode
    message: str
    position: CodeRange
    statement_line: int  # first line of the enclosing statement, for suppression comments
    replacement: Replacement | None = None
    imports: tuple[ImportSpec, ...] = ()
    stale_imports: tuple[ImportSpec, ...] = ()  # imports the fix may leave unused: removed if so
    safety: FixSafety = FixSafety.DETECT


MethodsByMatcher = dict[m.BaseMatcherNode, tuple[str, ...]]


@dataclass(frozen=True)
class _DecoratedMethods:
    """A rule class's `@m.visit(...)` / `@m.leave(...)` methods, by name.

    LibCST's `MatcherDecoratableVisitor.__init__` finds them with `dir()` on every instance, which
    costs about 7 ms; the engine makes a rule object per file and per pass. What it finds depends
    only on the class, so the first instance of each class pays and later ones are set up from
    these names (`tests/test_rule_set_up.py` checks that both ways give the same object).
    """

    visit: MethodsByMatcher
    leave: MethodsByMatcher
    dispatching: bool  # see `unleak.matcher_dispatch`

    @classmethod
    def of(cls, rule: m.MatcherDecoratableVisitor) -> _DecoratedMethods:
        def names(found: dict[m.BaseMatcherNode, Sequence[Callable[..., object]]]) -> MethodsByMatcher:
            return {matcher: tuple(method.__name__ for method in methods) for matcher, methods in found.items()}

        return cls(names(rule._extra_visit_funcs), names(rule._extra_leave_funcs), matcher_dispatch.allows_dispatch(rule))

    def install(self, rule: m.MatcherDecoratableVisitor) -> None:
        """What `MatcherDecoratableVisitor.__init__` sets, without looking the methods up again."""
        cst.CSTVisitor.__init__(rule)
        rule._MatcherDecoratableVisitor__matchers = None  # type: ignore[attr-defined]
        rule._extra_visit_funcs = _bound(rule, self.visit)
        rule._extra_leave_funcs = _bound(rule, self.leave)


def _bound(rule: m.MatcherDecoratableVisitor, methods: MethodsByMatcher) -> dict[m.BaseMatcherNode, tuple[Callable[..., object], ...]]:
    return {matcher: tuple(getattr(rule, name) for name in names) for matcher, names in methods.items()}


_DECORATED_METHODS: dict[type, _DecoratedMethods] = {}


class Rule(m.MatcherDecoratableVisitor):
    """Base class of every rule. Subclasses set the class variables and call `report`.

    The module docstring of the rule's module is its documentation (`unleak explain`), written
    with ruff's sections: What it does / Why is this bad? / Example / Use instead / Fix safety.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    safety: ClassVar[FixSafety]
    summary: ClassVar[str]
    # Regular expressions over the file's bytes that must ALL occur for the rule to possibly fire.
    # Files where they don't are never parsed for this rule; keep them loose but cheap.
    trigger: ClassVar[tuple[bytes, ...]]
    # The `Settings` fields an overridden `trigger_for` reads. The registry reads `code`, `name`,
    # `trigger`, `uses_project` and this from the module's source, as literals written before the
    # class's first method, and imports the module for `trigger_for` only when one of these
    # fields is not the default.
    trigger_reads: ClassVar[tuple[str, ...]] = ()
    VALID: ClassVar[tuple[Valid, ...]] = ()
    INVALID: ClassVar[tuple[Invalid, ...]] = ()
    METADATA_DEPENDENCIES: ClassVar[tuple[type, ...]] = ()
    # Whether the rule asks the project index (`self.project`) about other modules; the engine
    # builds the index only for runs where such a rule may fire.
    uses_project: ClassVar[bool] = False
    # How much of the module the rule must see; anything less lets the engine slice the module.
    slice_scope: ClassVar[SliceScope] = SliceScope.WHOLE_MODULE

    def __init__(self, settings: Settings | None = None) -> None:
        decorated = _DECORATED_METHODS.get(type(self))
        if decorated is None:
            super().__init__()
            decorated = _DECORATED_METHODS[type(self)] = _DecoratedMethods.of(self)
        else:
            decorated.install(self)
        self._dispatching = decorated.dispatching
        self._visits_by_class: dict[str, matcher_dispatch.Tried] = {}
        self._leaves_by_class: dict[str, matcher_dispatch.Tried] = {}
        self.settings = settings or Settings()
        self.project = ProjectView.empty()  # what other modules declare; see `for_file`
        self.reports: list[Report] = []

    @classmethod
    def for_file(cls, settings: Settings, project: ProjectView) -> Rule:
        """The rule object for one visit of one file, under its settings and project index."""
        rule = cls(settings)
        rule.project = project
        return rule

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        needed = (PositionProvider, ParentNodeProvider, *cls.METADATA_DEPENDENCIES)
        cls.METADATA_DEPENDENCIES = tuple(dict.fromkeys(_ASKED_OF_SCOPES.get(provider, provider) for provider in needed))

    def get_metadata(self, key: type[BaseMetadataProvider[T]], node: cst.CSTNode, default: Any = _MISSING) -> T:
        """LibCST's `get_metadata`; a node's qualified names come from its scope (see `_ASKED_OF_SCOPES`)."""
        if key is QualifiedNameProvider:
            scope = super().get_metadata(ScopeProvider, node, _MISSING)
            if scope is not _MISSING:
                return scope.get_qualified_names_for(node)  # type: ignore[return-value]
            if default is _MISSING:
                raise KeyError(f"no qualified names for a node outside the module: {node!r}")
            return default
        return super().get_metadata(key, node) if default is _MISSING else super().get_metadata(key, node, default)

    def on_visit(self, node: cst.CSTNode) -> bool:
        """LibCST's `on_visit`, trying only the `@m.visit` matchers that can match `node`'s class."""
        if not self._dispatching:
            return super().on_visit(node)
        for matcher, methods in self._tried(self._visits_by_class, self._extra_visit_funcs, node):
            if self.matches(node, matcher):
                for method in methods:
                    method(node)
        return cst.CSTVisitor.on_visit(self, node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        """LibCST's `on_leave`, trying only the `@m.leave` matchers that can match the node's class."""
        if not self._dispatching:
            return super().on_leave(original_node)
        cst.CSTVisitor.on_leave(self, original_node)
        for matcher, methods in reversed(self._tried(self._leaves_by_class, self._extra_leave_funcs, original_node)):
            if self.matches(original_node, matcher):
                for method in methods:
                    method(original_node)

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if not self._dispatching:  # else the rule has no `visit_<Node>_<attribute>` method
            super().on_visit_attribute(node, attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        if not self._dispatching:  # else the rule has no `leave_<Node>_<attribute>` method
            super().on_leave_attribute(original_node, attribute)

    @staticmethod
    def _tried(
        by_class: dict[str, matcher_dispatch.Tried],
        decorated: dict[m.BaseMatcherNode, Sequence[Callable[..., None]]],
        node: cst.CSTNode,
    ) -> matcher_dispatch.Tried:
        node_class = type(node).__name__
        tried = by_class.get(node_class)
        if tried is None:
            tried = by_class[node_class] = matcher_dispatch.tried_on(node_class, decorated)
        return tried

    @classmethod
    def trigger_for(cls, settings: Settings) -> tuple[bytes, ...]:
        """The byte patterns under `settings`; a rule fed by configuration (resource pairs) extends them."""
        return cls.trigger

    @classmethod
    def could_fire_under(cls, tree: ast.Module, settings: Settings) -> bool:
        """`could_fire` under `settings`; a rule fed by configuration overrides this one instead."""
        return cls.could_fire(tree)

    @classmethod
    def could_fire_in(cls, tree: ast.Module, settings: Settings, project: ProjectView) -> bool:
        """`could_fire_under`, for a rule that also asks the project index (`uses_project`):
        a name imported from another module may be what the rule is about."""
        return cls.could_fire_under(tree, settings)

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """A cheap necessary condition on the stdlib AST, checked before the LibCST parse.

        Return False only where the rule surely cannot fire (see `unleak.knowledge.quickscan`); the
        default keeps every file that passed the byte trigger.
        """
        return True

    def report(
        self,
        node: cst.CSTNode,
        message: str | None = None,
        *,
        fix: Replacement | None = None,
        imports: tuple[ImportSpec, ...] = (),
        stale_imports: tuple[ImportSpec, ...] = (),
        safety: FixSafety | None = None,
    ) -> None:
        """Record a finding at `node`; `fix` replaces `node` when the engine applies it, adding
        `imports` and removing those of `stale_imports` that nothing uses any more."""
        fix_safety = safety or self.safety
        if fix is not None and fix_safety is FixSafety.DETECT:
            raise ValueError(f"{self.code} is detect-only but reported a fix")
        self.reports.append(
            Report(
                rule=type(self),
                node=node,
                message=message or self.summary,
                position=self.get_metadata(PositionProvider, node),
                statement_line=self._statement_line(node),
                replacement=fix,
                imports=imports if fix is not None else (),
                stale_imports=stale_imports if fix is not None else (),
                safety=fix_safety if fix is not None else FixSafety.DETECT,
            )
        )

    def _statement_line(self, node: cst.CSTNode) -> int:
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(current, _STATEMENT_LIKE):
            current = self.get_metadata(ParentNodeProvider, current, None)
        anchor = current if current is not None else node
        return self.get_metadata(PositionProvider, anchor).start.line
