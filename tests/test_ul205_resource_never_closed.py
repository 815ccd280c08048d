"""UL205 resource-never-closed: kinds, uses, safety classes, look-alikes, generated variants."""

from __future__ import annotations

import ast
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.engine.findings import FileResult
from unleak.transforms.ul202_unmanaged_resource import UnmanagedResource
from unleak.transforms.ul205_resource_never_closed import ResourceNeverClosed

RULES = (ResourceNeverClosed,)


def _run(code: str, *, unsafe: bool = False) -> FileResult:
    return run_rules(textwrap.dedent(code), RULES, unsafe=unsafe)


def _fix(code: str, *, unsafe: bool = False) -> str:
    fixed = fixed_text(_run(code, unsafe=unsafe))
    again = run_rules(fixed, RULES, unsafe=unsafe)
    assert again.fixed is None and again.error is None, "not a fixed point"
    return fixed


SAFE = {
    "read, load, dump and a for loop, each its own with": (
        """
        import json

        def load(path):
            data = open(path).read()
            cfg = json.load(open(path))
            json.dump(cfg, open(path, "w"), indent=2)
            for line in open(path):
                print(line)
            return open(path).read()
        """,
        """
        import json

        def load(path):
            with open(path) as f:
                data = f.read()
            with open(path) as f:
                cfg = json.load(f)
            with open(path, "w") as f:
                json.dump(cfg, f, indent=2)
            with open(path) as f:
                for line in f:
                    print(line)
            with open(path) as f:
                return f.read()
        """,
    ),
    "module level: Path.open, gzip, urlopen": (
        """
        import gzip
        from pathlib import Path
        from urllib.request import urlopen

        config = Path("app.toml").open().read()
        raw = gzip.open("a.gz").read()  # compressed
        body = urlopen("http://example.com").read()
        """,
        """
        import gzip
        from pathlib import Path
        from urllib.request import urlopen

        with Path("app.toml").open() as f:
            config = f.read()
        with gzip.open("a.gz") as f:
            raw = f.read()  # compressed
        with urlopen("http://example.com") as f:
            body = f.read()
        """,
    ),
    "the name f is taken: the next free one": (
        """
        import pickle

        def f(path, fh):
            # cached model
            return pickle.load(open(path, "rb"))
        """,
        """
        import pickle

        def f(path, fh):
            # cached model
            with open(path, "rb") as handle:
                return pickle.load(handle)
        """,
    ),
    "a reader used up by the for it is the iterable of, or by list()": (
        """
        import csv

        def rows(path):
            for row in csv.reader(open(path)):
                print(row)
            return list(csv.DictReader(open(path)))
        """,
        """
        import csv

        def rows(path):
            with open(path) as f:
                for row in csv.reader(f):
                    print(row)
            with open(path) as f:
                return list(csv.DictReader(f))
        """,
    ),
    "nested openings: the inner first, the outer in the next pass": (
        """
        def follow(path):
            target = open(open(path).read().strip()).read()
        """,
        """
        def follow(path):
            with open(path) as f:
                with open(f.read().strip()) as fh:
                    target = fh.read()
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), SAFE.values(), ids=SAFE.keys())
def test_safe_fixes(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)


UNSAFE = {
    "a call runs before the file is opened": (
        "def f(p):\n    x = combine(load(), open(p).read())\n",
        "def f(p):\n    with open(p) as fh:\n        x = combine(load(), fh.read())\n",
        "`load()` runs before the file is opened",
    ),
    "a yield holds the file open": (
        "def lines(paths):\n    for p in paths:\n        yield open(p).read()\n",
        "def lines(paths):\n    for p in paths:\n        with open(p) as f:\n            yield f.read()\n",
        "while the generator waits",
    ),
    "a method that may return an object tied to the archive": (
        "import zipfile\n\ndef f(p):\n    zipfile.ZipFile(p).open('a').close()\n",
        "import zipfile\n\ndef f(p):\n    with zipfile.ZipFile(p) as fh:\n        fh.open('a').close()\n",
        "`.open()` may return an object tied to the file",
    ),
}


@pytest.mark.parametrize(("before", "after", "why"), UNSAFE.values(), ids=UNSAFE.keys())
def test_unsafe_fixes_need_the_flag(before: str, after: str, why: str) -> None:
    safe_run = run_rules(before, RULES)
    assert safe_run.fixed is None
    assert [(finding.rule, finding.fixable) for finding in safe_run.findings] == [("UL205", True)]
    assert why in safe_run.findings[0].message
    assert _fix(before, unsafe=True) == after


@pytest.mark.parametrize(
    "code",
    [
        "import csv\n\ndef rows(p):\n    reader = csv.reader(open(p))\n    return list(reader)\n",
        "import csv\n\ndef rows(p):\n    reader: object = csv.reader(open(p))\n    return list(reader)\n",
    ],
    ids=["kept in a name", "kept in an annotated name"],
)
def test_a_statement_that_keeps_what_was_made_of_the_file_is_reported_without_a_fix(code: str) -> None:
    result = run_rules(code, RULES, unsafe=True)
    assert result.fixed is None
    assert [(finding.rule, finding.fixable) for finding in result.findings] == [("UL205", False)]


UNTOUCHED = {
    "already a with": "def f(p):\n    with open(p) as fh:\n        return fh.read()\n",
    "returned: the caller closes it": "def f(p):\n    return open(p)\n",
    "bound to a name (UL202's, or a leak left to the reader)": "def f(p):\n    fh = open(p)\n    return fh\n",
    "stored on self": "class A:\n    def __init__(self, p):\n        self.fh = open(p)\n",
    "returned before its close": "def f(p):\n    fh = open(p)\n    if p:\n        return fh\n    fh.close()\n",
    "closed on another path": "def f(p, ok):\n    fh = open(p)\n    if not ok:\n        fh.close()\n",
    "under a condition": "def f(p):\n    return open(p).read() if p else ''\n",
    "short-circuit": "def f(p):\n    return p and open(p).read()\n",
    "in a comprehension": "def f(ps):\n    return [open(p).read() for p in ps]\n",
    "in a lambda": "reader = lambda p: open(p).read()\n",
    "in a class body": "class Config:\n    text = open('app.toml').read()\n",
    "on a line after a colon": "def f(p):\n    if p: return open(p).read()\n",
    "an open that is not a file": "from webbrowser import open\n\ndef f(url):\n    open(url).bit_length()\n",
    "a method named open on something unknown": "def f(storage):\n    return storage.open('x').read()\n",
    "os.open returns a descriptor": "import os\n\ndef f(p):\n    os.write(os.open(p, os.O_WRONLY), b'x')\n",
    "returned wrapped: the caller owns it": "import csv\n\ndef rows(p):\n    return csv.reader(open(p))\n",
    "stored wrapped on self: the object owns it": (
        "import csv\n\nclass Rows:\n    def __init__(self, p):\n        self.reader = csv.reader(open(p))\n"
    ),
    "taken over by an exit stack": (
        "import contextlib\n\ndef f(p):\n    with contextlib.ExitStack() as stack:\n"
        "        fh = stack.enter_context(open(p, 'rb'))\n        return fh.read()\n"
    ),
    "stored in a list": "def f(paths, files):\n    for p in paths:\n        files.append(open(p))\n",
    "closed at once (creates the file)": "import os\n\ndef touch(p):\n    open(os.path.join(p, 'x'), 'w').close()\n",
    "a with item": "def f(p):\n    with open(p) as fh, open(fh.read()) as g:\n        pass\n",
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(code, RULES, unsafe=True)
    assert result.error is None and result.fixed is None and result.findings == []


def test_does_not_touch_what_ul202_fixes() -> None:
    code = "def f(p):\n    fh = open(p)\n    data = fh.read()\n    fh.close()\n    return data\n"
    both = run_rules(code, (UnmanagedResource, ResourceNeverClosed))
    assert fixed_text(both) == "def f(p):\n    with open(p) as fh:\n        data = fh.read()\n    return data\n"
    assert set(both.fixes) == {"UL202"}


@pytest.mark.parametrize(
    ("code", "possible"),
    [
        ("x = open(p).read()", True),
        ("json.load(open(p))", True),
        ("for line in gzip.open(p): pass", True),
        ("x = urlopen(u).read()", True),
        ("fh = open(p)", False),
        ("return_value = reopen", False),
    ],
)
def test_could_fire(code: str, possible: bool) -> None:
    assert ResourceNeverClosed.could_fire(ast.parse(code)) is possible


GATE_CASES = {
    # what the visitor leaves alone: the gate rules it out
    "handed over whole": ("def f(p):\n    return File(open(p))\n", False),
    "stored whole on an attribute": ("def f(self, p):\n    self.file = File(open(p), name='x')\n", False),
    "closed at once": ("def f(p):\n    open(p, 'w').close()\n", False),
    "stored in a list": ("def f(p, files):\n    files.append(open(p))\n", False),
    "in a lambda": ("urls = [path('f', lambda x: FileResponse(open(x, 'rb')))]\n", False),
    "under a condition": ("def f(p, q):\n    return q or open(p).read()\n", False),
    "in a with item": ("def f(p):\n    with patch('x', open(p)):\n        pass\n", False),
    "in an if test": ("def f(p):\n    if open(p).read():\n        pass\n", False),
    "an attribute, not a method call": ("def f(p):\n    size = open(p).name\n", False),
    "in a class body": ("class K:\n    data = open('x').read()\n", False),
    "open() of an object's attribute": ("def f(self):\n    x = self.storage.open('f').read()\n", False),
    "open() of a name that is no module or path": ("def f(conn):\n    check(conn.open())\n", False),
    "a client session outside an async def": ("import aiohttp\n\ndef f(u):\n    r = aiohttp.ClientSession().get(u)\n", False),
    # what it may take
    "returned data": ("def f(p):\n    return open(p).read()\n", True),
    "data stored on an attribute": ("import json\n\ndef f(self, p):\n    self.data = json.load(open(p))\n", True),
    "a keyword argument": ("def f(p):\n    show(file=open(p))\n", True),
    "the iterable of a for": ("def f(p):\n    for line in open(p):\n        print(line)\n", True),
    "through a module alias": ("import gzip as gz\n\ndef f(p):\n    data = gz.open(p).read()\n", True),
    "open() of a path": ("from pathlib import Path\n\ndef f(p: Path):\n    data = p.open().read()\n", True),
    "a client session in an async def": (
        "import aiohttp\n\nasync def f(u):\n    if u:\n        r = await aiohttp.ClientSession().get(u)\n",
        True,
    ),
}


@pytest.mark.parametrize(("code", "possible"), GATE_CASES.values(), ids=GATE_CASES.keys())
def test_could_fire_needs_what_the_visitor_needs(code: str, possible: bool) -> None:
    assert ResourceNeverClosed.could_fire(ast.parse(code)) is possible
    if not possible:  # the visitor agrees
        assert run_rules(code, RULES, unsafe=True).findings == []


# --- generated variants ------------------------------------------------------------------------

OPENINGS = ("open(path)", "open(path, 'rb')", "gzip.open(path)", "pathlib.Path(path).open()")
USES = ("data = {}.read()", "data = json.load({})", "json.dump(data, {})", "print({}.readline())")


@st.composite
def programs(draw: st.DrawFn) -> str:
    statements = []
    for _ in range(draw(st.integers(1, 3))):
        statements.append(draw(st.sampled_from(USES)).format(draw(st.sampled_from(OPENINGS))))
        if draw(st.booleans()):
            statements.append("# between")
    body = "\n".join(["data = None", *statements, "return data"])
    for level in range(draw(st.integers(0, 2))):
        body = f"if flag{level}:\n" + textwrap.indent(body, "    ") + "\nreturn None"
    return "import gzip\nimport json\nimport pathlib\n\ndef work(path, flag0, flag1):\n" + textwrap.indent(body, "    ") + "\n"


@settings(max_examples=30, deadline=None)
@given(programs())
def test_generated_variants_compile_and_are_idempotent(code: str) -> None:
    fixed = fixed_text(run_rules(code, RULES))
    assert fixed != code
    compile(fixed, "generated.py", "exec")
    assert fixed.count("with ") == code.count("open(")
    assert fixed_text(run_rules(fixed, RULES)) == fixed
