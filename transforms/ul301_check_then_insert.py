'''UL301 check-then-insert

## What it does
Finds an `if` that looks a row up and inserts it when it is missing:

- `if not <query>.first():`, `if <query>.first() is None:`, `.one_or_none()`,
  `.scalar_one_or_none()`, `.scalar()` (also over `exists()`), `if <query>.count() == 0:`;
- `if session.get(Model, key) is None:` / `if not session.get(...)`, the legacy
  `session.query(Model).get(key)` and `Model.query.get(key)`;

where `<query>` is `session.query(Model)...`, Flask-SQLAlchemy's `Model.query...` or a 2.x
`session.scalars(select(Model)...)` / `session.execute(...)`, and whose body adds to the session
(`session.add(...)`, `add_all(...)`, `db.session.add(...)`). The check goes; the body runs in a
`try`, and `except IntegrityError:` rolls the same session back, runs the check again (when it
still finds no row, the conflict came from another constraint: the handler re-raises), then
the former `else:` branch.

The two-statement get-or-create is fixed too: `obj = <lookup>` (`.first()`, `.one_or_none()`,
`.scalar_one_or_none()`, `.scalar()`, a `get`) right before `if obj is None:` / `if not obj:`
whose body binds `obj` again (`obj = M(...)`) and adds, or the inverted `if obj: <update>
else: <create>` (a create branch that ends with `return` need not bind `obj`). The `if` stays
(the fast path for "already there"); the create goes in the `try`, and `except IntegrityError:`
rolls back and runs the same lookup again, so that `obj` is
the row the concurrent writer inserted. When that lookup still finds nothing, the conflict came
from another constraint: the handler re-raises. The update branch, if any, then runs on the row
found (a copy of it goes into the handler). The inline inverted form, `if q.first(): <found>
else: <create>` (also as an `elif`), is fixed the same way: the handler re-raises when `not
q.first()` still holds, then runs a copy of the found branch. So is the walrus form, `if not
(obj := <lookup>):` / `if (obj := <lookup>) is None:` with a create that binds `obj`. A result object works the same way: `result =
[await] session.execute(select(M)...)` (or `session.scalars(...)`) right before `if not
result.scalar_one_or_none():` (`.scalar()`, `.first()`, `.scalars().first()`, `is None`); the
handler runs the `execute` again and re-raises when the same test still finds no row. Inside a
loop each iteration is fixed where it stands: a commit per item stays per item.

When the body does not commit (the caller commits later), only the insert is rolled back: the
body goes into `with session.begin_nested():` (a SAVEPOINT) inside the `try`, so the caller's
other pending work survives. `from sqlalchemy.exc import IntegrityError` is added once, unless
the name is already reachable (`IntegrityError`, `exc.IntegrityError`, `sa.exc.IntegrityError`
under whatever names the module imported them): then that name is used.

Django's `if not M.objects.filter(a=x).exists(): M.objects.create(a=x, b=y)` becomes
`M.objects.get_or_create(a=x, defaults={"b": y})` (also with the `exists()` assigned to a name
right before `if not name:`, or the queryset before `if not rows.exists():`; that line stays),
and `obj = M.objects.filter(a=x).first()`
then `if obj is None: obj = M.objects.create(a=x, b=y)` keeps its lookup and `if` (the fast
path) with `obj = M.objects.get_or_create(a=x, defaults={"b": y})[0]` inside. When the
`exists()` check's body goes on after the create, or has an `else:`, the `if` stays and tests
what `get_or_create` did: `if M.objects.get_or_create(...)[1]:` (created: the rest of the body)
`else:` (the row was there), or `if not ...[1]:` with only the `else:`. `try: obj =
M.objects.get(a=x)` `except M.DoesNotExist:` (or `ObjectDoesNotExist`) `obj =
M.objects.create(a=x, b=y)` becomes `obj = M.objects.get_or_create(a=x, defaults={"b": y})[0]`. `get_or_create`
inserts and, on `IntegrityError`, gets the row the concurrent writer inserted. Only when the
`if` is exactly that (inline: the create first, its result not used; two-statement: `if obj is
None:` / `if not obj:` with the one assignment; `try`: one statement in each block, no
`finally`) and the create repeats every filter
keyword with the same value (lookups such as `a__iexact=` do not qualify).

Reported without a fix: `try: <query>.one()` `except NoResultFound:` with an insert in the
handler, and a check that exits early (`return`, `raise`) when a looked-up row exists (`found`,
`found is not None`, `list(rows)`, or `or` of those, in an `if` or a branch of an `if`/`elif`
chain) followed by an insert of the looked-up model on the same session, in a later branch or
after the `if`, as registration endpoints write it; and a get-or-create through helpers, `obj
= crud.get_by_email(db, ...)` then `if not obj: obj = crud.create(db, ...)` (a lookup named
`get...`/`find...`, a create named `create...`/`insert...`/`add...`, both handed the same
session-named argument), whose queries unleak does not see. Moving the early exit into an
`IntegrityError` handler is a rewrite of the function: left to a human.

## Why is this bad?
The check and the insert are two statements, not one atomic operation. Workers that start
together all see "no row", all insert, and all but one crash on the unique constraint with
`IntegrityError` (seed 003 #2: every worker but one died at start-up). The database's unique
constraint is the only check that cannot race: insert, and treat the conflict as "already there".

## Example
```python
if not db.query(User).filter(User.id == 1).first():
    db.add(User(id=1, email="admin@example.com"))
    db.commit()
else:
    log.info("admin already there")
```

## Use instead
```python
from sqlalchemy.exc import IntegrityError

try:
    db.add(User(id=1, email="admin@example.com"))
    db.commit()
except IntegrityError:
    db.rollback()
    log.info("admin already there")
```

## Fix safety
Safe when unleak can see that the database enforces what the check checked: the lookup is by
primary key (`session.get(Model, key)`, `Model.query.get(key)`) or the model class is defined in
the same module with a primary key, `unique=True` column or `UniqueConstraint` among the
columns the check compares with `==`, and the body builds that model (`Model(...)`). Otherwise
the insert would no longer be deduplicated by anything when the column is not unique, so the
fix is unsafe (`--unsafe`): make sure the constraint exists first.

The Django rewrite is safe when the project index sees the model with a unique key (primary key,
`unique=True`, `unique_together`, a `UniqueConstraint`) among the filtered fields. Otherwise it
is unsafe: `get_or_create` looks the row up with `get()`, which raises `MultipleObjectsReturned`
where `filter(...).exists()` accepted repeated rows, and without the constraint it races as well.
It is unsafe too when a value that goes into `defaults` calls something: the call now runs even
when the row exists, where the create ran it only for a new row.

With a commit in the body, a conflict rolls back the whole session, as any failed commit must;
work the session had pending before the check is lost in that case, where before it stayed
pending. Without a commit in the body, the SAVEPOINT keeps it.

Left alone: conditions that test anything else too (`if not q.first() and flag:`), an `elif`,
bodies that do not add to a session, that commit somewhere other than in their own top-level
statements, that roll back, close or begin transactions, a lookup on another session than the
insert's. In the two-statement form, also left alone: a lookup whose result is used before the
`if`, a create branch that does not bind the name again (`obj` would stay None after it) or that
assigns a name the lookup reads (running it again would look up something else).  A module where
`IntegrityError` names something else gets a report without a fix.

The byte triggers are a call of `.add(`/`.add_all(`/`.create(`, one of the lookups (or
`.filter(`), and what some shape needs besides (an `.add(`, an `.exists(` or `.first(`, a
`DoesNotExist`, an argument named like a session); `could_fire` looks at statements only (never the expressions between them) and
keeps only files with an `if` whose test calls a lookup and whose body adds, or an `if` testing
the name a lookup naming its model (`query(M)`, `select(M)`, `M.query`, `filter(M.a == x)`,
`get(M, k)`) was assigned to in the statement before, with a creating branch that adds (or a
Django or helper create), or a `try` of one lookup whose one handler adds or creates, or an
`if` that only tests looked-up names for a row, with a branch that returns or raises, and an
add and a call of a looked-up model after it.
'''

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ImportAssignment, ParentNodeProvider, Scope, ScopeProvider

from unleak.knowledge import quickscan
from unleak.knowledge.queries import SESSION_NAME
from unleak.rule import FixSafety, ImportSpec, Invalid, Rule, SliceScope, Valid

_LOOKUPS = frozenset({"first", "one_or_none", "scalar_one_or_none", "scalar", "get"})
_COUNT = "count"
_ADDS = frozenset({"add", "add_all"})
_TRANSACTION_CONTROL = frozenset({"rollback", "close", "begin", "begin_nested"})
_INTEGRITY_ERROR = "sqlalchemy.exc.IntegrityError"

_LEGACY_QUERY = m.Call(func=m.Attribute(attr=m.Name("query")), args=[m.Arg(keyword=None, star="")])
_ZERO = m.Integer("0")
_NONE = m.Name("None")
_EXECUTE = m.Call(func=m.Attribute(attr=m.Name("execute") | m.Name("scalars")))


@dataclass(frozen=True)
class _Lookup:
    """What the `if` test looks up: the model and the columns it compares with `==`."""

    model: str | None  # the model's code (`User`), when visible
    columns: frozenset[str]  # columns compared with `==`
    by_primary_key: bool  # `session.get(Model, key)`, `Model.query.get(key)`
    session: str | None  # the session it runs on (`db`), when visible
    awaited: bool


@dataclass(frozen=True)
class _Insert:
    """What the `if` body does with the session."""

    session: str  # `db`, `db.session`, `self.session`
    commits: bool
    awaited: bool  # the session's methods are awaited: an AsyncSession
    builds: frozenset[str]  # the code of every callee in the body (`User`, `models.User`)


