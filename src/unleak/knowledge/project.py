"""The project index: what the modules of a project declare, looked up through a file's imports.

Rules see one file at a time, but real projects declare their models in `models.py` and their
session factories in `database.py`. The engine builds one `ProjectIndex` per project before the
per-file work (`unleak.engine.indexing`), from `ModuleFacts` read off the stdlib `ast`. A rule
asks its file's `ProjectView` (`self.project`) about a name as the file writes it (`Tenant`,
`models.Tenant`, `SessionLocal`); the view follows the file's imports, absolute, relative and
aliased, through re-exports, to the one declaration they reach.

A name that reaches two declarations, or none, is unknown: never guessed. Every answer says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, is_dataclass
from pathlib import PurePosixPath
from typing import Generic, Protocol, TypeVar, Union

from unleak.knowledge.declarations import (
    ClassFacts,
    Declaration,
    DeleteListener,
    FactoryFacts,
    FunctionFacts,
    ImportedName,
    ModuleFacts,
    Relationship,
)

# Re-exports and base classes are followed this deep; real chains are two or three long.
_MAX_DEPTH = 8

SESSION_CLASSES = {
    "sqlalchemy.orm.Session": False,
    "sqlalchemy.orm.session.Session": False,
    "sqlmodel.Session": False,
    "sqlalchemy.ext.asyncio.AsyncSession": True,
    "sqlalchemy.ext.asyncio.session.AsyncSession": True,
}
SESSION_FACTORIES = {
    "sqlalchemy.orm.sessionmaker": False,
    "sqlalchemy.orm.session.sessionmaker": False,
    "sqlalchemy.ext.asyncio.async_sessionmaker": True,
    "sqlalchemy.ext.asyncio.session.async_sessionmaker": True,
}
_SCOPED_SESSIONS = frozenset({"sqlalchemy.orm.scoped_session", "sqlalchemy.orm.scoping.scoped_session"})
CONTEXT_MANAGER_DECORATORS = {"contextlib.contextmanager": False, "contextlib.asynccontextmanager": True}
_DJANGO_MODEL = "django.db.models.Model"
_SQLMODEL = "sqlmodel.SQLModel"
_DJANGO_DEFAULT_KEY = "id"
_DJANGO_KEY_ALIAS = "pk"
# The questions a view records (see `ProjectView.used`).
_MODEL, _SESSION, _CONTEXT_MANAGER, _DELETE_LISTENERS = "model", "session", "context-manager", "delete-listeners"


# --- what a lookup answers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """An ORM model: where it is declared and the column sets the database keeps unique."""

    name: str
    path: str | None
    kind: str  # "sqlalchemy", "flask-sqlalchemy", "sqlmodel", "django"
    table: str | None
    primary_key: frozenset[str]
    unique: tuple[frozenset[str], ...]
    relationships: tuple[Relationship, ...]

    @property
    def unique_keys(self) -> tuple[frozenset[str], ...]:
        keys = (self.primary_key, *self.unique) if self.primary_key else self.unique
        if self.kind == "django" and self.primary_key:
            keys = (*keys, frozenset({_DJANGO_KEY_ALIAS}))
        return keys

    def unique_key_within(self, columns: Iterable[str]) -> frozenset[str] | None:
        """A unique key all of whose columns are among `columns` (the check compares them all)."""
        compared = frozenset(columns)
        return next((key for key in self.unique_keys if key and key <= compared), None)


@dataclass(frozen=True)
class SessionFactory:
    """A name whose call makes a SQLAlchemy session."""

    asynchronous: bool
    how: str  # "sessionmaker", "async_sessionmaker", "scoped_session", "function"
    path: str | None


@dataclass(frozen=True)
class ContextManagerFactory:
    """A `@contextmanager`/`@asynccontextmanager` function."""

    asynchronous: bool
    path: str | None
    session: SessionFactory | None  # what `with f() as x` binds, when it is a session


T = TypeVar("T")


@dataclass(frozen=True)
class Lookup(Generic[T]):
    """What a name is known to be (`found`), or why it is unknown (`reason`)."""

    found: T | None
    reason: str = ""

    @classmethod
    def unknown(cls, reason: str) -> Lookup[T]:
        return cls(None, reason)


# --- what a name resolves to inside the index ---------------------------------------------------


@dataclass(frozen=True)
class _Declared:
    declaration: Declaration
    module: ModuleFacts


@dataclass(frozen=True)
class _Module:
    module: ModuleFacts


@dataclass(frozen=True)
class _External:
    qualified: str  # a name from outside the project: `sqlalchemy.orm.sessionmaker`


@dataclass(frozen=True)
class _Unknown:
    reason: str


_Target = Union[_Declared, _Module, _External, _Unknown]


class ModuleSource(Protocol):
    """Where the index gets a project's module facts (`unleak.engine.indexing` reads them from
    disk, each the first time a lookup reaches it). Paths are posix, relative to the project root."""

    def facts(self, path: str) -> ModuleFacts | None:
        """The facts of the module at `path`; None when there is no such module, or it declares nothing."""

    def module_paths(self, dotted: str) -> tuple[str, ...]:
        """The files an absolute `import dotted` may load (more than one: ambiguous)."""

    def listening_modules(self) -> Iterator[ModuleFacts]:
        """The facts of every module that may declare a delete listener."""


@dataclass
class ProjectIndex:
    """One project's modules, seen through the imports of the file that asks."""

    source: ModuleSource | None = None

    def view(self, own: ModuleFacts) -> ProjectView:
        """What the file of `own` can see: its own declarations, and the project's through its imports."""
        return ProjectView(self, own)

    # -- resolution --

    def resolve(self, module: ModuleFacts, dotted: str, depth: int = 0) -> _Target:
        """What `dotted`, written in `module`, refers to."""
        head, *rest = dotted.split(".")
        target = self._binding(module, head, depth)
        for part in rest:
            target = self._member(target, part, depth)
        return target

    def _binding(self, module: ModuleFacts, name: str, depth: int) -> _Target:
        bindings = module.bindings.get(name, ())
        if not bindings:
            return _Unknown(f"`{name}` is neither declared nor imported in {_where(module)}")
        if depth > _MAX_DEPTH:
            return _Unknown(f"`{name}` is imported through too many modules")
        targets = list(dict.fromkeys(self._bound(module, binding, depth) for binding in bindings))
        if len(targets) == 1:
            return targets[0]
        places = sorted({_describe(target) for target in targets})
        return _Unknown(f"`{name}` is ambiguous: it may be {' or '.join(places)}")

    def _bound(self, module: ModuleFacts, binding: Declaration | ImportedName, depth: int) -> _Target:
        if not isinstance(binding, ImportedName):
            return _Declared(binding, module)
        found = self._modules_for(module.path, binding.level, binding.module)
        if binding.name is None:
            return found
        if isinstance(found, _Unknown):
            return self._imported_submodule(module, binding) or found
        return self._member(found, binding.name, depth + 1)

    def _imported_submodule(self, module: ModuleFacts, binding: ImportedName) -> _Module | None:
        """`from pkg.db import manager` where `pkg/db/__init__.py` declares nothing the index
        reads: the name is then the submodule `pkg/db/manager.py`, if the project has it."""
        dotted = ".".join(part for part in (binding.module, binding.name) if part)
        found = self._modules_for(module.path, binding.level, dotted)
        return found if isinstance(found, _Module) else None

    def _member(self, target: _Target, name: str, depth: int) -> _Target:
        if isinstance(target, _External):  # `from app import models` where `app/` has no indexed `__init__.py`
            return self._modules_for(None, 0, f"{target.qualified}.{name}")
        if not isinstance(target, _Module):
            return target if isinstance(target, _Unknown) else _Unknown(f"`{name}` is an attribute of a declaration")
        if name in target.module.bindings:
            return self._binding(target.module, name, depth + 1)
        submodule = self._submodule(target.module, name)
        return submodule or _Unknown(f"`{name}` is not declared in {_where(target.module)}")

    def _submodule(self, package: ModuleFacts, name: str) -> _Module | None:
        if package.path is None or not package.path.endswith("/__init__.py"):
            return None
        found = self._module_at(PurePosixPath(package.path).parent / name)
        return found if isinstance(found, _Module) else None

    def _module_at(self, base: PurePosixPath) -> _Module | _Unknown:
        """The module `base.py` or the package `base/__init__.py`."""
        for candidate in (f"{base}.py", f"{base}/__init__.py"):
            facts = self.source.facts(candidate) if self.source is not None else None
            if facts is not None:
                return _Module(facts)
        return _Unknown(f"`{base}` is no module that declares what unleak looks for")

    def _modules_for(self, importer: str | None, level: int, dotted: str) -> _Target:
        if level:
            return self._relative(importer, level, dotted)
        paths = self.source.module_paths(dotted) if self.source is not None else ()
        if not paths:
            return _External(dotted)
        if len(paths) > 1:
            return _Unknown(f"module `{dotted}` is ambiguous: {' or '.join(sorted(paths))}")
        facts = self.source.facts(paths[0]) if self.source is not None else None
        return _Module(facts) if facts is not None else _Unknown(f"{paths[0]} declares nothing unleak looks for")

    def _relative(self, importer: str | None, level: int, dotted: str) -> _Target:
        parents = PurePosixPath(importer).parents if importer is not None else ()
        if len(parents) < level:
            return _Unknown(f"`{'.' * level}{dotted}` leaves the project")
        folder = parents[level - 1]
        return self._module_at(folder.joinpath(*dotted.split(".")) if dotted else folder)

    # -- what a resolved declaration is --

    def model(self, target: _Target, depth: int = 0) -> Lookup[Model]:
        if isinstance(target, _Unknown):
            return Lookup.unknown(target.reason)
        if not isinstance(target, _Declared) or not isinstance(target.declaration, ClassFacts):
            return Lookup.unknown(f"it is not a class declared in the project ({_describe(target)})")
        merged = self._with_bases(target.declaration, target.module, depth)
        kind = self._model_kind(merged, target.module)
        if kind is None:
            return Lookup.unknown(f"{_describe(target)} maps no table unleak can see")
        primary_key = frozenset(merged.primary_key)
        if kind == "django" and not primary_key:
            primary_key = frozenset({_DJANGO_DEFAULT_KEY})
        return Lookup(
            Model(
                name=merged.declaration.name,
                path=target.module.path,
                kind=kind,
                table=merged.declaration.table or merged.inherited_table,
                primary_key=primary_key,
                unique=tuple(merged.unique),
                relationships=tuple(merged.relationships),
            )
        )

    def _with_bases(self, declaration: ClassFacts, module: ModuleFacts, depth: int) -> _Merged:
        merged = _Merged(declaration)
        if depth > _MAX_DEPTH:
            return merged
        for base in declaration.bases:
            target = self.resolve(module, base)
            if isinstance(target, _External):
                merged.external_bases.add(target.qualified)
            elif isinstance(target, _Declared) and isinstance(target.declaration, ClassFacts):
                merged.absorb(self._with_bases(target.declaration, target.module, depth + 1))
            merged.base_names.add(base)
        return merged

    def _model_kind(self, merged: _Merged, module: ModuleFacts) -> str | None:
        if _DJANGO_MODEL in merged.external_bases or any(b.endswith("models.Model") for b in merged.external_bases):
            return "django"
        if _SQLMODEL in merged.external_bases:
            return "sqlmodel" if merged.declaration.table_keyword else None
        if not merged.maps_columns:
            return None
        if any(base.rsplit(".", 1)[-1] == "Model" and "." in base for base in merged.base_names):
            return "flask-sqlalchemy"  # `db.Model`
        return "sqlalchemy"

    def session_factory(self, target: _Target, depth: int = 0) -> Lookup[SessionFactory]:
        if isinstance(target, _Unknown):
            return Lookup.unknown(target.reason)
        if isinstance(target, _External):
            if target.qualified in SESSION_CLASSES:
                return Lookup(SessionFactory(SESSION_CLASSES[target.qualified], "Session", None))
            return Lookup.unknown(f"`{target.qualified}` is not a session factory")
        if not isinstance(target, _Declared) or depth > _MAX_DEPTH:
            return Lookup.unknown(f"{_describe(target)} is not a session factory")
        declaration, module = target.declaration, target.module
        if isinstance(declaration, FactoryFacts):
            return self._factory(declaration, module)
        if isinstance(declaration, FunctionFacts):
            return self._sessions_from(declaration.returns, declaration, module, depth)
        return Lookup.unknown(f"{_describe(target)} is not a session factory")

    def _factory(self, declaration: FactoryFacts, module: ModuleFacts) -> Lookup[SessionFactory]:
        callee = self.resolve(module, declaration.callee)
        qualified = callee.qualified if isinstance(callee, _External) else None
        if qualified in _SCOPED_SESSIONS:
            inner = self.resolve(module, declaration.wraps) if declaration.wraps else None
            if isinstance(inner, _External) and inner.qualified in SESSION_FACTORIES:
                return Lookup(SessionFactory(bool(declaration.asynchronous), "scoped_session", module.path))
            return Lookup.unknown(f"`{declaration.name}` is a scoped_session of something unleak cannot see")
        if qualified in SESSION_FACTORIES:
            how = qualified.rsplit(".", 1)[-1]
            return Lookup(SessionFactory(bool(declaration.asynchronous), how, module.path))
        return Lookup.unknown(f"`{declaration.callee}` in {_where(module)} is not SQLAlchemy's sessionmaker")

    def _sessions_from(
        self, sources: tuple[str, ...], function: FunctionFacts, module: ModuleFacts, depth: int
    ) -> Lookup[SessionFactory]:
        """The one kind of session the callees `sources` (returned or yielded by `function`) make."""
        kinds = set()
        for source in sources:
            found = self.session_factory(self.resolve(module, source), depth + 1).found
            if found is not None:
                kinds.add(found.asynchronous)
        if len(kinds) != 1:
            return Lookup.unknown(f"`{function.name}` does not hand out one kind of session")
        return Lookup(SessionFactory(kinds.pop(), "function", module.path))

    def context_manager(self, target: _Target) -> Lookup[ContextManagerFactory]:
        if isinstance(target, _Unknown):
            return Lookup.unknown(target.reason)
        if not isinstance(target, _Declared) or not isinstance(target.declaration, FunctionFacts):
            return Lookup.unknown(f"{_describe(target)} is not a function declared in the project")
        for decorator in target.declaration.decorators:
            resolved = self.resolve(target.module, decorator)
            if isinstance(resolved, _External) and resolved.qualified in CONTEXT_MANAGER_DECORATORS:
                session = self._sessions_from(target.declaration.yields, target.declaration, target.module, 0).found
                asynchronous = CONTEXT_MANAGER_DECORATORS[resolved.qualified]
                return Lookup(ContextManagerFactory(asynchronous, target.module.path, session))
        return Lookup.unknown(f"`{target.declaration.name}` is not decorated @contextmanager")

    def delete_listeners(self, path: str | None, name: str) -> list[DeleteListener]:
        """The `before_delete`/`after_delete` (Django: `pre_delete`/`post_delete`) listeners on the
        model `name` declared in `path`."""
        found = []
        for module in self.source.listening_modules() if self.source is not None else ():
            for listener in module.listeners:
                target = self.resolve(module, listener.model)
                if isinstance(target, _Declared) and target.declaration.name == name and target.module.path == path:
                    found.append(listener)
        return found


