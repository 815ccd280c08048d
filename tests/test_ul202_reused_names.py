"""UL202 on a name reused for several resources: each creation whose uses are certain is fixed."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul202_unmanaged_resource import UnmanagedResource

RULES = (UnmanagedResource,)


def _fix(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES))


REUSED = {
    # Was a must-not case ("name assigned twice") while the rule could not tell the two apart.
    "assigned again after the close": (
        """
        def read(a, b):
            handle = open(a)
            handle.read()
            handle.close()
            handle = open(b)
        """,
        """
        def read(a, b):
            with open(a) as handle:
                handle.read()
            handle = open(b)
        """,
    ),
    "read then written under one name, in a loop": (
        """
        import csv

        for name in names:
            stream = open(name)
            rows = list(csv.reader(stream))
            stream.close()

            stream = open(name + ".out", "w")
            csv.writer(stream).writerows(rows)
            stream.close()
        """,
        """
        import csv

        for name in names:
            with open(name) as stream:
                rows = list(csv.reader(stream))

            with open(name + ".out", "w") as stream:
                csv.writer(stream).writerows(rows)
        """,
    ),
    "an earlier file of the name is left open": (
        """
        def copy():
            src = open("in.txt")
            words = src.read().split()
            src = open("out.txt", "w")
            src.write(" ".join(words))
            src.close()
        """,
        """
        def copy():
            src = open("in.txt")
            words = src.read().split()
            with open("out.txt", "w") as src:
                src.write(" ".join(words))
        """,
    ),
    "three times at module level": (
        """
        log = open("a.txt", "w")
        log.write("1")
        log.close()
        log = open("a.txt", "a")
        log.write("2")
        log.close()
        log = open("a.txt")
        text = log.read()
        log.close()
        """,
        """
        with open("a.txt", "w") as log:
            log.write("1")
        with open("a.txt", "a") as log:
            log.write("2")
        with open("a.txt") as log:
            text = log.read()
        """,
    ),
    "in two branches of an if": (
        """
        def save(data, binary):
            if binary:
                out = open("x.bin", "wb")
                out.write(data)
                out.close()
            else:
                out = open("x.txt", "w")
                out.write(str(data))
                out.close()
        """,
        """
        def save(data, binary):
            if binary:
                with open("x.bin", "wb") as out:
                    out.write(data)
            else:
                with open("x.txt", "w") as out:
                    out.write(str(data))
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), REUSED.values(), ids=REUSED.keys())
def test_reused_name_is_fixed_per_creation(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)
    assert _fix(after) == textwrap.dedent(after)


UNCERTAIN = {
    "assigned again between creation and close": """
        def read(a, b, again):
            handle = open(a)
            if again:
                handle = open(b)
            handle.read()
            handle.close()
        """,
    "used after a conditional rebinding": """
        def read(a, b, again):
            handle = open(a)
            handle.read()
            handle.close()
            if again:
                handle = open(b)
            handle.write("x")
        """,
    "used in a handler after a rebinding in the try": """
        def read(a, b):
            handle = open(a)
            handle.read()
            handle.close()
            try:
                handle = open(b)
                handle.read()
            except OSError:
                handle.write("x")
        """,
    "used at the top of a loop whose later turn rebinds": """
        def read(paths):
            handle = open(paths[0])
            for path in paths:
                handle.read()
                handle = open(path)
                handle.read()
                handle.close()
        """,
    "the earlier binding is a parameter": """
        def read(handle, path):
            handle.flush()
            handle = open(path)
            handle.read()
            handle.close()
        """,
}


@pytest.mark.parametrize("code", UNCERTAIN.values(), ids=UNCERTAIN.keys())
def test_reused_name_with_an_uncertain_use_is_not_fixed(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.fixed is None


# --- generated: one name, several files, some closed, some not, some uses in between -----------


@st.composite
def reusing_programs(draw: st.DrawFn) -> str:
    """Segments in one block that each bind `f` again (closed or not), or use it, maybe under an `if`."""
    lines: list[str] = []
    for number in range(draw(st.integers(2, 4))):
        segment = draw(st.sampled_from(("closed", "unclosed", "use", "conditional")))
        if segment == "closed":
            lines += [f"f = open('p{number}')", f"step{number}(f.read())", "f.close()"]
        elif segment == "unclosed":
            lines += [f"f = open('p{number}')", f"step{number}(f.read())"]
        elif segment == "use":
            lines += [f"step{number}(f)"] if lines else [f"step{number}()"]
        else:
            lines += ["if flag:", f"    f = open('p{number}')"]
    body = textwrap.indent("\n".join(lines), "    ")
    return f"def work(flag):\n{body}\n"


@settings(max_examples=60, deadline=None)
@given(reusing_programs())
def test_generated_reuses_compile_are_idempotent_and_keep_every_open(code: str) -> None:
    fixed = fixed_text(run_rules(code, RULES))
    compile(fixed, "generated.py", "exec")
    assert fixed.count("open(") == code.count("open(")
    assert fixed.count(".close()") + fixed.count("with open(") == code.count(".close()")
    assert fixed_text(run_rules(fixed, RULES)) == fixed