@dataclass(frozen=True)
class _Checked:
    """The name an `if` tests for "no row": `obj is None`, `not obj`, or inverted `obj`, `obj is not None`."""

    name: str
    creates_in_body: bool  # `if obj is None: <create>`; False: `if obj: <update> else: <create>`
    with_is: bool  # written `is None` / `is not None` (the re-check is written the same way)


@dataclass(frozen=True)
class _DjangoCheck:
    """`if not M.objects.filter(<filters>).exists(): M.objects.create(<filters>, <defaults>)`."""

    manager: cst.BaseExpression  # `M.objects`
    model: cst.BaseExpression
    filters: frozenset[str]
    created: cst.Call  # `M.objects.create(...)`


@dataclass(frozen=True)
class _LookedUpBefore:
    """A lookup assigned in the statement before the `if` that tests its result."""

    lookup: _Lookup
    looked_up: cst.BaseExpression | None  # the assigned value, run again in the handler (None: the test runs it)
    checked: _Checked  # the assigned name and how the `if` tests it
    missing: cst.BaseExpression  # "still no row" after running it again
    binds_row: bool  # the name is the row (`obj`): the create must bind it too


class CheckThenInsert(Rule):
    code = "UL301"
    name = "check-then-insert"
    safety = FixSafety.SAFE
    summary = "Check-then-insert races with concurrent workers: insert, and handle `IntegrityError`"
    trigger = (
        rb"\.(?:add|add_all|create)\s*\(",
        rb"\.(?:first|one_or_none|scalar_one_or_none|scalar|get\w*|find\w*|count|exists|one|scalar_one|filter|filter_by)\s*\(",
        # What each shape needs besides: an `.add(` (SQLAlchemy), an `.exists(` or `.first(` or a
        # `DoesNotExist` handler (Django), or a helper handed an argument named like a session.
        rb"\.(?:add|add_all|exists|first)\s*\(|DoesNotExist|(?:session|db|sess)[\s\\]*(?:#[^\n]*[\s\\]*)*[,)]",
    )
    METADATA_DEPENDENCIES = (ScopeProvider,)
    uses_project = True
    slice_scope = SliceScope.FUNCTION

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """Every shape is made of statements: only they are visited, not the expressions between."""
        blocks = quickscan.statement_lists(tree)
        statements = quickscan.statements_of_type(tree, ast.stmt)
        if not any(map(_may_insert, statements)):
            return False  # every shape inserts in a statement `[x =] [await] y.add(...)` (`add_all`, `create...`)
        ifs = [statement for statement in statements if isinstance(statement, ast.If)]
        django = (_django_exists_then_creates(node) or _django_found_else_creates(node) for node in ifs)
        return (
            any(_looks_up_then_adds(node) for node in ifs)
            or any(django)
            or any(_looks_up_by_exception(node) for node in statements if isinstance(node, ast.Try))
            or any(map(_checks_then_inserts, blocks))
        )

    @m.visit(m.Try(handlers=[m.ExceptHandler(name=None)], orelse=None, finalbody=None))
    def flag_lookup_by_exception(self, node: cst.Try) -> None:
        """`try: obj = M.objects.get(a=x) except M.DoesNotExist: obj = M.objects.create(a=x, ...)`
        becomes `obj = M.objects.get_or_create(a=x, defaults={...})[0]`; `try: <query>.one()
        except NoResultFound: <add>` is reported (there is no row for the handler to use)."""
        django = _django_get_except_create(node)
        if django is not None:
            check, name = django
            body = cst.ensure_type(node.body, cst.IndentedBlock)
            created = cst.Subscript(_get_or_create(check), [cst.SubscriptElement(cst.Index(cst.Integer("0")))])
            comments = [*node.leading_lines, *body.body[0].leading_lines]
            fix = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], created)], leading_lines=comments)
            self._report_get_or_create(node, check, fix)
        elif _one_except_no_result_then_add(node):
            self.report(node, f"{self.summary} (the lookup signals \"no row\" with `NoResultFound`: fix by hand)")

    @m.visit(m.If())
    def flag_check_then_insert(self, node: cst.If) -> None:
        reported = len(self.reports)
        self._flag_inline_or_two_statements(node)
        if len(self.reports) == reported:
            self._flag_guard_then_insert(node)
        if len(self.reports) == reported:
            self._flag_django_found_else_create(node)
        if len(self.reports) == reported:
            self._flag_helpers_get_or_create(node)

    def _flag_helpers_get_or_create(self, node: cst.If) -> None:
        """`obj = crud.get_by_email(db, ...)` then `if not obj: obj = crud.create(db, ...)`:
        helpers (often of another module) look up and insert on the same session; reported."""
        checked = _checked_name(node.test)
        value = self._value_before(node, checked.name) if checked is not None and checked.creates_in_body else None
        if checked is None or not isinstance(value, cst.Call) or not _HELPER_LOOKUP.fullmatch(_method_name(value) or ""):
            return
        session = _session_argument(value)
        block = node.body if isinstance(node.body, cst.IndentedBlock) else None
        created = [_assigned_value(line, checked.name) for line in block.body] if block is not None else []
        calls = [call for call in created if isinstance(call, cst.Call) and _HELPER_CREATE.fullmatch(_method_name(call) or "")]
        if session is not None and any(_session_argument(call) == session for call in calls):
            self.report(node, f"{self.summary} (the lookup and the insert are helpers on `{session}`: fix by hand)")

    def _flag_django_found_else_create(self, node: cst.If) -> None:
        """`if M.objects.filter(a=x).exists(): <uses the rows> else: M.objects.create(a=x, ...)`
        (or the `exists()` in a name right before): reported, `get_or_create` cannot say what
        the found branch does with several rows."""
        tested = node.test
        if m.matches(tested, m.Name() | _EXISTS_OF_NAME):
            tested = self._exists_of(node, tested) or tested
        if not m.matches(tested, _DJANGO_EXISTS) or not m.matches(node.orelse, m.Else(body=m.IndentedBlock())):
            return
        filtered = cst.ensure_type(cst.ensure_type(cst.ensure_type(tested, cst.Call).func, cst.Attribute).value, cst.Call)
        block = cst.ensure_type(cst.ensure_type(node.orelse, cst.Else).body, cst.IndentedBlock)
        lines = [cst.ensure_type(line, cst.SimpleStatementLine) for line in block.body if m.matches(line, _EXPR_OR_ASSIGN)]
        values = [cst.ensure_type(line.body[0], (cst.Expr, cst.Assign)).value for line in lines]
        creates = [value for value in values if m.matches(value, _DJANGO_CREATE)]
        if any(_django_check(filtered, cst.ensure_type(created, cst.Call)) is not None for created in creates):
            self.report(node, "Check-then-create races with concurrent workers: create with `get_or_create` (fix by hand)")

    def _flag_guard_then_insert(self, node: cst.If) -> None:
        """`found = <lookup>` ... `if found: return` (or `raise`, or a branch of an `if`/`elif`
        chain), then an insert of the looked-up model, later in the chain or after the `if`:
        reported without a fix (the early exit would have to move into an `IntegrityError`
        handler)."""
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if not isinstance(parent, (cst.IndentedBlock, cst.Module)):
            return  # an `elif`: its chain is looked at from the first `if`
        statements = list(parent.body)
        position = next(i for i, statement in enumerate(statements) if statement is node)
        guard = _guard(node, statements[:position], statements[position + 1 :])
        if guard is not None:
            reason = f"the check exits early when {guard} finds a row, and the insert comes after it"
            self.report(node, f"{self.summary} ({reason}: fix by hand)")

    def _flag_inline_or_two_statements(self, node: cst.If) -> None:
        if isinstance(node.orelse, cst.If):
            return
        django = _django_check_then_create(node, self._exists_before(node))
        if django is not None:
            self._report_django(node, django)
            return
        lookup = _lookup(node.test)
        if lookup is None:
            self._flag_get_or_create(node)
            return
        insert = _insert(node.body)
        if insert is None or not _same_session(lookup, insert):
            return
        spelled = self._spelled_integrity_error(node)
        if spelled is not None:
            name, imports = spelled
            fix = _try_insert(node, insert, lookup.awaited, name)
            self._report_fix(node, lookup, insert, fix, imports)

    def _flag_get_or_create(self, node: cst.If) -> None:
        """A lookup in the statement before the `if`: `obj = <lookup>` then `if obj is None:
        obj = M(...); session.add(obj) ...` (or the inverted `if obj: <update> else: <create>`),
        or `result = session.execute(...)` then `if not result.scalar():`. The `if` stays, the
        create goes in a `try` whose handler runs the lookup again."""
        shape = self._looked_up_before(node)
        if shape is None:
            return
        branches = _branches(node, shape.checked)
        if branches is None:
            return
        create, update = branches
        insert = _insert(create)
        if insert is None or not _same_session(shape.lookup, insert):
            return
        if shape.binds_row and not _binds(create, shape.checked.name) and not _returns(create):
            return  # `obj` would stay None after the create
        if _assigned_names(create) & _names_in(shape.looked_up or node.test):
            return  # the create changes what the lookup reads: running it again looks up something else
        spelled = self._spelled_integrity_error(node)
        if spelled is None:
            return
        name, imports = spelled
        recheck = _recheck(shape.checked.name, shape.looked_up, shape.missing)
        handled = _try(create, insert, shape.lookup.awaited, name, recheck, update)
        self._report_fix(node, shape.lookup, insert, _with_create(node, shape.checked, handled), imports)

    def _looked_up_before(self, node: cst.If) -> _LookedUpBefore | None:
        walrus = _walrus(node.test)
        if walrus is not None:
            return walrus
        checked = _checked_name(node.test)
        if checked is not None:
            value = self._value_before(node, checked.name)
            django = _django_get_then_create(node, value, checked)
            if django is not None:
                self._report_django_create(node, django)
                return None
            lookup = _lookup_call(value)
            if value is None or lookup is None:
                return None
            missing = cst.parse_expression(f"{checked.name} is None" if checked.with_is else f"not {checked.name}")
            return _LookedUpBefore(lookup, value, checked, missing, binds_row=True)
        return self._result_looked_up_before(node) or _inverted_inline(node)

    def _result_looked_up_before(self, node: cst.If) -> _LookedUpBefore | None:
        """`result = [await] session.execute(...)` (or `.scalars(...)`), then a test of
        `result.scalar_one_or_none()`, `result.first()`, ... for "no row"."""
        tested = _tested_call(node.test)
        root = tested.func if tested is not None else None
        while isinstance(root, (cst.Attribute, cst.Call)):
            root = root.value if isinstance(root, cst.Attribute) else root.func
        if not isinstance(root, cst.Name):
            return None
        value = self._value_before(node, root.value)
        if value is None or not m.matches(_unawaited(value), _EXECUTE):
            return None
        inlined = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]) if isinstance(value, cst.Await) else value
        lookup = _lookup(cst.ensure_type(node.test.deep_replace(root, inlined), cst.BaseExpression))
        if lookup is None:
            return None
        return _LookedUpBefore(lookup, value, _Checked(root.value, True, False), node.test.deep_clone(), binds_row=False)

    def _report_django(self, node: cst.If, check: _DjangoCheck) -> None:
        """`if not M.objects.filter(a=x).exists(): M.objects.create(a=x, b=y)` ->
        `M.objects.get_or_create(a=x, defaults={"b": y})`; with more statements after the
        create, or an `else:`, the `if` tests what `get_or_create` says: `if <it>[1]:` (created)."""
        body = cst.ensure_type(node.body, cst.IndentedBlock)
        line, rest = cst.ensure_type(body.body[0], cst.SimpleStatementLine), body.body[1:]
        get_or_create = _get_or_create(check)
        fix: cst.BaseStatement
        if not rest and node.orelse is None:
            fix = line.with_changes(body=[cst.Expr(get_or_create)], leading_lines=node.leading_lines)
        elif rest:
            fix = node.with_changes(test=_created(get_or_create), body=body.with_changes(body=rest))
        else:
            orelse = cst.ensure_type(node.orelse, cst.Else)
            fix = node.with_changes(test=cst.UnaryOperation(cst.Not(), _created(get_or_create)), body=orelse.body, orelse=None)
        self._report_get_or_create(node, check, fix)

    def _report_django_create(self, node: cst.If, check: _DjangoCheck) -> None:
        """`if obj is None: obj = M.objects.create(a=x, b=y)` -> `obj = M.objects.get_or_create(a=x,
        defaults={"b": y})[0]`; the lookup before the `if` stays as the fast path."""
        body = cst.ensure_type(node.body, cst.IndentedBlock)
        line = cst.ensure_type(body.body[0], cst.SimpleStatementLine)
        created = cst.Subscript(_get_or_create(check), [cst.SubscriptElement(cst.Index(cst.Integer("0")))])
        assign = cst.ensure_type(line.body[0], cst.Assign).with_changes(value=created)
        fix = node.with_changes(body=body.with_changes(body=[line.with_changes(body=[assign])]))
        self._report_get_or_create(node, check, fix)

    def _report_get_or_create(self, node: cst.If | cst.Try, check: _DjangoCheck, fix: cst.BaseStatement) -> None:
        summary = "Check-then-create races with concurrent workers: `get_or_create` handles the conflict"
        unsafe = self._get_or_create_unsafe(check)
        if unsafe is None:
            self.report(node, summary, fix=fix)
        else:
            self.report(node, f"{summary} ({unsafe})", fix=fix, safety=FixSafety.UNSAFE)

    def _get_or_create_unsafe(self, check: _DjangoCheck) -> str | None:
        """Why `get_or_create` may not do what the check and the create did (None: it does)."""
        model = cst.Module([]).code_for_node(check.model)
        found = self.project.model(model)
        if found.found is None:
            return f"it relies on a unique constraint on {model} that unleak cannot see: {found.reason}"
        if found.found.unique_key_within(check.filters) is None:
            fields = ", ".join(sorted(check.filters))
            return f"no unique key of {model} covers {fields}: `get()` would raise MultipleObjectsReturned where rows repeat"
        if any(m.findall(arg.value, m.Call()) for arg in check.created.args if _keyword(arg) not in check.filters):
            return "the `defaults` now run their calls even when the row exists"
        return None

    def _report_fix(
        self, node: cst.If, lookup: _Lookup, insert: _Insert, fix: cst.BaseStatement, imports: tuple[ImportSpec, ...]
    ) -> None:
        unseen = self._unseen_constraint(lookup, insert)
        if unseen is None:
            self.report(node, fix=fix, imports=imports)
        else:
            message = f"{self.summary} (the fix relies on a unique constraint {unseen})"
            self.report(node, message, fix=fix, imports=imports, safety=FixSafety.UNSAFE)

    def _spelled_integrity_error(self, node: cst.If) -> tuple[str, tuple[ImportSpec, ...]] | None:
        """`_integrity_error`, reporting without a fix when the name is taken."""
        integrity_error = self._integrity_error(node)
        if integrity_error is None:
            self.report(node, f"{self.summary} (`IntegrityError` names something else here: fix by hand)")
        return integrity_error

    def _exists_before(self, node: cst.If) -> cst.BaseExpression | None:
        """`<value>` for `found = <value>` right before `if not found:`; `<value>.exists()` for
        `rows = <value>` right before `if not rows.exists():`."""
        if not m.matches(node.test, m.UnaryOperation(operator=m.Not(), expression=m.Name() | _EXISTS_OF_NAME)):
            return None
        return self._exists_of(node, cst.ensure_type(node.test, cst.UnaryOperation).expression)

    def _exists_of(self, node: cst.If, tested: cst.BaseExpression) -> cst.BaseExpression | None:
        """What `found` (or `rows.exists()`) tested by `node` stands for, from the statement right
        before it."""
        if isinstance(tested, cst.Name):
            return self._value_before(node, tested.value)
        method = cst.ensure_type(cst.ensure_type(tested, cst.Call).func, cst.Attribute)
        rows = self._value_before(node, cst.ensure_type(method.value, cst.Name).value)
        return None if rows is None else cst.ensure_type(tested, cst.Call).with_changes(func=method.with_changes(value=rows))

    def _value_before(self, node: cst.If, name: str) -> cst.BaseExpression | None:
        """`<value>` when the statement right before `node` is `name = <value>`."""
        parent = self.get_metadata(ParentNodeProvider, node, None)
        statements = list(parent.body) if isinstance(parent, (cst.IndentedBlock, cst.Module)) else []
        position = next((i for i, statement in enumerate(statements) if statement is node), 0)
        return _assigned_value(statements[position - 1], name) if position > 0 else None

    def _unseen_constraint(self, lookup: _Lookup, insert: _Insert) -> str | None:
        """None when the database visibly enforces the check; else why unleak cannot tell."""
        model = lookup.model or "the model"
        if lookup.model is None or lookup.model not in insert.builds:
            return f"on {model} that unleak cannot see"
        if lookup.by_primary_key:
            return None
        found = self.project.model(lookup.model)
        if found.found is None:
            return f"on {model} that unleak cannot see: {found.reason}"
        if found.found.unique_key_within(lookup.columns) is not None:
            return None
        compared = ", ".join(sorted(lookup.columns)) or "no column"
        return f"that unleak cannot see: no unique key of {model} ({found.found.path or 'this file'}) covers {compared}"

    def _integrity_error(self, node: cst.If) -> tuple[str, tuple[ImportSpec, ...]] | None:
        """How to spell IntegrityError at `node`, and the import that needs (None: the name is taken)."""
        scope = self.get_metadata(ScopeProvider, node)
        spellings = [spelling for spelling in _imported_spellings(scope) if _INTEGRITY_ERROR in _resolves(scope, spelling)]
        if spellings:
            return min(spellings, key=len), ()
        if "IntegrityError" in scope:
            return None
        return "IntegrityError", (ImportSpec("sqlalchemy.exc", "IntegrityError"),)

    VALID = (
        Valid(
            """
            from sqlalchemy.exc import IntegrityError

            try:
                db.add(User(id=1))
                db.commit()
            except IntegrityError:
                db.rollback()
            """
        ),
        Valid(
            """
            if not db.query(User).filter(User.id == 1).first():
                log.warning("no admin user")
            """
        ),
        Valid(
            """
            if not db.query(User).filter(User.id == 1).first() and seeding:
                db.add(User(id=1))
                db.commit()
            """
        ),
        Valid(
            """
            if cache.get(key) is None:
                seen.add(key)
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            from sqlalchemy import Column, Integer, String
            from sqlalchemy.orm import declarative_base

            Base = declarative_base()


            class User(Base):
                __tablename__ = "users"
                id = Column(Integer, primary_key=True)
                email = Column(String, unique=True)


            def seed_admin(db):
                # the first worker to start seeds the admin
                if not db.query(User).filter(User.id == 1).first():
                    db.add(User(id=1, email="admin@example.com"))
                    db.commit()
                else:
                    log.info("admin already there")
            """,
            """
            from sqlalchemy import Column, Integer, String
            from sqlalchemy.orm import declarative_base
            from sqlalchemy.exc import IntegrityError

            Base = declarative_base()


            class User(Base):
                __tablename__ = "users"
                id = Column(Integer, primary_key=True)
                email = Column(String, unique=True)


            def seed_admin(db):
                # the first worker to start seeds the admin
                try:
                    db.add(User(id=1, email="admin@example.com"))
                    db.commit()
                except IntegrityError:
                    db.rollback()
                    if not db.query(User).filter(User.id == 1).first():
                        raise
                    log.info("admin already there")
            """,
        ),
        Invalid(
            """
            from sqlalchemy import exc

            def add_tag(session, name):
                if session.get(Tag, name) is None:
                    session.add(Tag(name=name))
            """,
            """
            from sqlalchemy import exc

            def add_tag(session, name):
                try:
                    with session.begin_nested():
                        session.add(Tag(name=name))
                except exc.IntegrityError:
                    if session.get(Tag, name) is None:
                        raise
            """,
        ),
        Invalid(
            """
            def register(email):
                if User.query.filter_by(email=email).count() == 0:
                    db.session.add(User(email=email))
                    db.session.commit()
            """,
            """
            from sqlalchemy.exc import IntegrityError

            def register(email):
                try:
                    db.session.add(User(email=email))
                    db.session.commit()
                except IntegrityError:
                    db.session.rollback()
                    if User.query.filter_by(email=email).count() == 0:
                        raise
            """,
            unsafe=True,
        ),
        Invalid(
            """
            def get_or_create_tag(session, name):
                tag = session.query(Tag).filter(Tag.name == name).first()
                if tag is None:
                    tag = Tag(name=name)
                    session.add(tag)
                    session.commit()
                return tag
            """,
            """
            from sqlalchemy.exc import IntegrityError

            def get_or_create_tag(session, name):
                tag = session.query(Tag).filter(Tag.name == name).first()
                if tag is None:
                    try:
                        tag = Tag(name=name)
                        session.add(tag)
                        session.commit()
                    except IntegrityError:
                        session.rollback()
                        tag = session.query(Tag).filter(Tag.name == name).first()
                        if tag is None:
                            raise
                return tag
            """,
            unsafe=True,
        ),
        Invalid(
            """
            def follow(user, author):
                if not Follow.objects.filter(user=user, author=author).exists():
                    Follow.objects.create(user=user, author=author, notify=True)
            """,
            """
            def follow(user, author):
                Follow.objects.get_or_create(user=user, author=author, defaults={"notify": True})
            """,
            unsafe=True,
        ),
    )


