'''UL204 orm-object-to-background-task

## What it does
Reports an ORM object or the request's database session handed to work that runs later:
FastAPI/Starlette `background_tasks.add_task(f, ...)` and Celery `task.delay(...)` /
`task.apply_async(args=[...], kwargs={...})`. Detect only: the fix is to pass the id and load
the object in a session the task opens itself.

What counts as the session, in the calling function: a parameter annotated SQLAlchemy's
`Session`/`AsyncSession` (resolved by qualified name, `Annotated[Session, ...]` too) or whose
default is `Depends(get_db)`-like (a dependency whose name mentions `db` or `session`); a name
assigned once from a session call (as in UL203: `Session(engine)`, a module's `sessionmaker`,
or a `...SessionLocal()`-like call the function then runs a transaction method on); and
Flask-SQLAlchemy's `db.session` (`db` imported, or assigned `SQLAlchemy(...)` at module level).
What counts as an ORM object: a name assigned once in the function and either passed to
`<session>.add(name)`, or assigned from `<session>.get(Model, key)`,
`<session>.query(Model)...first()` (also `.one()`, `.one_or_none()`, `.get(key)`,
`.scalar_one()`, `.scalar_one_or_none()`, `first_or_404()`...), `<session>.scalars(select(Model))
...first()`, `<session>.execute(select(Model))...scalar_one()` or Flask-SQLAlchemy's
`Model.query...first()` -- where `Model` is a plain name (a column query such as
`query(Model.name)` or `func.count()` gives plain values). Attributes (`incident.id`), literals,
dicts and names assigned otherwise are never reported. The receiver of `add_task` must be a
parameter annotated `BackgroundTasks`, a name assigned `BackgroundTasks()`, or named
`background_tasks`; `delay`/`apply_async` are reported on any receiver, since the argument
itself has to be a session or an ORM object.

## Why is this bad?
Background tasks run after the response is sent, when the request's session is already closed:
the ORM object is detached, and touching an unloaded attribute raises `DetachedInstanceError`
(a 500 in production, seed 003 #1); the session itself is closed or, worse, used by two
threads at once. A Celery task gets a pickled copy -- or a serialization error.

## Example
```python
def report_incident(payload, background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
    incident = Incident(**payload)
    db.add(incident)
    db.commit()
    background_tasks.add_task(analyze_incident, incident, db)
```

## Use instead
```python
def report_incident(payload, background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
    incident = Incident(**payload)
    db.add(incident)
    db.commit()
    background_tasks.add_task(analyze_incident_by_id, incident.id)


def analyze_incident_by_id(incident_id: int) -> None:
    with SessionLocal() as db:
        analyze_incident(db.get(Incident, incident_id), db)
```

## Fix safety
Detect only: the task's signature has to change with the call, and it must open its own
session. The rule does not follow objects into containers (`[incident]`), attributes
(`self.incident`) or other functions.

The byte trigger is a call of `.add_task(`, `.delay(` or `.apply_async(`; `could_fire` keeps only
files where such a call hands over a `<name>.session`, or a bare name that its function binds
once: a parameter annotated `Session`/`AsyncSession` (under any name imported for them) or
depending on a session, a value that may make a session or fetch one object, or a name passed
to `.add(...)`.
'''

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import (
    Assignment,
    BaseAssignment,
    GlobalScope,
    ImportAssignment,
    ParentNodeProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from unleak.knowledge import quickscan
from unleak.knowledge.analysis import calls_method, qualified_names
from unleak.rule import FixSafety, Invalid, Rule, SliceScope, Valid
from unleak.knowledge.project import ProjectView
from unleak.knowledge.sessions import SESSION_CLASSES, SESSION_LIKE_CALLEE, TRANSACTION_METHODS, session_call
from unleak.settings import Settings

_SCHEDULERS = ("add_task", "delay", "apply_async")
_BACKGROUND_TASKS = "BackgroundTasks"
# `.first()` and friends return one mapped object when the query selects a model.
_ONE_OBJECT = frozenset(
    {"first", "one", "one_or_none", "get", "scalar_one", "scalar_one_or_none"}
    | {"first_or_404", "one_or_404", "get_or_404"}  # Flask-SQLAlchemy
)
_SESSION_DEPENDENCY = re.compile(r"db|session", re.IGNORECASE)

_SCHEDULING_CALL = m.Call(func=m.Attribute(attr=m.OneOf(*(m.Name(method) for method in _SCHEDULERS))))


class OrmObjectToBackgroundTask(Rule):
    code = "UL204"
    name = "orm-object-to-background-task"
    safety = FixSafety.DETECT
    summary = "ORM object or database session handed to a background task"
    trigger = (rb"\.(?:add_task|delay|apply_async)\s*\(",)
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)
    uses_project = True
    slice_scope = SliceScope.IN_FUNCTIONS

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """For any project: every callee may be a session factory it knows."""
        return _could_fire(tree, lambda callee: True)

    @classmethod
    def could_fire_in(cls, tree: ast.Module, settings: Settings, project: ProjectView) -> bool:
        return _could_fire(tree, lambda callee: project.session_factory(callee).found is not None)

    @m.visit(_SCHEDULING_CALL)
    def flag_handed_over(self, node: cst.Call) -> None:
        method = cst.ensure_type(node.func, cst.Attribute)
        if method.attr.value == "add_task" and not self._is_background_tasks(method.value):
            return
        problems = [problem for value in _handed_values(node) if (problem := self._problem(value)) is not None]
        if problems:
            self.report(node, f"{self.summary}: {'; '.join(problems)}; pass ids and open a session in the task")

    def _problem(self, value: cst.BaseExpression) -> str | None:
        written = cst.Module([]).code_for_node(value)
        if self._is_session(value):
            return f"`{written}` is a database session that will be closed by the time the task runs"
        if isinstance(value, cst.Name) and self._is_orm_object(value):
            return f"`{written}` is an ORM object that will be detached: pass `{written}.id`"
        return None

    # --- the receiver of add_task ----------------------------------------------------------------

    def _is_background_tasks(self, receiver: cst.BaseExpression) -> bool:
        if not isinstance(receiver, cst.Name):
            return False
        if receiver.value == "background_tasks":
            return True
        origin = self._local_origin(receiver)
        if isinstance(origin, cst.Param):
            return origin.annotation is not None and _last_name(origin.annotation.annotation) == _BACKGROUND_TASKS
        return isinstance(origin, cst.Call) and _last_name(origin.func) == _BACKGROUND_TASKS

    # --- what the arguments are ------------------------------------------------------------------

    def _is_session(self, value: cst.BaseExpression) -> bool:
        if m.matches(value, m.Attribute(value=m.Name(), attr=m.Name("session"))):
            return self._is_flask_sqlalchemy(cst.ensure_type(cst.ensure_type(value, cst.Attribute).value, cst.Name))
        if not isinstance(value, cst.Name):
            return False
        origin = self._local_origin(value)
        if isinstance(origin, cst.Param):
            return self._is_session_parameter(origin)
        if not isinstance(origin, cst.Call):
            return False
        kind = session_call(self, origin)
        if kind is None:
            return False
        return kind.resolved or any(calls_method(self, use, TRANSACTION_METHODS) for use in self._uses(value))

    def _is_session_parameter(self, param: cst.Param) -> bool:
        annotation = param.annotation.annotation if param.annotation is not None else None
        dependencies = [param.default] if param.default is not None else []
        if isinstance(annotation, cst.Subscript) and _last_name(annotation.value) == "Annotated":
            elements = [element.slice for element in annotation.slice if isinstance(element.slice, cst.Index)]
            annotation = elements[0].value if elements else None
            dependencies += [element.value for element in elements[1:]]
        if annotation is not None and not qualified_names(self, annotation).isdisjoint(SESSION_CLASSES):
            return True
        return any(_is_session_dependency(dependency) for dependency in dependencies)

    def _is_flask_sqlalchemy(self, name: cst.Name) -> bool:
        """`db` in `db.session`: imported, or assigned `SQLAlchemy(...)` at module level (never a local)."""
        assignments = list(self.get_metadata(ScopeProvider, name)[name.value])
        if not assignments or not all(isinstance(assignment.scope, GlobalScope) for assignment in assignments):
            return False
        return all(
            isinstance(assignment, ImportAssignment) or _last_name(_assigned_value(self, assignment)) == "SQLAlchemy"
            for assignment in assignments
        )

    def _is_orm_object(self, name: cst.Name) -> bool:
        origin = self._local_origin(name)
        if origin is None:
            return False
        if not isinstance(origin, cst.Param) and self._fetches_one_object(origin):
            return True
        return any(self._added_to_session(use) for use in self._uses(name))

    def _added_to_session(self, use: cst.CSTNode) -> bool:
        """`<session>.add(name)`."""
        arg = self.get_metadata(ParentNodeProvider, use, None)
        call = self.get_metadata(ParentNodeProvider, arg, None) if isinstance(arg, cst.Arg) else None
        if not m.matches(call, m.Call(func=m.Attribute(attr=m.Name("add")), args=[m.Arg(keyword=None, star="")])):
            return False
        return self._is_session(cst.ensure_type(cst.ensure_type(call, cst.Call).func, cst.Attribute).value)

    def _fetches_one_object(self, value: cst.BaseExpression) -> bool:
        """`session.get(M, k)`, `session.query(M)....first()`, `session.scalars(select(M))....one()`,
        `M.query....first()`: one mapped object of a model `M`."""
        chain = list(_method_chain(value.expression if isinstance(value, cst.Await) else value))
        if not chain or _last_name(chain[0]) not in _ONE_OBJECT:
            return False
        for call in chain:
            method = cst.ensure_type(call.func, cst.Attribute)
            selects = method.attr.value == "query" or (method.attr.value == "get" and call is chain[-1])
            if selects and _first_argument_is_a_model(call) and self._is_session(method.value):
                return True
            if method.attr.value in ("scalars", "execute") and call.args and self._is_session(method.value):
                return _selects_a_model(call.args[0].value)
        root = cst.ensure_type(chain[-1].func, cst.Attribute).value  # Flask-SQLAlchemy: `Model.query`
        if not m.matches(root, m.Attribute(value=m.Name(), attr=m.Name("query"))):
            return False
        return _is_model_name(cst.ensure_type(cst.ensure_type(root, cst.Attribute).value, cst.Name))

    # --- where a local name comes from -----------------------------------------------------------

    def _local_assignment(self, name: cst.Name) -> Assignment | None:
        """The one assignment of `name` in the scope it is used in, or None."""
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return None
        assignments = list(scope[name.value])
        if len(assignments) != 1 or not isinstance(assignments[0], Assignment) or assignments[0].scope is not scope:
            return None
        return assignments[0]

    def _local_origin(self, name: cst.Name) -> cst.Param | cst.BaseExpression | None:
        """The parameter, or the value of the one `name = value` statement, that binds `name` here."""
        assignment = self._local_assignment(name)
        if assignment is None:
            return None
        if isinstance(assignment.node, cst.Param):
            return assignment.node
        return _assigned_value(self, assignment)

    def _uses(self, name: cst.Name) -> list[cst.CSTNode]:
        assignment = self._local_assignment(name)
        return [access.node for access in assignment.references] if assignment is not None else []

    VALID = (
        Valid(
            """
            def report(payload, background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
                incident = Incident(**payload)
                db.add(incident)
                db.commit()
                background_tasks.add_task(analyze_incident_by_id, incident.id)
            """
        ),
        Valid(
            """
            def notify(user_id, background_tasks: BackgroundTasks):
                background_tasks.add_task(send_mail, user_id, {"subject": "hi"}, "body")
            """
        ),
        Valid(
            """
            def schedule(timer, db: Session = Depends(get_db)):
                user = db.query(User.name).first()
                timer.delay(user)
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            from fastapi import BackgroundTasks, Depends
            from sqlalchemy.orm import Session

            def report(payload, tasks: BackgroundTasks, db: Session = Depends(get_db)):
                incident = Incident(**payload)
                db.add(incident)
                db.flush()
                tasks.add_task(IncidentAnalyzer.analyze_incident, incident, db)
                db.commit()
            """
        ),
        Invalid(
            """
            from app import db

            def refund(order_id):
                order = Order.query.filter_by(id=order_id).first_or_404()
                process_refund.apply_async(args=[order], countdown=10)
            """
        ),
        Invalid(
            """
            async def rename(user_id, session: AsyncSession = Depends(get_session)):
                user = await session.get(User, user_id)
                reindex.delay(user_id=user.id, session=session)
            """
        ),
    )


