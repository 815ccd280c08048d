"""UL501 from-env-missing-field

## What it does
Finds a settings class whose classmethod (typically `from_env`) reads the environment with
`os.getenv`, `os.environ.get` or `os.environ[...]` and builds `cls(...)` without passing some of
the fields the class declares. A missing field that has a default gets a lookup of its own,
`name=<conversion>(os.getenv("<PREFIX>_<NAME>", "<default>"))`, added to the `cls(...)` call:

- the prefix is the one the method's other variables share (`AUTODOCS_` in the example below;
  none when they share none), and the lookup is written the way the method already writes it
  (`os.getenv`, `getenv`, `os.environ.get`, `environ.get`, in its quotes);
- the conversion comes from the annotation: `int(...)`, `float(...)`, nothing for `str`, the
  module's own name for `pathlib.Path`, and for `bool` a real parse
  (`os.getenv("APP_DEBUG", "false").lower() in ("1", "true", "yes", "on")`, never
  `bool("false")`, which is `True`);
- the default is the field's own literal (a number, string, `True`/`False`, or `Path("...")`).

A missing field without a default, or one whose annotation or default can't be turned into a
lookup (`list[str]`, `Optional[int]`, `field(default_factory=...)`, ...), is reported by name.

The classes considered: dataclasses, attrs classes (`@define`, `@frozen`, `@attr.s(auto_attribs=True)`),
pydantic `BaseModel`s and `NamedTuple`s, whose fields are the annotated names declared in the class
itself (not `ClassVar`s, not `init=False` fields, not `_private` names, not aliased pydantic
fields); and classes that declare annotated class-level fields and their own `__init__`, whose
fields are that `__init__`'s parameters. Classes with other bases (inherited fields can't be
seen), a metaclass, or an `__init__` taking `*args`/`**kwargs` are left alone; so are calls with
positional, `*` or `**` arguments. pydantic-settings' `BaseSettings` is left alone too: it reads
every field that `cls(...)` does not pass from the environment by itself.

## Why is this bad?
A field that `from_env()` forgets can't be configured: setting `AUTODOCS_MAX_RETRY_ATTEMPTS` in
production changes nothing, and the field silently keeps its development default. A forgotten
field without a default is worse: the service crashes at startup with a `TypeError`, far from the
settings file that caused it (seed 004 #1).

## Example
```python
@dataclass
class AutoDocsConfig:
    max_concurrent: int = 10
    max_retry_attempts: int = 3

    @classmethod
    def from_env(cls) -> "AutoDocsConfig":
        return cls(
            max_concurrent=int(os.getenv("AUTODOCS_MAX_CONCURRENT", "10")),
        )
```

## Use instead
```python
@dataclass
class AutoDocsConfig:
    max_concurrent: int = 10
    max_retry_attempts: int = 3

    @classmethod
    def from_env(cls) -> "AutoDocsConfig":
        return cls(
            max_concurrent=int(os.getenv("AUTODOCS_MAX_CONCURRENT", "10")),
            max_retry_attempts=int(os.getenv("AUTODOCS_MAX_RETRY_ATTEMPTS", "3")),
        )
```

## Fix safety
Unsafe: the fixed program reads environment variables it did not read before, under names the
rule derives from the others (check them), so a deployment that happens to set one changes the
configuration. The default stays the field's own, so without those variables nothing changes.
Missing fields without a default are reported only: a human must choose the variable.
"""

from __future__ import annotations

import ast
import os.path
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider, QualifiedName, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import analysis, quickscan
from unleak.rule import FixSafety, Invalid, Rule, SliceScope, Valid

_ENV_GETTERS = frozenset({"os.getenv", "os.environ.get"})
_ENV_MAPPING = "os.environ"