# --- the `if` test ------------------------------------------------------------------------------


def _lookup(test: cst.BaseExpression) -> _Lookup | None:
    """The lookup an `if` test makes when the test is only "no row": `not q.first()`,
    `q.first() is None`, `q.count() == 0`."""
    call = _tested_call(test)
    if call is None:
        return None
    method = cst.ensure_type(call.func, cst.Attribute).attr.value
    if method == "get":
        return _primary_key_lookup(test, call)
    return _query_lookup(test, call)


def _tested_call(test: cst.BaseExpression) -> cst.Call | None:
    """The `x.first()` / `x.count()` call in `not x.first()`, `x.first() is None`, `x.count() == 0`."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        tested, methods = test.expression, _LOOKUPS | {_COUNT}
    elif m.matches(test, m.Comparison(comparisons=[m.ComparisonTarget(m.Is(), _NONE)])):
        tested, methods = cst.ensure_type(test, cst.Comparison).left, _LOOKUPS
    elif m.matches(test, m.Comparison(comparisons=[m.ComparisonTarget(m.Equal(), _ZERO)])):
        tested, methods = cst.ensure_type(test, cst.Comparison).left, frozenset({_COUNT})
    else:
        return None
    tested = _unawaited(tested)
    if not m.matches(tested, m.Call(func=m.Attribute())):
        return None
    call = cst.ensure_type(tested, cst.Call)
    return call if cst.ensure_type(call.func, cst.Attribute).attr.value in methods else None


def _primary_key_lookup(test: cst.BaseExpression, call: cst.Call) -> _Lookup | None:
    """`session.get(Model, key)`, the legacy `session.query(Model).get(key)` or Flask-SQLAlchemy's
    `Model.query.get(key)`."""
    receiver = cst.ensure_type(call.func, cst.Attribute).value
    awaited = _has_await(test)
    if m.matches(receiver, m.Attribute(attr=m.Name("query"))) and len(call.args) == 1:
        return _Lookup(_code(cst.ensure_type(receiver, cst.Attribute).value), frozenset(), True, None, awaited)
    if m.matches(receiver, _LEGACY_QUERY) and len(call.args) == 1:
        query = cst.ensure_type(receiver, cst.Call)
        session = _receiver(query)
        return _Lookup(_model_of(query.args[0].value), frozenset(), True, session, awaited)
    if len(call.args) == 2 and all(arg.keyword is None and not arg.star for arg in call.args):
        return _Lookup(_code(call.args[0].value), frozenset(), True, _code(receiver), awaited)
    return None


def _query_lookup(test: cst.BaseExpression, call: cst.Call) -> _Lookup | None:
    """A lookup through `session.query(Model)`, `Model.query` or `select(Model)`; None for other calls."""
    session: str | None = None
    compared: set[tuple[str, str]] = set()  # (model, column)
    calls = _all_calls(call)
    model = next((_code(query.value) for query in _flask_queries(call, calls)), None)
    named = model is not None  # the model is a name, not an expression such as `exists()`
    for inner in calls:
        name = _method_name(inner)
        if name in ("query", "select") and inner.args:
            queried = inner.args[0].value
            if m.matches(queried, m.Name() | m.Attribute()):
                model, named = _model_of(queried), True
            elif not named:
                model = _code(queried)
            if name == "query":
                session = _receiver(inner)
        elif name in ("scalars", "execute", "scalar") and _receiver(inner) is not None and inner.args:
            session = _receiver(inner)
        elif name == "filter_by":
            # `filter_by` names the queried model's own columns: "" stands for that model
            compared |= {("", arg.keyword.value) for arg in inner.args if arg.keyword is not None}
        elif name in ("filter", "where"):
            compared |= {pair for arg in inner.args if (pair := _equality(arg.value)) is not None}
    owners = {owner for owner, _ in compared if owner}
    if not named and len(owners) == 1:  # `query(exists().where(User.email == e))`
        model = owners.pop()
    if model is None:
        return None
    columns = frozenset(column for owner, column in compared if owner in (model, ""))
    return _Lookup(model, columns, False, session, _has_await(test))


def _flask_queries(node: cst.CSTNode, calls: list[cst.Call]) -> Iterator[cst.Attribute]:
    """Flask-SQLAlchemy's `Model.query` attributes (not a `session.query(...)` method call)."""
    callees = {id(call.func) for call in calls}
    for found in m.findall(node, m.Attribute(value=m.Name() | m.Attribute(), attr=m.Name("query"))):
        if id(found) not in callees:
            yield cst.ensure_type(found, cst.Attribute)


