"""What one module declares that other modules ask about, read off CPython's `ast` tree.

The project index (`unleak.knowledge.project`) is built from these facts, one `ModuleFacts` per
file. Nothing here follows an import into another file: a class's bases, a factory's callee and
a listener's model are kept as the dotted names the module writes, and the index resolves them
when a rule asks. Everything is plain frozen data, so the index pickles cheaply to the workers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

from unleak.knowledge.quickscan import called_name, dotted_name, own_nodes

# Calls that declare a mapped column, by their last name (`Column`, `db.Column`, `sa.Column`,
# `mapped_column`, SQLModel's `Field`, Django's `models.CharField`...).
_COLUMN_CALLS = frozenset({"Column", "mapped_column", "Field"})
_RELATIONSHIP_CALLS = frozenset({"relationship", "ForeignKey", "OneToOneField", "ManyToManyField"})
_DJANGO_FIELD_SUFFIX = "Field"
_SESSION_FACTORY_CALLS = {"sessionmaker": False, "async_sessionmaker": True}
_ASYNC_SESSION_CLASSES = frozenset({"AsyncSession"})
_SCOPED = "scoped_session"
_CONTEXT_MANAGERS = {"contextmanager": False, "asynccontextmanager": True}
DELETE_EVENTS = frozenset({"before_delete", "after_delete", "pre_delete", "post_delete"})


@dataclass(frozen=True)
class ImportedName:
    """`from module import name` (name None: `import module`, which binds the module itself)."""

    module: str
    level: int  # 0: absolute; 1: `from .`, 2: `from ..`
    name: str | None


@dataclass(frozen=True)
class Relationship:
    attribute: str
    target: str | None  # the related model as written (`"Address"`, `Address`)
    cascade: str | None  # SQLAlchemy's `cascade="all, delete-orphan"`, Django's `on_delete` (`CASCADE`)


@dataclass(frozen=True)
class ClassFacts:
    """A class, with what its own body says about the table it may map."""

    name: str
    bases: tuple[str, ...]  # dotted names as written
    table: str | None = None  # `__tablename__`, Django's `Meta.db_table`
    table_keyword: bool = False  # SQLModel's `class Hero(SQLModel, table=True)`
    columns: frozenset[str] = frozenset()
    primary_key: frozenset[str] = frozenset()
    unique: tuple[frozenset[str], ...] = ()  # `unique=True` columns, `UniqueConstraint`, unique `Index`
    relationships: tuple[Relationship, ...] = ()

    @property
    def maps_columns(self) -> bool:
        return bool(self.columns or self.table or self.table_keyword)


@dataclass(frozen=True)
class FactoryFacts:
    """`SessionLocal = sessionmaker(...)`: calling the name makes a session."""

    name: str
    callee: str  # `sessionmaker`, `orm.sessionmaker`, `scoped_session` ... as written
    asynchronous: bool | None  # None: decided by what the callee resolves to
    wraps: str | None = None  # `scoped_session(sessionmaker(...))`: the inner callee


@dataclass(frozen=True)
class FunctionFacts:
    """A module-level function: whether it is a context-manager factory, and what session it hands out."""

    name: str
    asynchronous: bool
    decorators: tuple[str, ...]  # dotted names as written
    returns: tuple[str, ...]  # callees whose result it returns (`SessionLocal`, `Session`)
    yields: tuple[str, ...]  # callees whose result it yields (a generator: a dependency or context manager)


@dataclass(frozen=True)
class DeleteListener:
    model: str  # as written in the module (`User`, `models.User`)
    event: str


Declaration = Union[ClassFacts, FactoryFacts, FunctionFacts]
Binding = Union[Declaration, ImportedName]


@dataclass(frozen=True, eq=False)  # compared by identity: one object per file
class ModuleFacts:
    path: str | None  # posix path of the file (None: a source without a file)
    bindings: dict[str, tuple[Binding, ...]] = field(default_factory=dict)  # module-level names
    listeners: tuple[DeleteListener, ...] = ()


def module_facts(tree: ast.Module, path: str | None) -> ModuleFacts:
    """The module-level imports and declarations of `tree`."""
    bindings: dict[str, list[Binding]] = {}
    listeners: list[DeleteListener] = []
    statements = list(_module_level(tree.body))
    aliases = {  # `from sqlalchemy.orm import sessionmaker as maker`: maker -> sessionmaker
        alias.asname: alias.name
        for statement in statements
        if isinstance(statement, ast.ImportFrom)
        for alias in statement.names
        if alias.asname
    }
    for statement in statements:
        for name, binding in _bindings_of(statement, aliases):
            bindings.setdefault(name, []).append(binding)
        listeners.extend(_listeners_of(statement))
    return ModuleFacts(path, {name: tuple(found) for name, found in bindings.items()}, tuple(listeners))


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at import time: the body, and the blocks of `if`/`try` at top level."""
    for statement in body:
        yield statement
        if isinstance(statement, (ast.If, ast.Try)):
            blocks = [statement.body, statement.orelse]
            if isinstance(statement, ast.Try):
                blocks += [handler.body for handler in statement.handlers] + [statement.finalbody]
            for block in blocks:
                yield from _module_level(block)