_DATACLASS_DECORATORS = frozenset(
    {
        "dataclasses.dataclass",
        "pydantic.dataclasses.dataclass",
        "attr.define",
        "attr.frozen",
        "attr.mutable",
        "attr.dataclass",
        "attrs.define",
        "attrs.frozen",
        "attrs.mutable",
    }
)
# Classic attrs only turns annotations into fields with auto_attribs=True.
_CLASSIC_ATTRS_DECORATORS = frozenset({"attr.s", "attr.attrs"})
_FIELD_BASES = frozenset({"pydantic.BaseModel", "pydantic.main.BaseModel", "typing.NamedTuple"})
_NEUTRAL_BASES = frozenset({"builtins.object", "typing.Generic"})
_FIELD_FUNCTIONS = frozenset(
    {"dataclasses.field", "pydantic.Field", "pydantic.fields.Field", "attr.ib", "attr.attrib", "attr.field", "attrs.field"}
)
# pydantic's Field takes its default as the first positional argument.
_POSITIONAL_DEFAULT_FUNCTIONS = frozenset({"pydantic.Field", "pydantic.fields.Field"})
_PYDANTIC_RESERVED = frozenset({"model_config"})

_CONVERSIONS = {
    "builtins.int": "int",
    "builtins.float": "float",
    "builtins.str": "str",
    "builtins.bool": "bool",
    "pathlib.Path": "path",
}
_DEFAULT_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "path": (str,)}
_TRUTHY_WORDS = ("1", "true", "yes", "on")

_CLASSVAR = re.compile(r"""^["']?(\w+\.)*ClassVar\b""")
_FALSE = m.Name("False")
_SIMPLE_LITERAL = (
    m.Integer()
    | m.Float()
    | m.SimpleString()
    | m.Name("True")
    | _FALSE
    | m.UnaryOperation(operator=m.Minus(), expression=m.Integer() | m.Float())
)


@dataclass(frozen=True)
class _Field:
    """One keyword argument the class's constructor accepts."""

    name: str
    annotation: cst.BaseExpression | None
    required: bool
    default: cst.BaseExpression | None = None


@dataclass(frozen=True)
class _EnvRead:
    """How the method reads the environment: the lookup to copy, and the names it reads."""

    getter: str  # code of the function to call: "os.getenv", "environ.get", ...
    variables: tuple[str, ...]
    quote: str