def _method_name(call: cst.Call) -> str | None:
    if isinstance(call.func, cst.Attribute):
        return call.func.attr.value
    if isinstance(call.func, cst.Name):
        return call.func.value
    return None


def _receiver(call: cst.Call) -> str | None:
    return _code(call.func.value) if isinstance(call.func, cst.Attribute) else None


def _model_of(queried: cst.BaseExpression) -> str:
    """`User` for `query(User)` and for `query(User.id)`; `models.User` for `query(models.User)`
    (a class is named in CapWords, a column is not)."""
    if m.matches(queried, m.Attribute(value=m.Name())):
        attribute = cst.ensure_type(queried, cst.Attribute)
        if not attribute.attr.value[:1].isupper():
            return _code(attribute.value)
    return _code(queried)


def _equality(condition: cst.BaseExpression) -> tuple[str, str] | None:
    """`("User", "email")` for `User.email == value`."""
    if m.matches(condition, m.Comparison(left=m.Attribute(), comparisons=[m.ComparisonTarget(m.Equal())])):
        column = cst.ensure_type(cst.ensure_type(condition, cst.Comparison).left, cst.Attribute)
        return _code(column.value), column.attr.value
    return None


# --- the `if` body ------------------------------------------------------------------------------


def _insert(body: cst.BaseSuite) -> _Insert | None:
    """The session the body adds to, when it only adds, flushes and commits at its top level."""
    if not isinstance(body, cst.IndentedBlock):
        return None
    top_level = [call for statement in body.body if (call := _statement_call(statement)) is not None]
    adds = [call for call in top_level if _method_name(call) in _ADDS and _receiver(call) is not None]
    if not adds:
        return None
    session = _receiver(adds[0])
    assert session is not None
    session_calls = [call for call in _all_calls(body) if _receiver(call) == session]
    if any(_method_name(call) in _TRANSACTION_CONTROL for call in session_calls):
        return None
    commits = [call for call in session_calls if _method_name(call) == "commit"]
    if any(commit not in top_level for commit in commits):
        return None
    if not commits and not _only_inserts(body, session, session_calls):
        return None
    awaited = any(_is_awaited_in(body, call) for call in session_calls)
    builds = frozenset(_code(call.func) for call in _all_calls(body))
    return _Insert(session, bool(commits), awaited, builds)


def _statement_call(statement: cst.BaseStatement) -> cst.Call | None:
    """The call a statement consists of: `db.add(x)`, `await db.commit()`."""
    if not m.matches(statement, m.SimpleStatementLine(body=[m.Expr()])):
        return None
    value = _unawaited(cst.ensure_type(cst.ensure_type(statement, cst.SimpleStatementLine).body[0], cst.Expr).value)
    return value if isinstance(value, cst.Call) else None


def _only_inserts(body: cst.IndentedBlock, session: str, session_calls: list[cst.Call]) -> bool:
    """A body without a commit of its own, which can run inside a SAVEPOINT: it commits nothing
    and hands the session to no other function (that might commit it), and `session` is one
    (it flushes, or its name says so)."""
    calls = _all_calls(body)
    if any(_method_name(call) == "commit" for call in calls):
        return False
    if any(_code(arg.value) == session for call in calls for arg in call.args):
        return False
    is_session = session.rsplit(".", 1)[-1] in ("session", "db") or session.endswith("_session")
    return is_session or any(_method_name(call) == "flush" for call in session_calls)