def _bindings_of(statement: ast.stmt, aliases: dict[str, str]) -> Iterator[tuple[str, Binding]]:
    if isinstance(statement, ast.Import):
        for alias in statement.names:
            if alias.asname:
                yield alias.asname, ImportedName(alias.name, 0, None)
            else:
                head = alias.name.split(".")[0]
                yield head, ImportedName(head, 0, None)
    elif isinstance(statement, ast.ImportFrom):
        for alias in statement.names:
            if alias.name != "*":
                yield alias.asname or alias.name, ImportedName(statement.module or "", statement.level, alias.name)
    elif isinstance(statement, ast.ClassDef):
        yield statement.name, _class_facts(statement)
    elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        yield statement.name, _function_facts(statement)
    elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        if isinstance(target, ast.Name) and (factory := _factory_facts(target.id, statement.value, aliases)) is not None:
            yield target.id, factory
    elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value:
        if (factory := _factory_facts(statement.target.id, statement.value, aliases)) is not None:
            yield statement.target.id, factory


# --- classes ------------------------------------------------------------------------------------


def _class_facts(node: ast.ClassDef) -> ClassFacts:
    columns: set[str] = set()
    primary_key: set[str] = set()
    unique: list[frozenset[str]] = []
    relationships: list[Relationship] = []
    table: str | None = None
    for name, value in _class_assignments(node.body):
        if name == "__tablename__" and isinstance(value, ast.Constant) and isinstance(value.value, str):
            table = value.value
        elif name == "__table_args__":
            unique.extend(_table_arg_keys(value))
        elif isinstance(value, ast.Call):
            kind = called_name(value)
            if kind in _RELATIONSHIP_CALLS:
                relationships.append(Relationship(name, _first_argument(value), _cascade(value)))
            if kind in _COLUMN_CALLS or _is_django_field(kind):
                columns.add(name)
                if _keyword_is_true(value, "primary_key"):
                    primary_key.add(name)
                if _keyword_is_true(value, "unique"):
                    unique.append(frozenset({name}))
        elif value is None:  # `name: Mapped[str]`
            columns.add(name)
    meta = _django_meta(node.body)
    return ClassFacts(
        name=node.name,
        bases=tuple(dotted for base in node.bases if (dotted := dotted_name(base)) is not None),
        table=table or meta.table,
        table_keyword=any(k.arg == "table" and _is_true(k.value) for k in node.keywords),
        columns=frozenset(columns),
        primary_key=frozenset(primary_key),
        unique=tuple(unique + meta.unique),
        relationships=tuple(relationships),
    )


def _class_assignments(body: list[ast.stmt]) -> Iterator[tuple[str, ast.expr | None]]:
    for statement in body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
            yield statement.targets[0].id, statement.value
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            yield statement.target.id, statement.value


def _is_django_field(kind: str | None) -> bool:
    return kind is not None and kind.endswith(_DJANGO_FIELD_SUFFIX) and kind[:1].isupper()


def _table_arg_keys(value: ast.expr) -> list[frozenset[str]]:
    """`UniqueConstraint("a", "b")` and `Index("ix", "a", "b", unique=True)` in `__table_args__`."""
    keys = []
    for call in (node for node in ast.walk(value) if isinstance(node, ast.Call)):
        kind = called_name(call)
        if kind == "UniqueConstraint":
            names = _string_arguments(call.args)
        elif kind == "Index" and _keyword_is_true(call, "unique"):
            names = _string_arguments(call.args[1:])
        else:
            continue
        if names:
            keys.append(frozenset(names))
    return keys


@dataclass(frozen=True)
class _DjangoMeta:
    table: str | None = None
    unique: list[frozenset[str]] = field(default_factory=list)


def _django_meta(body: list[ast.stmt]) -> _DjangoMeta:
    """`class Meta:` with `db_table`, `unique_together` and `constraints = [UniqueConstraint(fields=...)]`."""
    meta = next((s for s in body if isinstance(s, ast.ClassDef) and s.name == "Meta"), None)
    if meta is None:
        return _DjangoMeta()
    table: str | None = None
    unique: list[frozenset[str]] = []
    for name, value in _class_assignments(meta.body):
        if name == "db_table" and isinstance(value, ast.Constant) and isinstance(value.value, str):
            table = value.value
        elif name == "unique_together" and isinstance(value, (ast.Tuple, ast.List)):
            groups = value.elts if all(isinstance(e, (ast.Tuple, ast.List)) for e in value.elts) else [value]
            unique.extend(frozenset(names) for group in groups if (names := _string_arguments(group.elts)))  # type: ignore[attr-defined]
        elif name == "constraints" and value is not None:
            for call in (node for node in ast.walk(value) if isinstance(node, ast.Call)):
                fields = next((k.value for k in call.keywords if k.arg == "fields"), None)
                conditional = any(k.arg == "condition" for k in call.keywords)
                if called_name(call) == "UniqueConstraint" and isinstance(fields, (ast.Tuple, ast.List)) and not conditional:
                    if names := _string_arguments(fields.elts):
                        unique.append(frozenset(names))
    return _DjangoMeta(table, unique)