class FromEnvMissingField(Rule):
    code = "UL501"
    name = "from-env-missing-field"
    safety = FixSafety.UNSAFE
    summary = "A classmethod builds the settings from the environment but skips some of the class's fields"
    trigger = (rb"getenv|environ", rb"classmethod", rb"\bcls\s*\(")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)
    slice_scope = SliceScope.TOP_LEVEL_CLASS

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """A class with a method that calls `cls(...)` and reads the environment."""
        classes = quickscan.of_type(tree, ast.ClassDef)
        methods = (method for class_ in classes for method in quickscan.of_type(class_, ast.FunctionDef))
        return any(quickscan.calls_in(method, quickscan.calls_named("cls")) and _reads_environment(method) for method in methods)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        fields = self._constructor_fields(node)
        if not fields:
            return
        for method in _methods(node):
            if not self._is_classmethod(method):
                continue
            env = self._env_read(method)
            if env is None:
                continue
            for call in self._calls_to_cls(method):
                self._check_call(f"{node.name.value}.{method.name.value}()", call, fields, env)

    # --- the constructor's fields -------------------------------------------------------------

    def _constructor_fields(self, node: cst.ClassDef) -> list[_Field] | None:
        """The keyword arguments `cls(...)` takes, or None when they can't all be seen."""
        if any(keyword.keyword is not None and keyword.keyword.value == "metaclass" for keyword in node.keywords):
            return None
        init = next((method for method in _methods(node) if method.name.value == "__init__"), None)
        if init is not None:
            # Only settings-shaped classes: any class's factory classmethod may leave parameters at their defaults.
            return _init_fields(init) if _declares_annotated_names(node.body) else None
        if not self._declares_fields_by_annotation(node):
            return None
        return self._annotated_fields(node.body)

    def _declares_fields_by_annotation(self, node: cst.ClassDef) -> bool:
        base_names = [analysis.qualified_names(self, _unsubscripted(arg.value)) for arg in node.bases]
        if any(names.isdisjoint(_FIELD_BASES | _NEUTRAL_BASES) for names in base_names):
            return False  # fields inherited from a base we can't see, or BaseSettings (reads the environment itself)
        has_field_base = any(not names.isdisjoint(_FIELD_BASES) for names in base_names)
        return has_field_base or any(self._is_dataclass_decorator(decorator) for decorator in node.decorators)

    def _is_dataclass_decorator(self, decorator: cst.Decorator) -> bool:
        expression = decorator.decorator
        call = expression if isinstance(expression, cst.Call) else None
        names = analysis.qualified_names(self, call.func if call else expression)
        keywords = {arg.keyword.value: arg.value for arg in call.args if arg.keyword} if call else {}
        if m.matches(keywords.get("init"), _FALSE):
            return False  # no generated __init__
        if not names.isdisjoint(_CLASSIC_ATTRS_DECORATORS):
            return m.matches(keywords.get("auto_attribs"), m.Name("True"))
        return not names.isdisjoint(_DATACLASS_DECORATORS)

    def _annotated_fields(self, body: cst.BaseSuite) -> list[_Field] | None:
        fields: list[_Field] = []
        for statement in _small_statements(body):
            if isinstance(statement, cst.Assign) and self._is_field_call(statement.value):
                return None  # attrs: an unannotated attr.ib() switches annotations off as fields
            if isinstance(statement, cst.AnnAssign) and isinstance(statement.target, cst.Name):
                field = self._annotated_field(statement.target.value, statement)
                if field is not None:
                    fields.append(field)
        return fields

    def _annotated_field(self, name: str, statement: cst.AnnAssign) -> _Field | None:
        annotation = statement.annotation.annotation
        if name.startswith("_") or name in _PYDANTIC_RESERVED or _CLASSVAR.match(_code(annotation)):
            return None
        value = statement.value
        if value is None or isinstance(value, cst.Ellipsis):
            return _Field(name, annotation, required=True)
        if not isinstance(value, cst.Call):
            return _Field(name, annotation, required=False, default=value)
        keywords = {arg.keyword.value: arg.value for arg in value.args if arg.keyword}
        if m.matches(keywords.get("init"), _FALSE) or "alias" in keywords or "validation_alias" in keywords:
            return None  # not a constructor argument, or one under another name
        if not self._is_field_call(value):
            return _Field(name, annotation, required=False, default=value)
        default = keywords.get("default", self._positional_default(value))
        if default is None or isinstance(default, cst.Ellipsis):
            has_factory = "default_factory" in keywords or "factory" in keywords
            return _Field(name, annotation, required=not has_factory)
        return _Field(name, annotation, required=False, default=default)

    def _is_field_call(self, value: cst.BaseExpression | None) -> bool:
        return isinstance(value, cst.Call) and analysis.calls(self, value, *_FIELD_FUNCTIONS)

    def _positional_default(self, call: cst.Call) -> cst.BaseExpression | None:
        positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
        if positional and analysis.calls(self, call, *_POSITIONAL_DEFAULT_FUNCTIONS):
            return positional[0]
        return None

    # --- the method -------------------------------------------------------------------------

    def _is_classmethod(self, method: cst.FunctionDef) -> bool:
        return any("builtins.classmethod" in analysis.qualified_names(self, d.decorator) for d in method.decorators)

    def _env_read(self, method: cst.FunctionDef) -> _EnvRead | None:
        """How `method` reads the environment; None when it doesn't."""
        getters = m.Call(func=m.MatchMetadataIfTrue(QualifiedNameProvider, _names_one_of(_ENV_GETTERS)))
        subscripts = m.Subscript(value=m.MatchMetadataIfTrue(QualifiedNameProvider, _names_one_of((_ENV_MAPPING,))))
        lookups = m.findall(method.body, getters | subscripts, metadata_resolver=self)
        if not lookups:
            return None
        # Copy a call that takes a default (`os.getenv`, `environ.get`) over `os.environ[...]`.
        first = next((lookup for lookup in lookups if isinstance(lookup, cst.Call)), lookups[0])
        getter = _code(first.func) if isinstance(first, cst.Call) else f"{_code(first.value)}.get"
        names = [name for name in map(_looked_up_name, lookups) if name is not None]
        quote = names[0].quote if names and len(names[0].quote) == 1 else '"'
        return _EnvRead(getter, tuple(str(name.evaluated_value) for name in names), quote)

    def _calls_to_cls(self, method: cst.FunctionDef) -> Iterator[cst.Call]:
        """The calls of the method's first parameter (`cls(...)`), resolved through its scope."""
        parameters = [*method.params.posonly_params, *method.params.params]
        if not parameters:
            return
        scope = self.get_metadata(ScopeProvider, parameters[0], None)
        assignments = scope.assignments[parameters[0].name.value] if scope else set()
        if len(assignments) != 1:
            return  # `cls` is rebound in the method
        for access in next(iter(assignments)).references:
            parent = self.get_metadata(ParentNodeProvider, access.node, None)
            if isinstance(parent, cst.Call) and parent.func is access.node:
                yield parent

    # --- the call ---------------------------------------------------------------------------

    def _check_call(self, where: str, call: cst.Call, fields: list[_Field], env: _EnvRead) -> None:
        if any(arg.keyword is None for arg in call.args):
            return  # positional, *args or **kwargs: which fields they fill can't be known
        passed = {arg.keyword.value for arg in call.args if arg.keyword}
        missing = [field for field in fields if field.name not in passed]
        if not missing:
            return
        required = [field for field in missing if field.required]
        if required:
            self.report(
                call,
                f"`{where}` builds `cls(...)` without the required field(s) {_listed(required)}: it fails "
                "with TypeError; pass them, read from the environment",
            )
            return
        prefix = _env_prefix(env.variables, sorted(passed))
        lookups = {field.name: self._lookup_code(field, env, prefix) for field in missing}
        added = [_keyword_argument(name, code) for name, code in lookups.items() if code is not None]
        by_hand = [field for field in missing if lookups[field.name] is None]
        message = (
            f"`{where}` builds `cls(...)` without {_listed(missing)}: no environment variable can change "
            f"{'this field' if len(missing) == 1 else 'these fields'}, the class default always wins"
        )
        if by_hand:
            message += "; add the lookup by hand" if by_hand == missing else f"; add the lookup of {_listed(by_hand)} by hand"
        self.report(call, message, fix=_with_arguments(call, added) if added else None)

    def _lookup_code(self, field: _Field, env: _EnvRead, prefix: str) -> str | None:
        """`int(os.getenv("APP_PORT", "8080"))` for `field`, or None when it can't be written safely."""
        annotation = field.annotation
        conversion = self._conversion(annotation)
        default = self._default_text(conversion, field.default, env.quote) if conversion else None
        if annotation is None or default is None:
            return None
        q = env.quote
        lookup = f"{env.getter}({q}{prefix}{field.name.upper()}{q}, {default})"
        if conversion == "str":
            return lookup
        if conversion == "bool":  # never bool(...): bool("false") is True
            return f"{lookup}.lower() in ({', '.join(q + word + q for word in _TRUTHY_WORDS)})"
        return f"{_code(annotation)}({lookup})"  # int, float, or Path under the module's own name

    def _conversion(self, annotation: cst.BaseExpression | None) -> str | None:
        if not isinstance(annotation, (cst.Name, cst.Attribute)):
            return None
        return next((_CONVERSIONS[name] for name in analysis.qualified_names(self, annotation) if name in _CONVERSIONS), None)

    def _default_text(self, conversion: str, default: cst.BaseExpression | None, quote: str) -> str | None:
        """The field's default as the string literal `os.getenv` falls back to; None if not a simple literal."""
        if conversion == "path" and isinstance(default, cst.Call) and analysis.calls(self, default, "pathlib.Path"):
            default = default.args[0].value if len(default.args) == 1 and not default.args[0].keyword else None
        if default is None or not m.matches(default, _SIMPLE_LITERAL):
            return None
        value = ast.literal_eval(_code(default))
        if conversion == "bool":
            return f"{quote}{str(value).lower()}{quote}" if isinstance(value, bool) else None
        if isinstance(value, bool) or not isinstance(value, _DEFAULT_TYPES[conversion]):
            return None
        return _code(default) if isinstance(value, str) else f"{quote}{value}{quote}"

    VALID = (
        Valid(
            """
            import os
            from dataclasses import dataclass

            @dataclass
            class Settings:
                host: str
                port: int = 8080

                @classmethod
                def from_env(cls) -> "Settings":
                    return cls(host=os.environ["APP_HOST"], port=int(os.getenv("APP_PORT", "8080")))
            """
        ),
        Valid(
            """
            import os
            from dataclasses import dataclass

            @dataclass
            class Settings:
                host: str
                port: int = 8080

                @classmethod
                def from_env(cls) -> "Settings":
                    values = {"host": os.environ["APP_HOST"]}
                    return cls(**values)
            """
        ),
        Valid(
            """
            from dataclasses import dataclass

            @dataclass
            class Settings:
                host: str
                port: int = 8080

                @classmethod
                def local(cls) -> "Settings":
                    return cls(host="localhost")
            """
        ),
        Valid(
            """
            import os
            from dataclasses import dataclass, field
            from typing import ClassVar

            @dataclass
            class Settings:
                PREFIX: ClassVar[str] = "APP_"
                host: str
                retries: int = field(default=3, init=False)

                @classmethod
                def from_env(cls) -> "Settings":
                    return cls(host=os.getenv("APP_HOST", "localhost"))
            """
        ),
        Valid(
            """
            import os
            from dataclasses import dataclass
            from base import BaseConfig

            @dataclass
            class Settings(BaseConfig):
                port: int = 8080

                @classmethod
                def from_env(cls) -> "Settings":
                    return cls(host=os.getenv("APP_HOST", "localhost"))
            """
        ),
        Valid(
            """
            import os
            from pydantic_settings import BaseSettings

            class Settings(BaseSettings):
                host: str = "localhost"
                port: int = 8080

                @classmethod
                def from_env(cls) -> "Settings":
                    return cls(host=os.getenv("APP_HOST", "localhost"))
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            import os
            from dataclasses import dataclass, field
            from pathlib import Path

            @dataclass
            class AutoDocsConfig:
                cache_dir: Path = field(default_factory=lambda: Path.home() / ".autodocs" / "cache")
                max_concurrent: int = 10
                request_timeout: int = 30
                log_level: str = "INFO"
                max_retry_attempts: int = 3
                base_retry_delay: float = 1.0
                circuit_breaker_timeout: float = 60.0

                @classmethod
                def from_env(cls) -> "AutoDocsConfig":
                    \"\"\"Load configuration from environment variables.\"\"\"
                    cache_dir_str = os.getenv(
                        "AUTODOCS_CACHE_DIR", str(Path.home() / ".autodocs" / "cache")
                    )

                    return cls(
                        cache_dir=Path(cache_dir_str),
                        max_concurrent=int(os.getenv("AUTODOCS_MAX_CONCURRENT", "10")),
                        request_timeout=int(os.getenv("AUTODOCS_REQUEST_TIMEOUT", "30")),
                        log_level=os.getenv("AUTODOCS_LOG_LEVEL", "INFO"),
                    )
            """,
            """
            import os
            from dataclasses import dataclass, field
            from pathlib import Path

            @dataclass
            class AutoDocsConfig:
                cache_dir: Path = field(default_factory=lambda: Path.home() / ".autodocs" / "cache")
                max_concurrent: int = 10
                request_timeout: int = 30
                log_level: str = "INFO"
                max_retry_attempts: int = 3
                base_retry_delay: float = 1.0
                circuit_breaker_timeout: float = 60.0

                @classmethod
                def from_env(cls) -> "AutoDocsConfig":
                    \"\"\"Load configuration from environment variables.\"\"\"
                    cache_dir_str = os.getenv(
                        "AUTODOCS_CACHE_DIR", str(Path.home() / ".autodocs" / "cache")
                    )

                    return cls(
                        cache_dir=Path(cache_dir_str),
                        max_concurrent=int(os.getenv("AUTODOCS_MAX_CONCURRENT", "10")),
                        request_timeout=int(os.getenv("AUTODOCS_REQUEST_TIMEOUT", "30")),
                        log_level=os.getenv("AUTODOCS_LOG_LEVEL", "INFO"),
                        max_retry_attempts=int(os.getenv("AUTODOCS_MAX_RETRY_ATTEMPTS", "3")),
                        base_retry_delay=float(os.getenv("AUTODOCS_BASE_RETRY_DELAY", "1.0")),
                        circuit_breaker_timeout=float(os.getenv("AUTODOCS_CIRCUIT_BREAKER_TIMEOUT", "60.0")),
                    )
            """,
            unsafe=True,
        ),
        Invalid(
            """
            from os import environ
            from pydantic import BaseModel

            class Settings(BaseModel):
                host: str
                debug: bool = False
                name: str = 'api'

                @classmethod
                def from_env(cls) -> "Settings":
                    return cls(host=environ['APP_HOST'])
            """,
            """
            from os import environ
            from pydantic import BaseModel

            class Settings(BaseModel):
                host: str
                debug: bool = False
                name: str = 'api'

                @classmethod
                def from_env(cls) -> "Settings":
                    return cls(host=environ['APP_HOST'], debug=environ.get('APP_DEBUG', 'false').lower() in ('1', 'true', 'yes', 'on'), name=environ.get('APP_NAME', 'api'))
            """,
            unsafe=True,
        ),
        Invalid(
            """
            import os
            from dataclasses import dataclass

            @dataclass
            class Settings:
                host: str
                token: str
                port: int = 8080

                @classmethod
                def from_env(cls) -> "Settings":
                    return cls(host=os.environ["APP_HOST"], port=int(os.getenv("APP_PORT", "8080")))
            """
        ),
        Invalid(
            """
            import os
            from dataclasses import dataclass, field

            @dataclass
            class Settings:
                host: str
                allowed: list[str] = field(default_factory=list)

                @classmethod
                def from_env(cls) -> "Settings":
                    return cls(host=os.environ["APP_HOST"])
            """
        ),
    )