def _all_calls(node: cst.CSTNode) -> list[cst.Call]:
    return [cst.ensure_type(call, cst.Call) for call in m.findall(node, m.Call())]


def _is_awaited_in(body: cst.CSTNode, call: cst.Call) -> bool:
    return any(cst.ensure_type(node, cst.Await).expression is call for node in m.findall(body, m.Await()))


# --- the two-statement form: `obj = <lookup>` then `if obj is None:` ---------------------------


def _checked_name(test: cst.BaseExpression) -> _Checked | None:
    if isinstance(test, cst.Name):
        return _Checked(test.value, creates_in_body=False, with_is=False)
    if m.matches(test, m.UnaryOperation(operator=m.Not(), expression=m.Name())):
        return _Checked(cst.ensure_type(cst.ensure_type(test, cst.UnaryOperation).expression, cst.Name).value, True, False)
    for operator, creates_in_body in ((m.Is(), True), (m.IsNot(), False)):
        if m.matches(test, m.Comparison(left=m.Name(), comparisons=[m.ComparisonTarget(operator, _NONE)])):
            return _Checked(cst.ensure_type(cst.ensure_type(test, cst.Comparison).left, cst.Name).value, creates_in_body, True)
    return None


def _assigned_value(statement: cst.BaseStatement, name: str) -> cst.BaseExpression | None:
    """`<value>` of the statement `name = <value>` (or `name: T = <value>`)."""
    single = m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name(name))]) | m.AnnAssign(target=m.Name(name))])
    if not m.matches(statement, single):
        return None
    assignment = cst.ensure_type(statement, cst.SimpleStatementLine).body[0]
    return cst.ensure_type(assignment, (cst.Assign, cst.AnnAssign)).value


def _lookup_call(value: cst.BaseExpression | None) -> _Lookup | None:
    """The lookup `value` makes when it is one row or None: `q.first()`, `session.get(M, k)`..."""
    call = _unawaited(value) if value is not None else None
    if not m.matches(call, m.Call(func=m.Attribute(attr=m.OneOf(*map(m.Name, _LOOKUPS))))):
        return None
    call = cst.ensure_type(call, cst.Call)
    if cst.ensure_type(call.func, cst.Attribute).attr.value == "get":
        return _primary_key_lookup(call, call) if value is call else _primary_key_lookup(value, call)
    return _query_lookup(value, call)


def _branches(node: cst.If, checked: _Checked) -> tuple[cst.IndentedBlock, cst.IndentedBlock | None] | None:
    """(the branch that creates, the branch that uses the row found), by how the `if` tests."""
    other = _as_block(node.orelse.body) if node.orelse is not None else None
    if checked.creates_in_body:
        create: cst.BaseSuite | None = node.body
        update = other
    else:
        create, update = other, _as_block(node.body)
    return (create, update) if isinstance(create, cst.IndentedBlock) else None


def _returns(block: cst.IndentedBlock) -> bool:
    """The block ends with `return`: the name it did not bind is not used after it."""
    return m.matches(block.body[-1], m.SimpleStatementLine(body=[m.Return()])) if block.body else False


def _binds(block: cst.IndentedBlock, name: str) -> bool:
    """The block assigns `name` in a statement of its own (`obj = Model(...)`)."""
    return any(_assigned_value(statement, name) is not None for statement in block.body)


def _assigned_names(node: cst.CSTNode) -> set[str]:
    """Every name `node` binds: assignment, augmented and annotated targets, loop targets,
    `as` names and `:=`."""
    bound: list[cst.CSTNode] = []
    for found in m.findall(node, m.AssignTarget() | m.AugAssign() | m.AnnAssign() | m.For() | m.NamedExpr()):
        bound.append(cst.ensure_type(found, (cst.AssignTarget, cst.AugAssign, cst.AnnAssign, cst.For, cst.NamedExpr)).target)
    bound += [cst.ensure_type(found, cst.AsName).name for found in m.findall(node, m.AsName())]
    return {name for target in bound for name in _names_in(target)}


def _names_in(node: cst.CSTNode) -> set[str]:
    return {cst.ensure_type(name, cst.Name).value for name in m.findall(node, m.Name())} | (
        {node.value} if isinstance(node, cst.Name) else set()
    )


def _same_session(lookup: _Lookup, insert: _Insert) -> bool:
    return lookup.session is None or lookup.session == insert.session


def _recheck(name: str, looked_up: cst.BaseExpression | None, missing: cst.BaseExpression) -> list[cst.BaseStatement]:
    """`obj = <the same lookup>` and `if obj is None: raise`: the concurrent writer's row, or the
    error came from another constraint and must not be swallowed. Without `looked_up`, the
    test `missing` runs the lookup itself."""
    raise_ = cst.If(missing, cst.IndentedBlock([cst.SimpleStatementLine([cst.Raise()])]))
    if looked_up is None:
        return [raise_]
    again = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], looked_up.deep_clone())])
    return [again, raise_]


def _walrus(test: cst.BaseExpression) -> _LookedUpBefore | None:
    """`if not (obj := <lookup>):` / `if (obj := <lookup>) is None:`: the two-statement form in one."""
    named = m.NamedExpr(target=m.Name())
    if m.matches(test, m.UnaryOperation(operator=m.Not(), expression=named)):
        assigned, with_is = cst.ensure_type(cst.ensure_type(test, cst.UnaryOperation).expression, cst.NamedExpr), False
    elif m.matches(test, m.Comparison(left=named, comparisons=[m.ComparisonTarget(m.Is(), _NONE)])):
        assigned, with_is = cst.ensure_type(cst.ensure_type(test, cst.Comparison).left, cst.NamedExpr), True
    else:
        return None
    lookup = _lookup_call(assigned.value)
    if lookup is None:
        return None
    name = cst.ensure_type(assigned.target, cst.Name).value
    missing = cst.parse_expression(f"{name} is None" if with_is else f"not {name}")
    return _LookedUpBefore(lookup, assigned.value, _Checked(name, True, with_is), missing, binds_row=True)


def _inverted_inline(node: cst.If) -> _LookedUpBefore | None:
    """`if q.first(): <found> else: <create>` (or `q.first() is not None`, an `elif`): the
    lookup is the test itself, and "still no row" is its negation."""
    if not isinstance(node.orelse, cst.Else):
        return None
    test = node.test
    if m.matches(test, m.Comparison(comparisons=[m.ComparisonTarget(m.IsNot(), _NONE)])):
        comparison = cst.ensure_type(test, cst.Comparison)
        missing: cst.BaseExpression = comparison.with_changes(
            comparisons=[comparison.comparisons[0].with_changes(operator=cst.Is())]
        )
    elif m.matches(test, m.Call() | m.Await()):
        missing = cst.UnaryOperation(cst.Not(), test)
    else:
        return None
    lookup = _lookup(missing)
    if lookup is None:
        return None
    return _LookedUpBefore(lookup, None, _Checked("", False, False), missing.deep_clone(), binds_row=False)


def _with_create(node: cst.If, checked: _Checked, handled: cst.Try) -> cst.If:
    """`node` with its creating branch replaced by `handled`."""
    if checked.creates_in_body:
        return node.with_changes(body=cst.ensure_type(node.body, cst.IndentedBlock).with_changes(body=[handled]))
    orelse = cst.ensure_type(node.orelse, cst.Else)
    block = cst.ensure_type(orelse.body, cst.IndentedBlock)
    return node.with_changes(orelse=orelse.with_changes(body=block.with_changes(body=[handled])))


# --- Django: `if not M.objects.filter(...).exists(): M.objects.create(...)` ---------------------

_DJANGO_MANAGER = m.Attribute(value=m.Name() | m.Attribute(), attr=m.Name("objects"))
_KEYWORDS_ONLY = m.MatchIfTrue(lambda args: all(arg.keyword is not None and not arg.star for arg in args))


_DJANGO_FILTER = m.Call(func=m.Attribute(value=_DJANGO_MANAGER, attr=m.Name("filter")), args=_KEYWORDS_ONLY)
_DJANGO_CREATE = m.Call(func=m.Attribute(value=_DJANGO_MANAGER, attr=m.Name("create")), args=_KEYWORDS_ONLY)
_DJANGO_EXISTS = m.Call(func=m.Attribute(value=_DJANGO_FILTER, attr=m.Name("exists")), args=[])
_EXISTS_OF_NAME = m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("exists")), args=[])
_EXPR_OR_ASSIGN = m.SimpleStatementLine(body=[m.Expr() | m.Assign(targets=[m.AssignTarget(m.Name())])])


def _django_check_then_create(node: cst.If, before: cst.BaseExpression | None) -> _DjangoCheck | None:
    """`if not M.objects.filter(...).exists(): M.objects.create(...)` (then other statements,
    and an `else:`, or not); or `if not found:` where `before` is what `found` was set to right
    before the `if` (that line stays)."""
    body = m.IndentedBlock(body=[m.SimpleStatementLine(body=[m.Expr(_DJANGO_CREATE)]), m.ZeroOrMore()])
    if not m.matches(node, m.If(test=m.UnaryOperation(operator=m.Not()), body=body)):  # `elif`s never get here
        return None
    tested = before if before is not None else cst.ensure_type(node.test, cst.UnaryOperation).expression
    if not m.matches(tested, _DJANGO_EXISTS):
        return None
    line = cst.ensure_type(cst.ensure_type(node.body, cst.IndentedBlock).body[0], cst.SimpleStatementLine)
    created = cst.ensure_type(cst.ensure_type(line.body[0], cst.Expr).value, cst.Call)
    filtered = cst.ensure_type(cst.ensure_type(cst.ensure_type(tested, cst.Call).func, cst.Attribute).value, cst.Call)
    return _django_check(filtered, created)