def _cascade(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == "cascade" and isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
            return keyword.value.value
        if keyword.arg == "on_delete":
            return dotted_name(keyword.value)
    return None


def _first_argument(call: ast.Call) -> str | None:
    if not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return dotted_name(first)


# --- session factories and functions ------------------------------------------------------------


def _factory_facts(name: str, value: ast.expr, aliases: dict[str, str]) -> FactoryFacts | None:
    """`sessionmaker(...)`, `async_sessionmaker(...)`, `scoped_session(sessionmaker(...))`
    (under any alias the module imports them as; the index checks where they come from)."""
    if not isinstance(value, ast.Call) or (callee := dotted_name(value.func)) is None:
        return None
    kind = _unaliased(callee, aliases).rsplit(".", 1)[-1]
    if kind == _SCOPED:
        inner = value.args[0] if value.args else None
        wrapped = _factory_facts(name, inner, aliases) if inner is not None else None
        return FactoryFacts(name, callee, wrapped.asynchronous if wrapped else False, wraps=wrapped.callee if wrapped else None)
    if kind not in _SESSION_FACTORY_CALLS:
        return None
    session_class = next((dotted_name(k.value) for k in value.keywords if k.arg == "class_"), None) or ""
    asynchronous = _SESSION_FACTORY_CALLS[kind] or _unaliased(session_class, aliases).rsplit(".", 1)[-1] in _ASYNC_SESSION_CLASSES
    return FactoryFacts(name, callee, asynchronous)


def _unaliased(dotted: str, aliases: dict[str, str]) -> str:
    head, dot, rest = dotted.partition(".")
    return aliases.get(head, head) + dot + rest


def _function_facts(node: ast.FunctionDef | ast.AsyncFunctionDef) -> FunctionFacts:
    handed_out = _handed_out_callees(node)
    return FunctionFacts(
        name=node.name,
        asynchronous=isinstance(node, ast.AsyncFunctionDef),
        decorators=tuple(dotted for d in node.decorator_list if (dotted := dotted_name(d)) is not None),
        returns=handed_out[ast.Return],
        yields=handed_out[ast.Yield],
    )


def _handed_out_callees(function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[type[ast.AST], tuple[str, ...]]:
    """The callees whose result `function` returns (`ast.Return`) and yields (`ast.Yield`):
    `return SessionLocal()`, `db = SessionLocal(); yield db`, `with Session(engine) as s: yield s`.
    One walk of the function: every module-level function of every file gets here."""
    made_by: dict[str, str] = {}
    handing: list[ast.Return | ast.Yield] = []
    for node in own_nodes(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if isinstance(node.value, ast.Call) and (callee := dotted_name(node.value.func)):
                made_by[node.targets[0].id] = callee
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if isinstance(item.optional_vars, ast.Name) and isinstance(item.context_expr, ast.Call):
                    if callee := dotted_name(item.context_expr.func):
                        made_by[item.optional_vars.id] = callee
        elif isinstance(node, (ast.Return, ast.Yield)):
            handing.append(node)
    found: dict[type[ast.AST], dict[str, None]] = {ast.Return: {}, ast.Yield: {}}
    for node in handing:
        handed = node.value
        if isinstance(handed, ast.Call) and (callee := dotted_name(handed.func)):
            found[type(node)][callee] = None
        elif isinstance(handed, ast.Name) and handed.id in made_by:
            found[type(node)][made_by[handed.id]] = None
    return {how: tuple(callees) for how, callees in found.items()}


def _listeners_of(statement: ast.stmt) -> Iterator[DeleteListener]:
    """`@event.listens_for(User, "before_delete")` on a function, `event.listen(User, "after_delete", f)`,
    and Django's `@receiver(pre_delete, sender=User)`."""
    calls: list[ast.Call] = []
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        calls = [d for d in statement.decorator_list if isinstance(d, ast.Call)]
    elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        calls = [statement.value]
    for call in calls:
        kind = called_name(call)
        if kind in ("listens_for", "listen") and len(call.args) >= 2:
            event = call.args[1]
            if isinstance(event, ast.Constant) and event.value in DELETE_EVENTS and (model := dotted_name(call.args[0])):
                yield DeleteListener(model, str(event.value))
        elif kind == "receiver" and call.args and (event_name := dotted_name(call.args[0])):
            sender = next((dotted_name(k.value) for k in call.keywords if k.arg == "sender"), None)
            if event_name.rsplit(".", 1)[-1] in DELETE_EVENTS and sender:
                yield DeleteListener(sender, event_name.rsplit(".", 1)[-1])


# --- small ast helpers --------------------------------------------------------------------------


def _keyword_is_true(call: ast.Call, keyword: str) -> bool:
    return any(k.arg == keyword and _is_true(k.value) for k in call.keywords)


def _is_true(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _string_arguments(nodes: list[ast.expr]) -> list[str]:
    """The strings among `nodes`, or [] when any of them is something else."""
    strings = [node.value for node in nodes if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return strings if len(strings) == len(nodes) else []