def _init_fields(init: cst.FunctionDef) -> list[_Field] | None:
    """The parameters of a hand-written `__init__` after `self`; None if it takes `*args`/`**kwargs`."""
    params = init.params
    if isinstance(params.star_arg, cst.Param) or params.star_kwarg is not None or len(params.posonly_params) > 1:
        return None
    by_keyword = [*params.posonly_params, *params.params][1:] + list(params.kwonly_params)
    return [
        _Field(
            param.name.value,
            param.annotation.annotation if param.annotation else None,
            required=param.default is None,
            default=param.default,
        )
        for param in by_keyword
    ]


def _declares_annotated_names(body: cst.BaseSuite) -> bool:
    return any(
        isinstance(statement, cst.AnnAssign) and isinstance(statement.target, cst.Name)
        for statement in _small_statements(body)
    )


def _methods(node: cst.ClassDef) -> Iterator[cst.FunctionDef]:
    if isinstance(node.body, cst.IndentedBlock):
        yield from (statement for statement in node.body.body if isinstance(statement, cst.FunctionDef))


def _small_statements(body: cst.BaseSuite) -> Iterator[cst.BaseSmallStatement]:
    lines = body.body if isinstance(body, cst.IndentedBlock) else [body]
    for line in lines:
        if isinstance(line, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            yield from line.body


def _unsubscripted(expression: cst.BaseExpression) -> cst.BaseExpression:
    """`Generic[T]` -> `Generic`."""
    return expression.value if isinstance(expression, cst.Subscript) else expression


def _names_one_of(wanted: Collection[str]) -> Callable[[Collection[QualifiedName]], bool]:
    return lambda names: any(name.name in wanted for name in names)


def _keyword_argument(name: str, value_code: str) -> cst.Arg:
    no_space = cst.SimpleWhitespace("")
    return cst.Arg(
        keyword=cst.Name(name),
        value=cst.parse_expression(value_code),
        equal=cst.AssignEqual(whitespace_before=no_space, whitespace_after=no_space),
    )


def _looked_up_name(lookup: cst.CSTNode) -> cst.SimpleString | None:
    """The literal variable name of `os.getenv("X")` / `os.environ["X"]`, if it is one."""
    if isinstance(lookup, cst.Call):
        first = lookup.args[0].value if lookup.args else None
    elif isinstance(lookup, cst.Subscript) and len(lookup.slice) == 1 and isinstance(lookup.slice[0].slice, cst.Index):
        first = lookup.slice[0].slice.value
    else:
        first = None
    return first if isinstance(first, cst.SimpleString) and isinstance(first.evaluated_value, str) else None


def _env_prefix(variables: Sequence[str], keywords: Sequence[str]) -> str:
    """`AUTODOCS_`, from the variables the method reads.

    A variable named after the keyword it feeds (`AUTODOCS_LOG_LEVEL` for `log_level=`) gives its
    prefix exactly; otherwise the common start of the variables up to its last `_` (of a single
    variable, up to its first `_`: `APP_DATABASE_URL` gives `APP_`, not `APP_DATABASE_`).
    """
    paired = [
        variable[: -len(keyword)]
        for variable in variables
        for keyword in keywords
        if variable.endswith(f"_{keyword.upper()}")
    ]
    if not paired and len(set(variables)) == 1:
        return variables[0][: variables[0].find("_") + 1]
    common = os.path.commonprefix(paired or list(variables))
    return common[: common.rfind("_") + 1]


def _with_arguments(call: cst.Call, added: list[cst.Arg]) -> cst.Call:
    """`call` with `added` after its arguments, laid out like them.

    One keyword per line when the call has one argument per line (the new ones indented alike);
    comments after the last argument stay where they are; a trailing comma stays a trailing comma.
    """
    args = list(call.args)
    last = args[-1] if args else None
    closing = _before_closing_paren(call)
    between = _between_arguments(call, closing)
    if isinstance(closing, cst.ParenthesizedWhitespace) and isinstance(between, cst.ParenthesizedWhitespace):
        opening = closing.with_changes(last_line=between.last_line)  # keeps the comments before the `)`
    else:
        opening = between if last is not None else closing  # `cls()` stays `cls(` + arguments
    end = _without_comments(closing)
    trailing_comma = last is not None and isinstance(last.comma, cst.Comma)
    new_args = [arg.with_changes(comma=cst.Comma(whitespace_after=between)) for arg in added[:-1]]
    new_args.append(
        added[-1].with_changes(comma=cst.Comma(whitespace_after=end))
        if trailing_comma
        else added[-1].with_changes(whitespace_after_arg=end)
    )
    if last is None:
        return call.with_changes(whitespace_before_args=opening, args=new_args)
    comma = last.comma if isinstance(last.comma, cst.Comma) else cst.Comma()
    new_last = last.with_changes(
        comma=comma.with_changes(whitespace_after=opening),
        whitespace_after_arg=last.whitespace_after_arg if trailing_comma else cst.SimpleWhitespace(""),
    )
    return call.with_changes(args=[*args[:-1], new_last, *new_args])


def _before_closing_paren(call: cst.Call) -> cst.BaseParenthesizableWhitespace:
    if not call.args:
        return call.whitespace_before_args
    last = call.args[-1]
    return last.comma.whitespace_after if isinstance(last.comma, cst.Comma) else last.whitespace_after_arg


def _between_arguments(
    call: cst.Call, closing: cst.BaseParenthesizableWhitespace
) -> cst.BaseParenthesizableWhitespace:
    """The whitespace that separates one argument from the next: a newline and indent, or a space."""
    if len(call.args) >= 2 and isinstance(call.args[-2].comma, cst.Comma):
        whitespace = call.args[-2].comma.whitespace_after
    elif call.args:
        whitespace = call.whitespace_before_args
    elif isinstance(closing, cst.ParenthesizedWhitespace):  # `cls(\n)`: indent one level past the `)`
        return _without_comments(closing).with_changes(last_line=cst.SimpleWhitespace(closing.last_line.value + "    "))
    else:
        whitespace = closing
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return _without_comments(whitespace)
    return cst.SimpleWhitespace(" ")


def _without_comments(whitespace: cst.BaseParenthesizableWhitespace) -> cst.BaseParenthesizableWhitespace:
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
    return whitespace


def _listed(fields: Sequence[_Field]) -> str:
    return ", ".join(f"`{field.name}`" for field in fields)


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _reads_environment(method: ast.FunctionDef) -> bool:
    """`getenv` or `environ` named anywhere in the method's own frame."""
    return any(
        (isinstance(node, ast.Name) and node.id in _ENVIRONMENT_NAMES)
        or (isinstance(node, ast.Attribute) and node.attr in _ENVIRONMENT_NAMES)
        for node in quickscan.own_nodes(method)
    )


_ENVIRONMENT_NAMES = frozenset({"getenv", "environ"})