def _django_get_then_create(node: cst.If, looked_up: cst.BaseExpression | None, checked: _Checked) -> _DjangoCheck | None:
    """`obj = M.objects.filter(...).first()` then `if obj is None: obj = M.objects.create(...)`."""
    first = m.Call(func=m.Attribute(value=_DJANGO_FILTER, attr=m.Name("first")), args=[])
    assign = m.Assign(targets=[m.AssignTarget(m.Name(checked.name))], value=_DJANGO_CREATE)
    body = m.IndentedBlock(body=[m.SimpleStatementLine(body=[assign])])
    if looked_up is None or not checked.creates_in_body or not m.matches(looked_up, first) or not m.matches(node.body, body):
        return None
    filtered = cst.ensure_type(cst.ensure_type(cst.ensure_type(looked_up, cst.Call).func, cst.Attribute).value, cst.Call)
    line = cst.ensure_type(cst.ensure_type(node.body, cst.IndentedBlock).body[0], cst.SimpleStatementLine)
    return _django_check(filtered, cst.ensure_type(cst.ensure_type(line.body[0], cst.Assign).value, cst.Call))


# --- guards: `if found: return` before an insert -------------------------------------------------

_HELPER_LOOKUP = re.compile(r"(?:get|find|fetch|read)(?:_\w+)?")
_HELPER_CREATE = re.compile(r"(?:create|insert|add)(?:_\w+)?")


def _session_argument(call: cst.Call) -> str | None:
    """The session a helper is handed: its first argument, or `db=` / `session=`, named like one."""
    given = [arg.value for arg in call.args if arg.keyword is None][:1] + [
        arg.value for arg in call.args if arg.keyword is not None and SESSION_NAME.fullmatch(arg.keyword.value)
    ]
    names = [_code(value) for value in given if isinstance(value, (cst.Name, cst.Attribute))]
    return next((name for name in names if SESSION_NAME.search(name)), None)



def _guard(node: cst.If, before: list[cst.BaseStatement], after: list[cst.BaseStatement]) -> str | None:
    """The looked-up name(s) an `if`/`elif` branch exits on when they exist, when an insert of
    their model follows on their session (later in the chain, or after the `if`); None otherwise."""
    branches: list[tuple[cst.BaseExpression | None, cst.BaseSuite]] = []
    current: cst.If | cst.Else | None = node
    while current is not None:
        if isinstance(current, cst.If):
            branches.append((current.test, current.body))
            current = current.orelse
        else:
            branches.append((None, current.body))
            current = None
    for index, (test, body) in enumerate(branches):
        names = _existence_tested(test) if test is not None else None
        if not names or not _exits(body):
            continue
        lookups = [_looked_up(name, before) for name in names]
        if any(lookup is None for lookup in lookups):
            continue
        later = [statement for _, block in branches[index + 1 :] for statement in _as_block(block).body] + after
        if any(_inserts(later, lookup) for lookup in lookups if lookup is not None):
            return " or ".join(f"`{name}`" for name in names)
    return None


def _existence_tested(test: cst.BaseExpression) -> list[str] | None:
    """The names `test` checks for a row, when that is all it checks: `found`, `found is not
    None`, `list(rows)`, and `or` of those."""
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.Or):
        left, right = _existence_tested(test.left), _existence_tested(test.right)
        return left + right if left and right else None
    if m.matches(test, m.Comparison(left=m.Name(), comparisons=[m.ComparisonTarget(m.IsNot(), _NONE)])):
        return [cst.ensure_type(cst.ensure_type(test, cst.Comparison).left, cst.Name).value]
    if m.matches(test, m.Call(func=m.Name("list"), args=[m.Arg(m.Name(), keyword=None, star="")])):
        return [cst.ensure_type(cst.ensure_type(test, cst.Call).args[0].value, cst.Name).value]
    return [test.value] if isinstance(test, cst.Name) else None


def _exits(block: cst.BaseSuite) -> bool:
    """The block ends with `return` or `raise`."""
    last = _as_block(block).body[-1] if _as_block(block).body else None
    return m.matches(last, m.SimpleStatementLine(body=[m.ZeroOrMore(), m.Return() | m.Raise()]))


def _looked_up(name: str, before: list[cst.BaseStatement]) -> _Lookup | None:
    """The lookup `name` was last assigned (a row, or a query over rows), when nothing between
    that assignment and the `if` reads `name`."""
    for position in range(len(before) - 1, -1, -1):
        value = _assigned_value(before[position], name)
        if value is not None:
            call = _unawaited(value)
            lookup = _lookup_call(value) or (_query_lookup(value, call) if isinstance(call, cst.Call) else None)
            return lookup if lookup is not None and lookup.model is not None else None
        if name in _names_in(before[position]):
            return None
    return None


def _inserts(statements: list[cst.BaseStatement], lookup: _Lookup) -> bool:
    """A statement adds to the lookup's session, and one builds its model (`User(...)`)."""
    adds = {_receiver(call) for statement in statements if (call := _statement_call(statement)) and _method_name(call) in _ADDS}
    builds = {_code(call.func) for statement in statements for call in _all_calls(statement)}
    return lookup.model in builds and (lookup.session in adds if lookup.session is not None else bool(adds))


def _django_get_except_create(node: cst.Try) -> tuple[_DjangoCheck, str] | None:
    """`try: obj = M.objects.get(...)` `except M.DoesNotExist: obj = M.objects.create(...)`: the
    check and the name both statements assign."""
    get = m.Call(func=m.Attribute(value=_DJANGO_MANAGER, attr=m.Name("get")), args=_KEYWORDS_ONLY)
    assign = m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name())])])
    handler = node.handlers[0]
    if not m.matches(node.body, m.IndentedBlock(body=[assign])) or not m.matches(handler.body, m.IndentedBlock(body=[assign])):
        return None
    looked_up = _single_assignment(node.body)
    created = _single_assignment(handler.body)
    same_name = looked_up.targets[0].target.deep_equals(created.targets[0].target)
    if not same_name or not m.matches(looked_up.value, get) or not m.matches(created.value, _DJANGO_CREATE):
        return None
    call = cst.ensure_type(looked_up.value, cst.Call)
    model = cst.ensure_type(cst.ensure_type(call.func, cst.Attribute).value, cst.Attribute).value
    missing = m.Attribute(value=m.MatchIfTrue(model.deep_equals), attr=m.Name("DoesNotExist"))
    if not m.matches(handler.type, missing | m.Name("ObjectDoesNotExist") | m.Attribute(attr=m.Name("ObjectDoesNotExist"))):
        return None
    check = _django_check(call, cst.ensure_type(created.value, cst.Call))
    return None if check is None else (check, cst.ensure_type(created.targets[0].target, cst.Name).value)


def _single_assignment(block: cst.BaseSuite) -> cst.Assign:
    line = cst.ensure_type(cst.ensure_type(block, cst.IndentedBlock).body[0], cst.SimpleStatementLine)
    return cst.ensure_type(line.body[0], cst.Assign)


def _one_except_no_result_then_add(node: cst.Try) -> bool:
    """`try: <query>.one()` (or `.scalar_one()`, assigned or not) `except NoResultFound:` whose
    handler adds to the session the query runs on."""
    statement = m.SimpleStatementLine(body=[m.Expr() | m.Assign()])
    if not m.matches(node.body, m.IndentedBlock(body=[statement])):
        return False
    handler = node.handlers[0]
    if not m.matches(handler.type, m.Name("NoResultFound") | m.Attribute(attr=m.Name("NoResultFound"))):
        return False
    line = cst.ensure_type(cst.ensure_type(node.body, cst.IndentedBlock).body[0], cst.SimpleStatementLine)
    value = _unawaited(cst.ensure_type(line.body[0], (cst.Expr, cst.Assign)).value)
    if not m.matches(value, m.Call(func=m.Attribute(attr=m.Name("one") | m.Name("scalar_one")), args=[])):
        return False
    lookup = _query_lookup(value, cst.ensure_type(value, cst.Call))
    adds = [call for statement in cst.ensure_type(handler.body, cst.IndentedBlock).body if (call := _statement_call(statement))]
    sessions = {_receiver(call) for call in adds if _method_name(call) in _ADDS}
    return lookup is not None and bool(sessions) and (lookup.session is None or lookup.session in sessions)


def _django_check(filtered: cst.Call, created: cst.Call) -> _DjangoCheck | None:
    """The check, when the create is on the filter's manager and repeats every filter (same
    field, same value)."""
    manager = cst.ensure_type(filtered.func, cst.Attribute).value
    if not cst.ensure_type(created.func, cst.Attribute).value.deep_equals(manager):
        return None
    given = {_keyword(arg): arg.value for arg in created.args}
    filters = {_keyword(arg): arg.value for arg in filtered.args}
    repeated = all(key in given and given[key].deep_equals(value) for key, value in filters.items())
    if not filters or "defaults" in given or not repeated:
        return None  # `a__in=...` lookups are not fields the create repeats
    model = cst.ensure_type(manager, cst.Attribute).value
    return _DjangoCheck(manager, model, frozenset(filters), created)


def _created(get_or_create: cst.Call) -> cst.Subscript:
    """`<get_or_create>[1]`: whether it inserted the row."""
    return cst.Subscript(get_or_create, [cst.SubscriptElement(cst.Index(cst.Integer("1")))])


def _keyword(arg: cst.Arg) -> str:
    return cst.ensure_type(arg.keyword, cst.Name).value


