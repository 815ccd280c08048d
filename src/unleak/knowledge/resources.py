"""Resources a program must release: which calls create them, and how each kind is released.

Shared by UL202 (a resource closed by hand, not on every path) and UL205 (a resource never
closed). A kind is found by the qualified name of the call that creates it (`gzip.open`,
`zipfile.ZipFile`, aliases and from-imports followed), or, for objects made by a method, by what
its receiver holds: `path.open()` on a `pathlib.Path`, `conn.cursor()` on a `sqlite3.connect(...)`
connection, `await p.chromium.launch()` / `browser.new_context()` / `context.new_page()` under
playwright. `creation_kind` needs `QualifiedNameProvider` and `ScopeProvider` in the rule's
METADATA_DEPENDENCIES.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import Assignment, ParentNodeProvider, ScopeProvider

from unleak.knowledge.analysis import calls, qualified_names
from unleak.knowledge.resource_scan import PATH_METHODS
from unleak.rule import Rule


@dataclass(frozen=True)
class Kind:
    """How one kind of resource is released.

    `releases[0]` called without arguments is what `with` does on exit when `managed`; any
    other release (`ftp.close()`, `executor.shutdown(wait=False)`), or any release of a kind
    whose `with` means something else (a `sqlite3` connection's `with` commits, it does not
    close), keeps its own call in a `finally:`.
    """

    releases: tuple[str, ...]
    asynchronous: bool = False
    managed: bool = True

    @property
    def close(self) -> str:
        return self.releases[0]


FILE = Kind(("close",))
_ASYNC_CLOSE = Kind(("close",), asynchronous=True)
# `with` on these sends QUIT and swallows (FTP) or raises (SMTP) on a reply `quit()` treats otherwise.
_QUIT_THEN_CLOSE = Kind(("quit", "close"), managed=False)
_NOT_CLOSED_BY_WITH = Kind(("close",), managed=False)
_EXECUTOR = Kind(("shutdown",))  # `with` is `shutdown(wait=True)`

BUILT_IN: dict[str, Kind] = {
    **dict.fromkeys(
        (
            "builtins.open",
            "io.open",
            "codecs.open",
            "gzip.open",
            "gzip.GzipFile",
            "bz2.open",
            "bz2.BZ2File",
            "lzma.open",
            "lzma.LZMAFile",
            "tarfile.open",
            "zipfile.ZipFile",
            "shelve.open",
            "tempfile.NamedTemporaryFile",
            "tempfile.TemporaryFile",
            "tempfile.SpooledTemporaryFile",
            "socket.socket",
            "socket.create_connection",
            "urllib.request.urlopen",
            "httpx.Client",
            "requests.Session",
            "requests.session",
            "sqlalchemy.orm.Session",
            "sqlalchemy.orm.session.Session",
        ),
        FILE,
    ),
    "httpx.AsyncClient": Kind(("aclose",), asynchronous=True),
    "aiohttp.ClientSession": _ASYNC_CLOSE,
    "sqlalchemy.ext.asyncio.AsyncSession": _ASYNC_CLOSE,
    **dict.fromkeys(("ftplib.FTP", "ftplib.FTP_TLS", "smtplib.SMTP", "smtplib.SMTP_SSL"), _QUIT_THEN_CLOSE),
    **dict.fromkeys(
        (
            "concurrent.futures.ThreadPoolExecutor",
            "concurrent.futures.ProcessPoolExecutor",
            "concurrent.futures.thread.ThreadPoolExecutor",
            "concurrent.futures.process.ProcessPoolExecutor",
        ),
        _EXECUTOR,
    ),
    "sqlite3.connect": _NOT_CLOSED_BY_WITH,  # `with conn:` commits or rolls back, and keeps it open
}
# Methods that create a resource from an object of a known kind (what `holds` calls it).
_MADE_BY_METHOD = {("path", "open"): FILE, ("sqlite3", "cursor"): _NOT_CLOSED_BY_WITH}
METHOD_NAMES = frozenset(
    {method for _, method in _MADE_BY_METHOD}
    | {"launch", "launch_persistent_context", "connect", "connect_over_cdp", "new_context", "new_page"}
)

_PLAYWRIGHT_MANAGERS = ("playwright.async_api.async_playwright", "playwright.sync_api.sync_playwright")
_BROWSER_TYPES = frozenset({"chromium", "firefox", "webkit"})
_LAUNCHES = {"launch": "browser", "connect": "browser", "connect_over_cdp": "browser", "launch_persistent_context": "context"}
_PLAYWRIGHT_MADE_BY = {("browser", "new_context"): "context", ("browser", "new_page"): "page", ("context", "new_page"): "page"}
_LOOKUP_DEPTH = 12  # a few links (`page` <- `context` <- `browser` <- `p`), never a cycle (`p = p / "x"`)


def creation_kind(rule: Rule, call: cst.Call, awaited: bool) -> Kind | None:
    """The kind of resource `call` creates (`await`ed when `awaited`); None: not one known here."""
    if not awaited:
        kind = next((kind for name, kind in BUILT_IN.items() if calls(rule, call, name)), None)
        if kind is not None:
            return kind
    if not isinstance(call.func, cst.Attribute) or call.func.attr.value not in METHOD_NAMES:
        return None
    if _playwright_made(rule, call.func) is not None:  # closed with `close()`; whether `with` works depends on the version
        return Kind(("close",), asynchronous=awaited, managed=False)
    return None if awaited else _MADE_BY_METHOD.get((holds(rule, call.func.value) or "", call.func.attr.value))


def holds(rule: Rule, node: cst.BaseExpression, depth: int = 0) -> str | None:
    """What `node` evaluates to, as far as the resources here care: "path", "sqlite3" (a
    connection), "playwright", "browser", "context", "page"; None when unknown."""
    if depth > _LOOKUP_DEPTH:
        return None
    if isinstance(node, cst.Await):
        return holds(rule, node.expression, depth + 1)
    if isinstance(node, cst.Name):
        return _name_holds(rule, node, depth)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
        return "path" if holds(rule, node.left, depth + 1) == "path" else None
    if isinstance(node, cst.Attribute) and node.attr.value == "parent":
        return "path" if holds(rule, node.value, depth + 1) == "path" else None
    if not isinstance(node, cst.Call):
        return None
    if calls(rule, node, "pathlib.Path", "pathlib.Path.home", "pathlib.Path.cwd"):
        return "path"
    if calls(rule, node, "sqlite3.connect"):
        return "sqlite3"
    if calls(rule, node, *_PLAYWRIGHT_MANAGERS):
        return "playwright"
    if not isinstance(node.func, cst.Attribute):
        return None
    method = node.func.attr.value
    if method == "start" and isinstance(node.func.value, cst.Call) and calls(rule, node.func.value, *_PLAYWRIGHT_MANAGERS):
        return "playwright"
    if method in PATH_METHODS:
        return "path" if holds(rule, node.func.value, depth + 1) == "path" else None
    return _playwright_made(rule, node.func, depth)


def _playwright_made(rule: Rule, func: cst.Attribute, depth: int = 0) -> str | None:
    """`p.chromium.launch` -> "browser", `browser.new_context` -> "context", `context.new_page` -> "page"."""
    method, receiver = func.attr.value, func.value
    if method in _LAUNCHES and isinstance(receiver, cst.Attribute) and receiver.attr.value in _BROWSER_TYPES:
        return _LAUNCHES[method] if holds(rule, receiver.value, depth + 1) == "playwright" else None
    made_from = holds(rule, receiver, depth + 1)
    return _PLAYWRIGHT_MADE_BY.get((made_from or "", method))


def _name_holds(rule: Rule, name: cst.Name, depth: int) -> str | None:
    """What every binding of `name` visible here holds, when they agree."""
    scope = rule.get_metadata(ScopeProvider, name, None)
    if scope is None:
        return None
    found: set[str | None] = set()
    for assignment in scope[name.value]:
        if not isinstance(assignment, Assignment):
            return None
        found.add(_binding_holds(rule, assignment.node, depth))
    return found.pop() if len(found) == 1 else None


def _binding_holds(rule: Rule, node: cst.CSTNode, depth: int) -> str | None:
    if isinstance(node, cst.Param):
        annotation = node.annotation.annotation if node.annotation is not None else None
        return "path" if annotation is not None and _is_path_type(rule, annotation) else None
    parent = rule.get_metadata(ParentNodeProvider, node, None)
    if isinstance(parent, cst.AsName):
        item = rule.get_metadata(ParentNodeProvider, parent, None)
        # `with sync_playwright() as p:`, `with sqlite3.connect(path) as conn:`: what the manager holds
        return holds(rule, item.item, depth + 1) if isinstance(item, cst.WithItem) else None
    if isinstance(parent, cst.AssignTarget):
        assign = rule.get_metadata(ParentNodeProvider, parent, None)
        return holds(rule, assign.value, depth + 1) if isinstance(assign, cst.Assign) else None
    if isinstance(parent, cst.AnnAssign) and parent.value is not None and parent.target is node:
        return holds(rule, parent.value, depth + 1)
    return None


def _is_path_type(rule: Rule, annotation: cst.BaseExpression) -> bool:
    return isinstance(annotation, (cst.Name, cst.Attribute)) and "pathlib.Path" in qualified_names(rule, annotation)


# Calls that keep what they are given past the call: `bag.append(handle)`, `setattr(obj, "f", handle)`,
# `stack.enter_context(handle)` (which closes it later itself).
STORING_METHODS = frozenset(
    {"append", "appendleft", "add", "extend", "extendleft", "insert", "put", "put_nowait", "setdefault",
     "update", "push", "register", "enter_context", "enter_async_context"}
)
_STORING_FUNCTIONS = ("builtins.setattr", "weakref.finalize", "atexit.register")


def stores(rule: Rule, call: cst.Call) -> bool:
    """Whether `call` keeps its arguments past the call (see `STORING_METHODS`)."""
    if isinstance(call.func, cst.Attribute) and call.func.attr.value in STORING_METHODS:
        return True
    return calls(rule, call, *_STORING_FUNCTIONS)

# Files and streams code reads or writes in one expression: `open(p).read()`, `json.load(open(p))`.
ONE_SHOT = (
    "builtins.open",
    "io.open",
    "codecs.open",
    "gzip.open",
    "bz2.open",
    "lzma.open",
    "tarfile.open",
    "zipfile.ZipFile",
    "urllib.request.urlopen",
)


def opens_one_shot(rule: Rule, call: cst.Call) -> bool:
    """`open(p)`, `gzip.open(p)`, `urlopen(url)`, `path.open()` on a `pathlib.Path`, ... (see `ONE_SHOT`)."""
    if calls(rule, call, *ONE_SHOT):
        return True
    return isinstance(call.func, cst.Attribute) and call.func.attr.value == "open" and holds(rule, call.func.value) == "path"
