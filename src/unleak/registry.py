"""The rules: one module each in `unleak.transforms`, and chosen by selectors.

A selector is a rule code (`UL401`), a code prefix (`UL4`), a rule name (`bare-except`) or
`ALL`. `select` minus `ignore` minus the matching `per-file-ignores` gives a file's rules.

Importing a rule imports LibCST (a rule is a LibCST visitor), which costs more than a cached
run of a whole project. So selection and the byte prefilter work on `RuleEntry`s: what each
rule class declares before its first method, read from its module's source with `ast`. A rule
module is imported only where a file needs the rule itself (`rule_by_code`), in the process
that parses the file.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from unleak import globs, transforms
from unleak.errors import ConfigError
from unleak.settings import Settings

if TYPE_CHECKING:
    from unleak.rule import Rule

_DEFAULT_SETTINGS = Settings()
# A rule class, and where its declarations end: its first method, decorator or nested class.
_RULE_CLASS = re.compile(r"^class (\w+)\(Rule\):\n", re.MULTILINE)
_FIRST_MEMBER = re.compile(r"^    (?:@|def |async def |class )", re.MULTILINE)
_REQUIRED = ("code", "name", "trigger")
_OPTIONAL = ("uses_project", "trigger_reads")


class Selectable(Protocol):
    """What selection and the byte prefilter ask of a rule: a `RuleEntry`, or a rule class."""

    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def uses_project(self) -> bool: ...

    def trigger_for(self, settings: Settings) -> tuple[bytes, ...]: ...


# One entry per rule and process (`entries` is cached): compared and hashed by identity, which the
# byte prefilter's memo does for every file.
@dataclass(frozen=True, eq=False)
class RuleEntry:
    """A rule as its module's source declares it, without importing the module."""

    code: str
    name: str
    trigger: tuple[bytes, ...]
    module: str  # unleak.transforms.ul401_bare_except
    class_name: str
    uses_project: bool = False
    trigger_reads: tuple[str, ...] = ()  # the settings `trigger_for` reads (see `Rule.trigger_reads`)

    def trigger_for(self, settings: Settings) -> tuple[bytes, ...]:
        """The declared trigger, unless a setting the rule's `trigger_for` reads is not the default."""
        if all(getattr(settings, field) == getattr(_DEFAULT_SETTINGS, field) for field in self.trigger_reads):
            return self.trigger
        return self.load().trigger_for(settings)

    def load(self) -> type[Rule]:
        rule: type[Rule] = getattr(importlib.import_module(self.module), self.class_name)
        return rule


class UnreadableRule(Exception):
    """A rule module whose declarations cannot be read without importing it."""


@cache
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class defined in a module of `unleak.transforms`, ordered by code (imports them all)."""
    from unleak.rule import Rule

    found: list[type[Rule]] = []
    for module_info in pkgutil.iter_modules(transforms.__path__, f"{transforms.__name__}."):
        module = importlib.import_module(module_info.name)
        found.extend(
            value
            for value in vars(module).values()
            if inspect.isclass(value) and issubclass(value, Rule) and value.__module__ == module.__name__
        )
    return tuple(sorted(found, key=lambda rule: rule.code))


_all_rules = all_rules


def catalog() -> tuple[Selectable, ...]:
    """The rules as the engine selects them: entries read from the sources, or the classes of
    `all_rules` where it was replaced (tests define rules on the fly)."""
    if all_rules is not _all_rules:
        return all_rules()
    return entries()


@cache
def entries() -> tuple[RuleEntry, ...]:
    """Every rule of `unleak.transforms`, read from its source, ordered by code."""
    found = [
        described(Path(info.module_finder.path) / f"{info.name}.py", f"{transforms.__name__}.{info.name}")  # type: ignore[union-attr]
        for info in pkgutil.iter_modules(transforms.__path__)
    ]
    return tuple(sorted((entry for entry in found if entry is not None), key=lambda entry: entry.code))


def described(path: Path, module: str) -> RuleEntry | None:
    """The entry of the rule class in `path` (None: it defines none); `UnreadableRule` when a
    declaration the engine needs is not a literal before the class's first method."""
    text = path.read_text(encoding="utf-8")
    header = _RULE_CLASS.search(text)
    if header is None:
        return None
    body = text[header.end() :]
    end = _FIRST_MEMBER.search(body)
    declarations = _literal_assignments(ast.parse(text[header.start() : header.end() + (end.start() if end else len(body))]))
    missing = [name for name in _REQUIRED if name not in declarations]
    if missing:
        raise UnreadableRule(f"{path.name}: {', '.join(missing)} must be literals before the rule's first method")
    return RuleEntry(module=module, class_name=header.group(1), **declarations)


def _literal_assignments(tree: ast.Module) -> dict[str, object]:
    """`NAME = <literal>` statements of the class in `tree`, for the names `RuleEntry` keeps."""
    rule_class = tree.body[0]
    assert isinstance(rule_class, ast.ClassDef)
    found: dict[str, object] = {}
    for statement in rule_class.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
            name = statement.targets[0].id
            if name in _REQUIRED + _OPTIONAL:
                try:
                    found[name] = ast.literal_eval(statement.value)
                except ValueError:
                    raise UnreadableRule(f"class {rule_class.name}: `{name}` is not a literal") from None
    return found


def rule_by_code(code: str) -> type[Rule]:
    """The rule class itself (imports its module)."""
    return load(entry_by_code(code))


def entry_by_code(code: str) -> Selectable:
    return next(rule for rule in catalog() if rule.code == code)


def load(rule: Selectable) -> type[Rule]:
    return rule.load() if isinstance(rule, RuleEntry) else rule  # type: ignore[return-value]


def find_rule(code_or_name: str) -> type[Rule] | None:
    wanted = code_or_name.strip()
    return next((rule for rule in all_rules() if wanted.upper() == rule.code or wanted == rule.name), None)


def _matches(selector: str, rule: Selectable) -> bool:
    selector = selector.strip()
    return selector == "ALL" or selector == rule.name or (selector.isalnum() and rule.code.startswith(selector.upper()))


def matching_rules(selectors: tuple[str, ...], source: str, key: str) -> set[Selectable]:
    """The rules the selectors name; a selector that names none is a configuration error."""
    chosen: set[Selectable] = set()
    for selector in selectors:
        matched = {rule for rule in catalog() if _matches(selector, rule)}
        if not matched:
            raise ConfigError(source, f"unknown rule selector {selector!r} in '{key}'")
        chosen |= matched
    return chosen


def rules_for(settings: Settings, path: Path | str) -> tuple[Selectable, ...]:
    """The rules that run on `path` (a `str` is absolute) under `settings`, ordered by code."""
    if not settings.per_file_ignores:
        return _by_code(_selected(settings))
    chosen = set(_selected(settings))
    for glob, selectors in settings.per_file_ignores:
        if globs.matches((glob,), path, settings.root):
            chosen -= matching_rules(selectors, settings.source, f"per-file-ignores.{glob}")
    return _by_code(frozenset(chosen))


@cache
def _by_code(rules: frozenset[Selectable]) -> tuple[Selectable, ...]:
    return tuple(sorted(rules, key=lambda rule: rule.code))


@cache
def _selected(settings: Settings) -> frozenset[Selectable]:
    """`select` minus `ignore`: the same for every file that shares these settings."""
    chosen = matching_rules(settings.select, settings.source, "select")
    return frozenset(chosen - matching_rules(settings.ignore, settings.source, "ignore"))