def _get_or_create(check: _DjangoCheck) -> cst.Call:
    """`M.objects.get_or_create(<filters>, defaults={<the rest>})`, in the create's order and
    layout (a create written one argument a line stays so)."""
    created = check.created.args
    looked_up = [arg for arg in created if _keyword(arg) in check.filters]
    rest = [arg for arg in created if _keyword(arg) not in check.filters]
    last = created[-1].comma  # the create's trailing comma (and the line break before `)`), or none
    between = created[0].comma if len(created) > 1 else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    separated = [arg if arg is not created[-1] else arg.with_changes(comma=between) for arg in looked_up]
    if rest:
        defaults = cst.Dict([cst.DictElement(cst.SimpleString(f'"{_keyword(arg)}"'), arg.value) for arg in rest])
        tight = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))
        arguments = [*separated, cst.Arg(defaults, keyword=cst.Name("defaults"), equal=tight, comma=last)]
    else:
        arguments = [*separated[:-1], separated[-1].with_changes(comma=last)]
    get_or_create = cst.Attribute(check.manager, cst.Name("get_or_create"))
    return check.created.with_changes(func=get_or_create, args=arguments)


# --- the rewrite --------------------------------------------------------------------------------


def _try_insert(node: cst.If, insert: _Insert, lookup_awaited: bool, integrity_error: str) -> cst.Try:
    """The inline form: the check goes; when the insert conflicts, the handler runs the check
    again (re-raising when it still finds no row: another constraint failed), then the former
    `else:`."""
    orelse = cst.ensure_type(node.orelse, cst.Else) if node.orelse is not None else None
    body = cst.ensure_type(node.body, cst.IndentedBlock)
    recheck = _recheck("", None, node.test.deep_clone())
    handled = _try(body, insert, lookup_awaited, integrity_error, recheck, orelse)
    return handled.with_changes(leading_lines=node.leading_lines)


def _try(
    body: cst.IndentedBlock,
    insert: _Insert,
    lookup_awaited: bool,
    integrity_error: str,
    recheck: list[cst.BaseStatement],
    handled: cst.Else | cst.IndentedBlock | None,
) -> cst.Try:
    """`try: <body>` (in a SAVEPOINT when it does not commit) `except IntegrityError:` rolling
    back, then `recheck`, then `handled` (an `else:` moved there, or a copy of a branch)."""
    asynchronous = insert.awaited or lookup_awaited
    first: list[cst.BaseStatement] = []
    if insert.commits:
        first.append(_session_call(insert.session, "rollback", asynchronous))
    else:
        body = body.with_changes(body=[_savepoint(body, insert.session, asynchronous)])
    if isinstance(handled, cst.IndentedBlock):  # a copy: its comments and header stay where they are
        handled = cst.Else(handled.deep_clone().with_changes(header=cst.TrailingWhitespace()))
    handler = _handler(handled, [*first, *recheck], cst.parse_expression(integrity_error))
    return cst.Try(body=body, handlers=[handler])


def _handler(orelse: cst.Else | None, first: list[cst.BaseStatement], caught: cst.BaseExpression) -> cst.ExceptHandler:
    """`except <caught>:` running `first`, then the former `else:` branch (keeping its comments)."""
    block = _as_block(orelse.body) if orelse is not None else cst.IndentedBlock(body=[])
    statements = [*first, *block.body] or [cst.SimpleStatementLine([cst.Pass()])]
    return cst.ExceptHandler(
        body=block.with_changes(body=statements),
        type=caught,
        leading_lines=orelse.leading_lines if orelse is not None else (),
    )


def _as_block(suite: cst.BaseSuite) -> cst.IndentedBlock:
    """`else: x()` on one line, as an indented block."""
    if isinstance(suite, cst.IndentedBlock):
        return suite
    line = cst.ensure_type(suite, cst.SimpleStatementSuite)
    return cst.IndentedBlock(body=[cst.SimpleStatementLine(body=line.body)], header=line.trailing_whitespace)


def _savepoint(body: cst.IndentedBlock, session: str, asynchronous: bool) -> cst.With:
    begin = cst.Call(func=cst.Attribute(cst.parse_expression(session), cst.Name("begin_nested")))
    return cst.With(
        items=[cst.WithItem(begin)],
        body=cst.IndentedBlock(body=body.body),
        asynchronous=cst.Asynchronous() if asynchronous else None,
    )


def _session_call(session: str, method: str, awaited: bool) -> cst.SimpleStatementLine:
    call: cst.BaseExpression = cst.Call(func=cst.Attribute(cst.parse_expression(session), cst.Name(method)))
    return cst.SimpleStatementLine([cst.Expr(cst.Await(call) if awaited else call)])


# --- names ----------------------------------------------------------------------------------------


def _imported_spellings(scope: Scope) -> Iterator[str]:
    """Ways to spell IntegrityError from the imports this scope sees (`IE`, `exc.IntegrityError`,
    `sa.exc.IntegrityError`)."""
    for name in _imported_names(scope):
        yield name
        yield f"{name}.IntegrityError"
        yield f"{name}.exc.IntegrityError"


def _imported_names(scope: Scope) -> Iterator[str]:
    current: Scope | None = scope
    while current is not None:
        for assignment in current.assignments:
            if isinstance(assignment, ImportAssignment):
                yield assignment.name
        current = current.parent if current.parent is not current else None


def _resolves(scope: Scope, spelling: str) -> set[str]:
    return {qualified.name for qualified in scope.get_qualified_names_for(spelling)}


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _unawaited(node: cst.BaseExpression) -> cst.BaseExpression:
    return node.expression if isinstance(node, cst.Await) else node


def _has_await(node: cst.CSTNode) -> bool:
    return bool(m.findall(node, m.Await()))


# --- the cheap check on the stdlib AST ----------------------------------------------------------


def _may_insert(statement: ast.stmt) -> bool:
    """`[x =] [await] y.add(...)`, `.add_all(...)`, `.create...(...)`."""
    value = statement.value if isinstance(statement, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
    call = _unawaited_ast(value) if value is not None else None
    callee = call.func if isinstance(call, ast.Call) else None
    return isinstance(callee, ast.Attribute) and (callee.attr in _ADDS or callee.attr.startswith("create"))


def _looks_up_then_adds(node: ast.AST) -> bool:
    """`if` + "no row" test + top-level `X.add(...)`; the lookup goes through a query, or is
    `X.get(Model, key)` on the receiver of the add (`options.get("k", True)` is a dict)."""
    assert isinstance(node, ast.If)
    lookup, branch = _tested_ast_call(node.test), node.body
    if lookup is None:  # `if q.first(): <found> else: <create>`
        lookup, branch = _found_ast_call(node.test), node.orelse
    if lookup is None:
        return False
    receivers = {ast.unparse(call.func.value) for call in _top_level_ast_calls(branch) if call.func.attr in _ADDS}
    if not receivers:
        return False
    if lookup.func.attr == "get" and len(lookup.args) == 2:
        return ast.unparse(lookup.func.value) in receivers
    queries = quickscan.calls_named("query", "select", "scalars", "execute")
    return any(
        queries(inner) if isinstance(inner, ast.Call) else _is_attribute_named(inner, "query")
        for inner in quickscan.of_type(node.test, ast.Call, ast.Attribute)
    )


def _found_ast_call(test: ast.expr) -> ast.Call | None:
    """`x.first()` in `x.first()` and `x.first() is not None` (awaited or not)."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot):
        test = test.left
    tested = test.value if isinstance(test, ast.Await) else test
    if isinstance(tested, ast.Call) and isinstance(tested.func, ast.Attribute) and tested.func.attr in _LOOKUPS:
        return tested
    return None


def _tested_ast_call(test: ast.expr) -> ast.Call | None:
    """`x.first()` in `not x.first()`, `x.first() is None`, `x.count() == 0` (awaited or not)."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        tested = test.operand
    elif isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Is, ast.Eq)):
        tested = test.left
    else:
        return None
    tested = tested.value if isinstance(tested, ast.NamedExpr) else tested  # `not (obj := q.first())`
    tested = tested.value if isinstance(tested, ast.Await) else tested
    if isinstance(tested, ast.Call) and isinstance(tested.func, ast.Attribute):
        return tested if tested.func.attr in _LOOKUPS | {_COUNT} else None
    return None


def _top_level_ast_calls(body: list[ast.stmt]) -> Iterator[ast.Call]:
    """The method calls that are statements of their own (awaited or not), as `_statement_call`."""
    for statement in body:
        value = _unawaited_ast(statement.value) if isinstance(statement, ast.Expr) else None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
            yield value


def _unawaited_ast(node: ast.expr) -> ast.expr:
    return node.value if isinstance(node, ast.Await) else node


