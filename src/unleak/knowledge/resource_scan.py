"""The cheap `ast` side of `unleak.knowledge.resources`, for the gates of UL202 and UL205.

`resources.holds` knows an object by what made it, through qualified names: a `pathlib.Path`,
a `sqlite3` connection, playwright's objects. None of these can be named in a module that does
not import `pathlib`, `sqlite3` or `playwright`, and a name can hold a path only where one of
its bindings is of a shape that makes one. These checks answer those questions on the stdlib
`ast`, loosely: "maybe" costs a LibCST parse, a wrong "no" loses a finding.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator

from unleak.knowledge import quickscan

# Methods of a `pathlib.Path` that make another path (`resources.holds` follows them).
PATH_METHODS = frozenset({"with_suffix", "with_name", "with_stem", "joinpath", "resolve", "absolute", "expanduser"})
# `pathlib.Path(...)`, `Path.home()`, `Path.cwd()`, by their last name.
_PATH_MAKERS = frozenset({"Path", "home", "cwd"}) | PATH_METHODS


def imported_packages(tree: ast.AST) -> frozenset[str]:
    """The top-level packages the module imports, anywhere in it: `os` for `import os.path`,
    `sqlalchemy` for `from sqlalchemy.orm import Session` (relative imports name none)."""
    found = set()
    for node in quickscan.of_type(tree, ast.Import, ast.ImportFrom):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return frozenset(found)


class PathHolders:
    """Which expressions may hold a `pathlib.Path`: a sound over-approximation of
    `resources.holds(...) == "path"` (which follows qualified names, so needs `pathlib` imported).

    A name may hold one when one of its bindings anywhere in the module does: a parameter
    annotated `Path` (or `something.Path`), an assignment or `with ... as` of a path-making
    expression (`Path(p)`, `base / "x"`, `p.parent`, `p.with_suffix(".txt")`, another name,
    an `await`).
    """

    def __init__(self, tree: ast.AST) -> None:
        self.imported = "pathlib" in imported_packages(tree)
        aliases = self._pathlib_names(tree) if self.imported else frozenset()
        self.makers = _PATH_MAKERS | aliases
        self.classes = frozenset({"Path"}) | aliases
        self.names = frozenset(self._holding_names(tree)) if self.imported else frozenset()

    def __call__(self, node: ast.expr) -> bool:
        return self.imported and self._makes_path(node, self.names.__contains__)

    @staticmethod
    def _pathlib_names(tree: ast.AST) -> frozenset[str]:
        """`P` after `from pathlib import Path as P` (every name imported from `pathlib`: loose)."""
        return frozenset(
            alias.asname or alias.name
            for node in quickscan.of_type(tree, ast.ImportFrom)
            if isinstance(node, ast.ImportFrom) and node.module == "pathlib"
            for alias in node.names
        )

    def _makes_path(self, node: ast.expr, may_hold: Callable[[str], bool]) -> bool:
        """Whether `node` has the shape of a path (a name: when `may_hold` says so)."""
        if isinstance(node, ast.Await):
            return self._makes_path(node.value, may_hold)
        if isinstance(node, ast.Name):
            return may_hold(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self._makes_path(node.left, may_hold)
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            return True
        return isinstance(node, ast.Call) and quickscan.called_name(node) in self.makers

    def _holding_names(self, tree: ast.AST) -> Iterator[str]:
        for node in quickscan.every_node(tree):
            if isinstance(node, ast.arg) and node.annotation is not None:
                if self._is_path_class(node.annotation):
                    yield node.arg
            elif isinstance(node, ast.Assign) and self._makes_path(node.value, _any_name):
                yield from (target.id for target in node.targets if isinstance(target, ast.Name))
            elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
                if self._makes_path(node.value, _any_name):
                    yield node.target.id
            elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
                if self._makes_path(node.context_expr, _any_name):
                    yield node.optional_vars.id

    def _is_path_class(self, annotation: ast.expr) -> bool:
        if isinstance(annotation, ast.Name):
            return annotation.id in self.classes
        return isinstance(annotation, ast.Attribute) and annotation.attr == "Path"


def _any_name(name: str) -> bool:
    return True