# --- helpers on syntax ---------------------------------------------------------------------------


def _handed_values(call: cst.Call) -> Iterator[cst.BaseExpression]:
    """The values a scheduling call hands to the task: every argument after `add_task`'s function,
    every argument of `delay`, the items of `apply_async`'s `args`/`kwargs` (positional or keyword)."""
    method = cst.ensure_type(call.func, cst.Attribute).attr.value
    if method == "add_task":
        yield from (arg.value for arg in call.args[1:])
    elif method == "delay":
        yield from (arg.value for arg in call.args)
    else:
        for position, arg in enumerate(call.args):
            role = arg.keyword.value if arg.keyword is not None else ("args", "kwargs", None)[min(position, 2)]
            if role in ("args", "kwargs"):
                yield from _items(arg.value)


def _items(container: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    if isinstance(container, (cst.List, cst.Tuple)):
        yield from (element.value for element in container.elements)
    elif isinstance(container, cst.Dict):
        yield from (element.value for element in container.elements if isinstance(element, cst.DictElement))


def _method_chain(value: cst.BaseExpression) -> Iterator[cst.Call]:
    """The method calls of `a.b(x).c().d()`, outermost first (`d()`, `c()`, `b(x)`)."""
    while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
        yield value
        value = value.func.value


def _assigned_value(rule: Rule, assignment: BaseAssignment) -> cst.BaseExpression | None:
    """The value of `name = value` / `name: T = value` for a scope assignment of `name`."""
    if not isinstance(assignment, Assignment):
        return None
    node = assignment.node
    parent = rule.get_metadata(ParentNodeProvider, node, None)
    if isinstance(parent, cst.AssignTarget):
        statement = rule.get_metadata(ParentNodeProvider, parent, None)
        return statement.value if isinstance(statement, cst.Assign) and len(statement.targets) == 1 else None
    if isinstance(parent, cst.AnnAssign) and parent.target is node:
        return parent.value
    return None


def _last_name(node: cst.CSTNode | None) -> str | None:
    if isinstance(node, cst.Call):
        node = node.func
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return node.value if isinstance(node, cst.Name) else None


def _selects_a_model(statement: cst.BaseExpression) -> bool:
    """`select(M)`, `select(M).where(...).limit(1)`."""
    chain = list(_method_chain(statement))
    root = cst.ensure_type(chain[-1].func, cst.Attribute).value if chain else statement
    return isinstance(root, cst.Call) and _last_name(root.func) == "select" and _first_argument_is_a_model(root)


def _is_model_name(name: cst.Name) -> bool:
    return name.value[:1].isupper()


def _first_argument_is_a_model(call: cst.Call) -> bool:
    first = call.args[0] if call.args else None
    if first is None or first.keyword is not None:
        return False
    return isinstance(first.value, cst.Name) and _is_model_name(first.value)


def _is_session_dependency(default: cst.BaseExpression) -> bool:
    """`Depends(get_db)`, `Depends(deps.get_session)`."""
    if not isinstance(default, cst.Call) or _last_name(default.func) != "Depends" or not default.args:
        return False
    dependency = _last_name(default.args[0].value)
    return dependency is not None and _SESSION_DEPENDENCY.search(dependency) is not None


# --- the cheap check on the stdlib AST ---------------------------------------------------------


def _could_fire(tree: ast.Module, knows_factory: Callable[[str], bool]) -> bool:
    """A scheduling call handing a value `_problem` may report: a `<name>.session`, a name in
    module code, or a name its function binds once in a way that may make it a session or an
    ORM object."""
    scheduling = [call for call in quickscan.of_type(tree, ast.Call) if quickscan.called_name(call) in _SCHEDULERS]
    handing = {id(call) for call in scheduling if any(map(_may_be_reported, _handed_ast_values(call)))}
    if not handing:
        return False
    origins = _Origins(_session_class_names(tree), knows_factory)
    seen: set[int] = set()
    for function in quickscan.statements_of_type(tree, ast.FunctionDef, ast.AsyncFunctionDef):
        defined = cast("ast.FunctionDef | ast.AsyncFunctionDef", function)
        frame = quickscan.frame_nodes(defined)
        calls = [node for node in frame if isinstance(node, ast.Call) and id(node) in handing]
        seen |= set(map(id, calls))
        if calls and origins.hand_a_session_or_object(defined, frame, calls):
            return True
    return bool(handing - seen)  # in module code, a class body or a lambda: may be


def _may_be_reported(value: ast.expr) -> bool:
    """What `_problem` may report: a bare name or `<name>.session` (not a name inside an
    expression: `case.id`)."""
    return isinstance(value, ast.Name) or (
        isinstance(value, ast.Attribute) and value.attr == "session" and isinstance(value.value, ast.Name)
    )


@dataclass(frozen=True)
class _Origins:
    """What may make a name a session or an ORM object, in one module."""

    session_classes: set[str]  # the last names `Session`/`AsyncSession` may be written with
    knows_factory: Callable[[str], bool]  # the project may know the callee as a session factory

    def hand_a_session_or_object(
        self, function: ast.FunctionDef | ast.AsyncFunctionDef, frame: list[ast.AST], calls: list[ast.Call]
    ) -> bool:
        """A handed `<name>.session`, or a handed name the frame binds once (as `_local_origin`
        needs) in a way `_is_session` or `_is_orm_object` may accept."""
        bound = quickscan.bindings(quickscan.parameters(function), frame)
        for value in (value for call in calls for value in _handed_ast_values(call) if _may_be_reported(value)):
            if isinstance(value, ast.Attribute):
                return True
            found = bound.get(cast(ast.Name, value).id, [])
            if len(found) == 1 and self._may_be_a_session_or_object(found[0], cast(ast.Name, value).id, function):
                return True
        return False

    def _may_be_a_session_or_object(self, binding: quickscan.Binding, name: str, function: ast.AST) -> bool:
        """A parameter annotated `Session`/`AsyncSession` or depending on a session, a value
        that may create a session or fetch one object, or anything passed to some `.add(<name>)`."""
        if binding.parameter is not None and _may_be_session_parameter(binding.parameter, binding.value, self.session_classes):
            return True
        if binding.how in ("assigned", "annotated") and binding.value is not None and self._may_make_one(binding.value):
            return True
        if binding.how not in ("parameter", "assigned", "annotated"):
            return False
        return any(
            isinstance(node, ast.Call) and quickscan.called_name(node) == "add" and isinstance(node.func, ast.Attribute)
            and len(node.args) == 1 and isinstance(node.args[0], ast.Name) and node.args[0].id == name
            for node in ast.walk(function)
        )

    def _may_make_one(self, value: ast.expr) -> bool:
        """`_fetches_one_object` (a method chain ending in `.first()`...) or `session_call`
        (`Session(...)`, a factory the project may know, a callee named like one)."""
        call = value.value if isinstance(value, ast.Await) else value
        if not isinstance(call, ast.Call):
            return False
        if isinstance(call.func, ast.Attribute) and call.func.attr in _ONE_OBJECT:
            return True
        if isinstance(value, ast.Await):
            return False
        callee = quickscan.dotted_name(call.func)
        named = isinstance(call.func, (ast.Name, ast.Attribute)) and SESSION_LIKE_CALLEE.search(_last_ast_name(call.func) or "")
        return bool(named) or _last_ast_name(call.func) in self.session_classes or (callee is not None and self.knows_factory(callee))


def _may_be_session_parameter(parameter: ast.arg, default: ast.expr | None, session_classes: set[str]) -> bool:
    """Loosely `_is_session_parameter`: `Session` under any name it is imported as, or a
    `Depends(...)` on something named like a session."""
    annotation = parameter.annotation
    dependencies = [default] if default is not None else []
    if isinstance(annotation, ast.Subscript) and _last_ast_name(annotation.value) == "Annotated":
        elements = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        annotation, dependencies = elements[0], [*dependencies, *elements[1:]]
    if isinstance(annotation, ast.Constant):
        return isinstance(annotation.value, str) and "Session" in annotation.value
    if annotation is not None and _last_ast_name(annotation) in session_classes:
        return True
    return any(_may_be_session_dependency(dependency) for dependency in dependencies)


def _may_be_session_dependency(default: ast.expr) -> bool:
    """`Depends(get_db)`, `Depends(deps.get_session)` (as `_is_session_dependency`)."""
    if not isinstance(default, ast.Call) or _last_ast_name(default.func) != "Depends":
        return False
    given = [*default.args, *(keyword.value for keyword in default.keywords)]
    return any(_SESSION_DEPENDENCY.search(_last_ast_name(value) or "") for value in given)


def _last_ast_name(node: ast.expr) -> str | None:
    """`_last_name` on the stdlib AST."""
    node = node.func if isinstance(node, ast.Call) else node
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def _session_class_names(tree: ast.Module) -> set[str]:
    """The last names a SQLAlchemy session class may be written with: its own, and every name
    the module imports a `Session` or `AsyncSession` as."""
    classes = {qualified.rsplit(".", 1)[-1] for qualified in SESSION_CLASSES}
    return classes | {
        alias.asname
        for node in quickscan.statements_of_type(tree, ast.Import, ast.ImportFrom)
        for alias in cast("ast.Import | ast.ImportFrom", node).names
        if alias.asname and alias.name.rsplit(".", 1)[-1] in classes
    }


def _handed_ast_values(call: ast.Call) -> Iterator[ast.expr]:
    """`_handed_values` on the stdlib AST: the arguments in source order (`*x` and `**x` as `x`),
    but `add_task`'s first; for `apply_async`, the items of every list, tuple or dict argument."""
    arguments = sorted([*call.args, *call.keywords], key=lambda node: (node.lineno, node.col_offset))
    values = [argument.value if isinstance(argument, (ast.Starred, ast.keyword)) else argument for argument in arguments]
    method = quickscan.called_name(call)
    if method == "add_task":
        yield from values[1:]
    elif method == "delay":
        yield from values
    else:
        for value in values:
            if isinstance(value, (ast.List, ast.Tuple)):
                yield from (element.value if isinstance(element, ast.Starred) else element for element in value.elts)
            elif isinstance(value, ast.Dict):
                yield from (item for key, item in zip(value.keys, value.values) if key is not None)