def _is_attribute_named(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == name


def _checks_then_inserts(statements: list[ast.stmt]) -> bool:
    """An `if` of the block tests a lookup the statement before it assigned, or exits early on
    a looked-up row before an insert."""
    return any(
        (position > 0 and _gets_then_creates(statements[position - 1], statement)) or _guards_then_adds(statements, position)
        for position, statement in enumerate(statements)
        if isinstance(statement, ast.If)
    )


def _gets_then_creates(before: ast.stmt, statement: ast.If) -> bool:
    """What `_flag_get_or_create` and `_flag_helpers_get_or_create` ask, loosely: `obj = <a
    lookup naming its model>` then `if obj is None:` (`not obj`, inverted `obj`...) whose
    creating branch adds at its top level; `obj = X.filter(...).first()` then `if obj is None:
    obj = X.objects.create(...)`; `obj = crud.get_x(db, ...)` then `if not obj: obj =
    crud.create_x(db, ...)`; or `result = s.execute(...)` then a test of `result.scalar()`
    (...) for "no row", with a body that adds, one of the two naming the model."""
    assigned = _assigned_ast(before)
    if assigned is None or not isinstance(assigned[1], ast.Call):
        return False
    name, value = assigned
    method = quickscan.called_name(value)
    creates_in_body = _creates_in_body(statement.test, name)
    if creates_in_body is not None:
        create = statement.body if creates_in_body else statement.orelse
        if isinstance(value.func, ast.Attribute) and method in _LOOKUPS and _adds_at_top_level(create) and _names_a_model(value):
            return True
        if creates_in_body and method == "first" and any(map(_is_django_create, statement.body)):
            return True
        helper = _HELPER_LOOKUP.fullmatch(method or "")
        if creates_in_body and helper and _helper_creates(value, statement.body, name):
            return True
    if method in ("execute", "scalars") and isinstance(value.func, ast.Attribute) and _tests_result_of(statement.test, name):
        return _adds_at_top_level(statement.body) and (_names_a_model(value) or _names_a_model(statement.test))
    return False


def _assigned_ast(statement: ast.stmt) -> tuple[str, ast.expr] | None:
    """(`name`, `<value>`, unawaited) for `name = <value>` and `name: T = <value>`."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target: ast.expr = statement.targets[0]
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        target = statement.target
    else:
        return None
    assert statement.value is not None
    return (target.id, _unawaited_ast(statement.value)) if isinstance(target, ast.Name) else None


def _creates_in_body(test: ast.expr, name: str) -> bool | None:
    """As `_checked_name`: True for `not name` / `name is None`, False for `name` / `name is not
    None`; None when the test is not one of these."""
    if isinstance(test, ast.Name):
        return False if test.id == name else None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return True if isinstance(test.operand, ast.Name) and test.operand.id == name else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and _is_none(test.comparators[0]):
        if isinstance(test.left, ast.Name) and test.left.id == name and isinstance(test.ops[0], (ast.Is, ast.IsNot)):
            return isinstance(test.ops[0], ast.Is)
    return None


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _adds_at_top_level(block: list[ast.stmt]) -> bool:
    return any(call.func.attr in _ADDS for call in _top_level_ast_calls(block))  # type: ignore[attr-defined]


def _names_a_model(expression: ast.expr) -> bool:
    """Loosely what `_query_lookup` and `_primary_key_lookup` need to find the model: a
    `query(...)`/`select(...)` with arguments, a `.query` attribute (Flask-SQLAlchemy's), a
    `filter(...)`/`where(...)` comparing an attribute with `==`, or `get(Model, key)`."""
    for node in ast.walk(expression):
        if isinstance(node, ast.Attribute) and node.attr == "query":
            return True
        if not isinstance(node, ast.Call):
            continue
        called = quickscan.called_name(node)
        arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
        if called in ("query", "select") and arguments:
            return True
        if called in ("filter", "where") and any(map(_is_equality, arguments)):
            return True
        if called == "get" and len(node.args) == 2 and not node.keywords and not any(isinstance(arg, ast.Starred) for arg in node.args):
            return True
    return False


def _is_equality(condition: ast.expr) -> bool:
    """`User.email == value`, as `_equality` takes it."""
    return (
        isinstance(condition, ast.Compare)
        and isinstance(condition.left, ast.Attribute)
        and len(condition.ops) == 1
        and isinstance(condition.ops[0], ast.Eq)
    )


def _helper_creates(looked_up: ast.Call, body: list[ast.stmt], name: str) -> bool:
    """`name = <create helper>(<the lookup's session argument>, ...)` among the body's statements."""
    session = _ast_session_argument(looked_up)
    if session is None:
        return False
    for statement in body:
        assigned = _assigned_ast(statement)
        if assigned is None or assigned[0] != name or not isinstance(assigned[1], ast.Call):
            continue
        if _HELPER_CREATE.fullmatch(quickscan.called_name(assigned[1]) or "") and _ast_session_argument(assigned[1]) == session:
            return True
    return False


def _ast_session_argument(call: ast.Call) -> str | None:
    """`_session_argument` on the stdlib AST (the code as `ast.unparse` spells it)."""
    given = [arg.value if isinstance(arg, ast.Starred) else arg for arg in call.args][:1] + [
        keyword.value for keyword in call.keywords if keyword.arg is not None and SESSION_NAME.fullmatch(keyword.arg)
    ]
    names = [ast.unparse(value) for value in given if isinstance(value, (ast.Name, ast.Attribute))]
    return next((name for name in names if SESSION_NAME.search(name)), None)


def _is_django_create(statement: ast.stmt) -> bool:
    """`obj = X.objects.create(...)`."""
    if not isinstance(statement, ast.Assign) or not isinstance(statement.value, ast.Call):
        return False
    callee = statement.value.func
    return isinstance(callee, ast.Attribute) and callee.attr == "create" and _is_attribute_named(callee.value, "objects")


def _tests_result_of(test: ast.expr, name: str) -> bool:
    """The test looks for "no row" in `name.scalar()`, `name.scalars().first()`..."""
    call = _tested_ast_call(test)
    root: ast.expr | None = call.func if call is not None else None
    while isinstance(root, (ast.Attribute, ast.Call)):
        root = root.value if isinstance(root, ast.Attribute) else root.func
    return isinstance(root, ast.Name) and root.id == name


def _guards_then_adds(statements: list[ast.stmt], position: int) -> bool:
    """What `_guard` asks, loosely: an `if` (or a branch of its `elif` chain) testing only that
    looked-up names exist (`found`, `found is not None`, `list(rows)`, `or` of those), whose
    branch ends in `return`/`raise`, each name last assigned a lookup naming its model before
    the `if`, and after the branch (later in the chain or after the `if`) an `.add(...)`
    statement and a call of a looked-up model."""
    node = statements[position]
    assert isinstance(node, ast.If)
    chain: list[ast.If] = [node]
    while len(chain[-1].orelse) == 1 and isinstance(chain[-1].orelse[0], ast.If):
        chain.append(chain[-1].orelse[0])
    guards = [index for index, branch in enumerate(chain) if _exits_on_existence(branch)]
    if not guards:
        return False
    after = [*chain[-1].orelse, *statements[position + 1 :]]
    for index in guards:
        later = [statement for branch in chain[index + 1 :] for statement in branch.body] + after
        if not _adds_at_top_level(later):
            continue
        lookups = [_looked_up_ast(name, statements, position) for name in _existence_tested_ast(chain[index].test) or []]
        if all(lookups) and _builds_one_of(later, cast("list[ast.Call]", lookups)):
            return True
    return False


def _exits_on_existence(branch: ast.If) -> bool:
    return isinstance(branch.body[-1], (ast.Return, ast.Raise)) and bool(_existence_tested_ast(branch.test))


def _existence_tested_ast(test: ast.expr) -> list[str] | None:
    """The names `test` checks for a row, when that is all it checks (as `_existence_tested`)."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        parts = [_existence_tested_ast(value) for value in test.values]
        return [name for part in parts for name in part or []] if all(parts) else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot) and _is_none(test.comparators[0]):
        return [test.left.id] if isinstance(test.left, ast.Name) else None
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "list":
        if len(test.args) == 1 and not test.keywords and isinstance(test.args[0], ast.Name):
            return [test.args[0].id]
        return None
    return [test.id] if isinstance(test, ast.Name) else None


def _looked_up_ast(name: str, statements: list[ast.stmt], position: int) -> ast.Call | None:
    """The lookup naming its model that `name` was last assigned before `position`, unless a
    statement in between reads `name` (as `_looked_up`)."""
    for statement in reversed(statements[:position]):
        assigned = _assigned_ast(statement)
        if assigned is not None and assigned[0] == name:
            value = assigned[1]
            return value if isinstance(value, ast.Call) and _names_a_model(value) else None
        if any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(statement)):
            return None
    return None


def _builds_one_of(statements: list[ast.stmt], lookups: list[ast.Call]) -> bool:
    """A call in `statements` whose callee is written as a part of a lookup (its model: `User(...)`)."""
    callees = {ast.unparse(node.func) for statement in statements for node in ast.walk(statement) if isinstance(node, ast.Call)}
    return any(ast.unparse(part) in callees for lookup in lookups for part in ast.walk(lookup) if isinstance(part, ast.expr))


def _looks_up_by_exception(node: ast.AST) -> bool:
    """`try:` one statement calling `.get(...)`, `.one()` or `.scalar_one()`, with one handler
    whose statements call `.create(...)` or `.add(...)`."""
    assert isinstance(node, ast.Try)
    if len(node.body) != 1 or len(node.handlers) != 1 or node.orelse or node.finalbody:
        return False
    tried = node.body[0]
    value = tried.value if isinstance(tried, (ast.Assign, ast.Expr)) else None
    value = value.value if isinstance(value, ast.Await) else value
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)):
        return False
    if value.func.attr == "get":
        return any(_is_django_create(statement) for statement in node.handlers[0].body)
    adds = any(call.func.attr in _ADDS for call in _top_level_ast_calls(node.handlers[0].body))
    return value.func.attr in ("one", "scalar_one") and adds


def _django_found_else_creates(node: ast.If) -> bool:
    """`if X.objects.filter(...).exists():` (or `if <name>:`) with an `else:` of which a
    statement is `[obj =] X.objects.create(...)`."""
    test = node.test
    exists = test.func if isinstance(test, ast.Call) else None
    if not isinstance(test, ast.Name) and not (isinstance(exists, ast.Attribute) and exists.attr == "exists"):
        return False
    calls = _top_level_ast_calls(node.orelse)
    creates = any(call.func.attr == "create" and _is_attribute_named(call.func.value, "objects") for call in calls)
    return creates or any(_is_django_create(statement) for statement in node.orelse)


def _django_exists_then_creates(node: ast.If) -> bool:
    """`if not X.objects.filter(...).exists():` (or `if not <name>:`) whose first statement
    calls `X.objects.create(...)`."""
    test = node.test
    if not (isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)):
        return False
    exists = test.operand.func if isinstance(test.operand, ast.Call) else None
    if not isinstance(test.operand, ast.Name) and not (isinstance(exists, ast.Attribute) and exists.attr == "exists"):
        return False
    calls = list(_top_level_ast_calls(node.body[:1]))
    return len(calls) == 1 and calls[0].func.attr == "create" and _is_attribute_named(calls[0].func.value, "objects")