@dataclass
class _Merged:
    """A class's own facts together with those of the project classes it inherits from."""

    declaration: ClassFacts
    columns: set[str] = field(default_factory=set)
    primary_key: set[str] = field(default_factory=set)
    unique: list[frozenset[str]] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    external_bases: set[str] = field(default_factory=set)
    base_names: set[str] = field(default_factory=set)
    inherited_table: str | None = None

    def __post_init__(self) -> None:
        own = self.declaration
        self.columns |= own.columns
        self.primary_key |= own.primary_key
        self.unique.extend(own.unique)
        self.relationships.extend(own.relationships)

    @property
    def maps_columns(self) -> bool:
        return bool(self.columns or self.declaration.table or self.inherited_table or self.declaration.table_keyword)

    def absorb(self, base: _Merged) -> None:
        self.columns |= base.columns
        if not self.declaration.primary_key:
            self.primary_key |= base.primary_key
        self.unique.extend(key for key in base.unique if key not in self.unique)
        self.relationships.extend(base.relationships)
        self.external_bases |= base.external_bases
        self.base_names |= base.base_names
        self.inherited_table = self.inherited_table or base.declaration.table or base.inherited_table


@dataclass
class ProjectView:
    """The project as one file sees it. `used` records every name asked about, with the answer."""

    index: ProjectIndex
    own: ModuleFacts
    used: dict[tuple[str, str], str] = field(default_factory=dict)
    # A sliced run (see `unleak.engine.slicing`): every name the definitions it dropped use,
    # worked out when a rule first asks.
    names_outside_slice: Callable[[], frozenset[str]] = frozenset

    @classmethod
    def empty(cls) -> ProjectView:
        return cls(ProjectIndex(), ModuleFacts(None))

    def model(self, dotted: str) -> Lookup[Model]:
        """The ORM model `dotted` (as this file writes it) names."""
        return self._recorded(_MODEL, dotted, self.index.model(self.index.resolve(self.own, dotted)))

    def session_factory(self, dotted: str) -> Lookup[SessionFactory]:
        """Whether calling `dotted` makes a SQLAlchemy session, and of which kind."""
        return self._recorded(_SESSION, dotted, self.index.session_factory(self.index.resolve(self.own, dotted)))

    def context_manager(self, dotted: str) -> Lookup[ContextManagerFactory]:
        """Whether `dotted` is a `@contextmanager`/`@asynccontextmanager` function."""
        return self._recorded(_CONTEXT_MANAGER, dotted, self.index.context_manager(self.index.resolve(self.own, dotted)))

    def delete_listeners(self, model: Model) -> list[DeleteListener]:
        """The delete listeners the project declares on `model`."""
        return self._delete_listeners(f"{model.path or ''}:{model.name}")

    def _delete_listeners(self, where: str) -> list[DeleteListener]:
        path, name = where.rsplit(":", 1)
        listeners = self.index.delete_listeners(path or None, name)
        self.used[(_DELETE_LISTENERS, where)] = stable_repr(listeners)
        return listeners

    def still_answers(self, used: dict[tuple[str, str], str]) -> bool:
        """Whether every question in `used` (an earlier view's record) gets the same answer now."""
        ask = {
            _MODEL: self.model,
            _SESSION: self.session_factory,
            _CONTEXT_MANAGER: self.context_manager,
            _DELETE_LISTENERS: self._delete_listeners,
        }
        return all(
            question in ask and stable_repr(ask[question](name)) == answer for (question, name), answer in used.items()
        )

    def _recorded(self, question: str, dotted: str, answer: Lookup[T]) -> Lookup[T]:
        self.used[(question, dotted)] = stable_repr(answer)
        return answer


def stable_repr(value: object) -> str:
    """`repr`, with sets in sorted order: the same in every process (string hashes are salted)."""
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(map(stable_repr, value))) + "}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(map(stable_repr, value)) + ")"
    if is_dataclass(value) and not isinstance(value, type):
        fields_ = ", ".join(f"{name}={stable_repr(item)}" for name, item in vars(value).items())
        return f"{type(value).__name__}({fields_})"
    return repr(value)


def _where(module: ModuleFacts) -> str:
    return module.path or "this file"


def _describe(target: _Target) -> str:
    if isinstance(target, _Declared):
        return f"`{target.declaration.name}` in {_where(target.module)}"
    if isinstance(target, _Module):
        return f"module {_where(target.module)}"
    if isinstance(target, _External):
        return f"`{target.qualified}`"
    return target.reason
