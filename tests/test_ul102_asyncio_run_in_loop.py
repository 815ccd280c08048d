"""UL102 asyncio-run-in-loop: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import ast
import asyncio
import functools
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul102_asyncio_run_in_loop import AsyncioRunInLoop

RULES = (AsyncioRunInLoop,)


def _fix(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES, unsafe=True))


CHANGED = {
    "a while loop whose test runs a coroutine too": (
        """
        import asyncio

        def drain(queue):
            while asyncio.run(queue.has_more()):
                asyncio.run(queue.pop())
        """,
        """
        import asyncio


        async def _drain_async(queue):
            while await queue.has_more():
                await queue.pop()


        def drain(queue):
            return asyncio.run(_drain_async(queue))
        """,
    ),
    "a nested function with nonlocal: the helper sits beside it": (
        """
        import asyncio

        def collect(urls):
            count = 0

            def fetch_all():
                nonlocal count
                for url in urls:
                    count += asyncio.run(fetch(url))

            fetch_all()
            return count
        """,
        """
        import asyncio

        def collect(urls):
            count = 0

            async def _fetch_all_async():
                nonlocal count
                for url in urls:
                    count += await fetch(url)

            def fetch_all():
                return asyncio.run(_fetch_all_async())

            fetch_all()
            return count
        """,
    ),
    "docstring, comments and blank lines; the comment above the def stays with it": (
        '''
        import asyncio


        # Nightly job.
        def nightly(day):
            """Sync the day's orders."""

            # first the orders
            asyncio.run(sync_orders(day))  # slow
            asyncio.run(sync_refunds(day))
        ''',
        '''
        import asyncio


        async def _nightly_async(day):
            # first the orders
            await sync_orders(day)  # slow
            await sync_refunds(day)


        # Nightly job.
        def nightly(day):
            """Sync the day's orders."""
            return asyncio.run(_nightly_async(day))
        ''',
    ),
    "a local import: the wrapper needs a module-level one": (
        """
        def backfill(days):
            import asyncio

            for day in days:
                asyncio.run(load(day))
        """,
        """
        import asyncio

        async def _backfill_async(days):
            import asyncio

            for day in days:
                await load(day)


        def backfill(days):
            return asyncio.run(_backfill_async(days))
        """,
    ),
    "two module-level loops, and a `_main` that already exists": (
        """
        import asyncio

        def _main():
            pass

        for user in USERS:
            asyncio.run(notify(user))
        while pending():
            asyncio.run(retry())
        """,
        """
        import asyncio

        def _main():
            pass


        async def _main_async():
            global user
            for user in USERS:
                await notify(user)


        asyncio.run(_main_async())


        async def _main_async_2():
            while pending():
                await retry()


        asyncio.run(_main_async_2())
        """,
    ),
    "a method using super() and a mangled name stays a method": (
        """
        import asyncio

        class Importer(Base):
            def load(self, rows, *, chunk=100):
                super().load(rows)
                for start in range(0, len(rows), chunk):
                    asyncio.run(self.__write(rows[start : start + chunk]))
        """,
        """
        import asyncio

        class Importer(Base):
            async def _load_async(self, rows, *, chunk):
                super().load(rows)
                for start in range(0, len(rows), chunk):
                    await self.__write(rows[start : start + chunk])

            def load(self, rows, *, chunk=100):
                return asyncio.run(self._load_async(rows, chunk=chunk))
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_fixes_exactly(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)


def test_the_fix_waits_for_unsafe() -> None:
    code = "import asyncio\n\ndef f(xs):\n    for x in xs:\n        asyncio.run(g(x))\n"
    result = run_rules(code, RULES)
    assert result.fixed is None
    found = [(finding.rule, finding.fixable, finding.safety) for finding in result.findings]
    assert found == [("UL102", True, "unsafe")]


UNTOUCHED = {
    "a lone asyncio.run(main()) at module level": """
        import asyncio

        asyncio.run(main())
        """,
    "a sync wrapper with exactly one call": """
        from asyncio import run

        def fetch_sync(url):
            response = run(fetch(url))
            return response.json()
        """,
    "an async function (UL101's business)": """
        import asyncio

        async def crawl(urls):
            for url in urls:
                asyncio.run(fetch(url))
        """,
    "a user function named run": """
        def run(job):
            return job()

        def process(jobs):
            for job in jobs:
                run(job)
        """,
    "someone else's run": """
        from invoke import run

        def deploy(hosts):
            for host in hosts:
                run(f"ssh {host} restart")
        """,
    "a comprehension is not a statement loop": """
        import asyncio

        def fetch_all(urls):
            return [asyncio.run(fetch(url)) for url in urls]
        """,
    "the loop only iterates over one call's result": """
        import asyncio

        def show():
            for item in asyncio.run(load_items()):
                print(item)
        """,
    "the calls are in nested functions and lambdas": """
        import asyncio

        def schedule(items):
            for item in items:
                pool.submit(lambda: asyncio.run(handle(item)))
        """,
    "a module-level loop in a class body": """
        import asyncio

        class Config:
            for name in NAMES:
                asyncio.run(check(name))
        """,
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES, unsafe=True)
    assert result.error is None and result.findings == [] and result.fixed is None


REPORTED_ONLY = {
    "a generator on one line": """
        import asyncio

        def stream(): yield asyncio.run(load(1)); yield asyncio.run(load(2))
        """,
    "a generator whose run is given options": """
        import asyncio

        def stream(ids):
            for item_id in ids:
                yield asyncio.run(load(item_id), debug=True)
        """,
    "drives a loop by hand as well": """
        import asyncio

        def warm(keys):
            for key in keys:
                asyncio.run(warm_one(key))
            asyncio.get_event_loop().run_until_complete(report())
        """,
    "a generator expression": """
        import asyncio

        def total(items):
            asyncio.run(connect())
            return sum(asyncio.run(price(item)) for item in items)
        """,
    "options to asyncio.run": """
        import asyncio

        def debug_all(items):
            for item in items:
                asyncio.run(check(item), debug=True)
        """,
    "a nested function that would now run inside the loop": """
        import asyncio

        def process(items):
            def one(item):
                return asyncio.run(handle(item))

            for item in items:
                asyncio.run(prepare(item))
                one(item)
        """,
    "a staticmethod of a nested class": """
        import asyncio

        def factory():
            class Inner:
                @staticmethod
                def ping(hosts):
                    for host in hosts:
                        asyncio.run(check(host))

            return Inner
        """,
}


@pytest.mark.parametrize("code", REPORTED_ONLY.values(), ids=REPORTED_ONLY.keys())
def test_reports_without_a_fix(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES, unsafe=True)
    assert result.error is None and result.fixed is None
    assert [(finding.rule, finding.fixable) for finding in result.findings] == [("UL102", False)]


# --- a generator: one loop for all of it (issue 14, item 4) ----------------------------------------

GENERATORS = {
    "a document loader's lazy_load: docstring, comment, `loop` taken, from-import": (
        '''
        from asyncio import run


        class Loader(BaseLoader):
            def lazy_load(self):
                """One document per path."""
                # in order
                loop = self.loop
                for path in self.paths:
                    yield run(self._aload(path, loop))
                yield from self.extra()
        ''',
        '''
        from asyncio import run
        import asyncio


        class Loader(BaseLoader):
            def lazy_load(self):
                """One document per path."""
                # in order
                event_loop = asyncio.new_event_loop()
                try:
                    loop = self.loop
                    for path in self.paths:
                        yield event_loop.run_until_complete(self._aload(path, loop))
                    yield from self.extra()
                finally:
                    event_loop.close()
        ''',
    ),
    "runs on the implicit loop, an aliased module": (
        """
        import asyncio as aio

        def pages(urls):
            loop = aio.get_event_loop()
            for url in urls:
                page = loop.run_until_complete(fetch(url))
                yield page
        """,
        """
        import asyncio as aio

        def pages(urls):
            event_loop = aio.new_event_loop()
            try:
                for url in urls:
                    page = event_loop.run_until_complete(fetch(url))
                    yield page
            finally:
                event_loop.close()
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), GENERATORS.values(), ids=GENERATORS.keys())
def test_a_generator_runs_one_loop(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)


# --- generated variants: the wrapper passes on exactly what it received ----------------------------

ALIASES = {  # import line -> how the code calls asyncio.run
    "import asyncio": "asyncio.run",
    "import asyncio as aio": "aio.run",
    "from asyncio import run": "run",
    "from asyncio import run as go": "go",
}
SHAPES = {  # shape -> (receiver parameter, decorator line, how ENTRY is reached)
    "function": (None, "", "entry"),
    "method": ("self", "", "Service().entry"),
    "classmethod": ("cls", "@classmethod", "Service.entry"),
    "staticmethod": (None, "@staticmethod", "Service.entry"),
}
RECORDED: list[tuple[Any, ...]] = []


async def record(*values: Any) -> tuple[Any, ...]:
    await asyncio.sleep(0)
    RECORDED.append(values)
    return values


def passthrough(function: Any) -> Any:
    return function


def logged(function: Any) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Variant:
    code: str
    run: str  # how the code spells asyncio.run
    args: tuple[int, ...]
    kwargs: dict[str, int]


@dataclass(frozen=True)
class Signature:
    posonly: list[str]
    regular: list[str]
    star: str | None  # "args", "" for a bare `*`, or None
    kwonly: list[str]
    double_star: str | None
    first_default: int  # the positional parameters from this index on have defaults
    kwonly_defaults: frozenset[str]

    @property
    def positional(self) -> list[str]:
        return self.posonly + self.regular

    def parameters(self, receiver: str | None, slash_after_receiver: bool) -> str:
        parts = [
            f"{name}={10 * (index + 1)}" if index >= self.first_default else name
            for index, name in enumerate(self.positional)
        ]
        parts[len(self.posonly) : len(self.posonly)] = ["/"] if self.posonly else []
        if receiver:
            parts[0:0] = [receiver, "/"] if slash_after_receiver and not self.posonly else [receiver]
        if self.star is not None:
            parts.append(f"*{self.star}")
        parts += [f"{name}=-1" if name in self.kwonly_defaults else name for name in self.kwonly]
        if self.double_star:
            parts.append(f"**{self.double_star}")
        return ", ".join(parts)

    def values(self) -> str:
        """A tuple expression of every parameter's value, as the function body sees it."""
        stars = [name for name in (self.star, self.double_star) if name]
        names = [*self.positional, *stars[: bool(self.star)], *self.kwonly, *stars[bool(self.star) :]]
        return f"({', '.join(names)},)" if names else "()"


@st.composite
def signatures(draw: st.DrawFn) -> Signature:
    names = iter(draw(st.permutations("abcdefgh")))
    posonly = [next(names) for _ in range(draw(st.integers(0, 2)))]
    regular = [next(names) for _ in range(draw(st.integers(0, 2)))]
    kwonly = [next(names) for _ in range(draw(st.integers(0, 2)))]
    return Signature(
        posonly=posonly,
        regular=regular,
        star=draw(st.sampled_from(("args", "") if kwonly else (None, "args"))),
        kwonly=kwonly,
        double_star=draw(st.sampled_from((None, "kwargs"))),
        first_default=draw(st.integers(0, len(posonly) + len(regular))),
        kwonly_defaults=frozenset(name for name in kwonly if draw(st.booleans())),
    )


@st.composite
def calls_of(draw: st.DrawFn, signature: Signature) -> tuple[tuple[int, ...], dict[str, int]]:
    """Arguments that bind `signature`: a prefix of the positionals by position, some of the rest by
    keyword, extra positionals for `*args`, and extra keywords (even positional-only names) for `**kwargs`."""
    positional = signature.positional
    given = draw(st.integers(min(len(signature.posonly), signature.first_default), len(positional)))
    args = tuple(range(1, given + 1))
    if signature.star and given == len(positional):
        args += tuple(range(100, 100 + draw(st.integers(0, 2))))
    kwargs = {
        name: 1000 + index
        for index, name in enumerate(positional[given:], start=given)
        if name in signature.regular and (index < signature.first_default or draw(st.booleans()))
    }
    for index, name in enumerate(signature.kwonly):
        if name not in signature.kwonly_defaults or draw(st.booleans()):
            kwargs[name] = 2000 + index
    if signature.double_star:
        for name in draw(st.lists(st.sampled_from(["x", "y", *signature.posonly]), unique=True, max_size=2)):
            kwargs[name] = 3000
    return args, kwargs


@st.composite
def variants(draw: st.DrawFn) -> Variant:
    import_line = draw(st.sampled_from(sorted(ALIASES)))
    run = ALIASES[import_line]
    signature = draw(signatures())
    shape = draw(st.sampled_from(sorted(SHAPES)))
    receiver, binding, entry = SHAPES[shape]
    values = signature.values()
    decorators = [d for d in (binding, draw(st.sampled_from(("", "@passthrough", "@logged")))) if d]
    body = [
        *(['"""The docstring stays on the wrapper."""'] if draw(st.booleans()) else []),
        *(["# a comment before the loop"] if draw(st.booleans()) else []),
        "for _ in range(2):",
        f"    {run}(record(*{values}))",
        *(["# a comment after the loop"] if draw(st.booleans()) else []),
        f"return {run}(record(*{values}))" if draw(st.booleans()) else f"return {values}",
    ]
    header = f"def entry({signature.parameters(receiver, draw(st.booleans()))}):"
    definition = "\n".join([*decorators, header, *("    " + line for line in body)])
    if shape != "function":
        definition = "class Service:\n" + textwrap.indent(definition, "    ")
    code = f"{import_line}\n\n\n{definition}\n\n\nENTRY = {entry}\n"
    args, kwargs = draw(calls_of(signature))
    return Variant(code, run, args, kwargs)


def _call(code: str, variant: Variant) -> tuple[Any, list[tuple[Any, ...]], inspect.Signature]:
    """(what ENTRY returned, what `record` received, ENTRY's signature) under real asyncio."""
    namespace: dict[str, Any] = {"record": record, "passthrough": passthrough, "logged": logged}
    exec(compile(code, "example.py", "exec"), namespace)
    entry = namespace["ENTRY"]
    assert not inspect.iscoroutinefunction(entry), "the entry point stays synchronous"
    RECORDED.clear()
    result = entry(*variant.args, **variant.kwargs)
    return result, list(RECORDED), inspect.signature(entry)


def _runs_in_async_bodies(code: str, run: str) -> int:
    """Independent count (with `ast`) of `run(...)` calls directly in async function bodies."""
    count = 0
    for function in ast.walk(ast.parse(code)):
        if isinstance(function, ast.AsyncFunctionDef):
            pending: list[ast.AST] = list(function.body)
            while pending:
                node = pending.pop()
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                    continue
                count += isinstance(node, ast.Call) and ast.unparse(node.func) == run
                pending.extend(ast.iter_child_nodes(node))
    return count


@settings(max_examples=50, deadline=None)
@given(variants())
def test_generated_wrappers_forward_exactly_what_they_receive(variant: Variant) -> None:
    once = fixed_text(run_rules(variant.code, RULES, unsafe=True))
    assert once != variant.code
    twice = run_rules(once, RULES, unsafe=True)
    assert twice.fixed is None and twice.error is None and twice.findings == [], "a second pass must change nothing"
    assert _runs_in_async_bodies(once, variant.run) == 0
    for comment in ("# a comment before the loop", "# a comment after the loop"):
        assert once.count(comment) == variant.code.count(comment)
    assert _call(once, variant) == _call(variant.code, variant)


@st.composite
def generators(draw: st.DrawFn) -> tuple[str, str]:
    """A sync generator that yields once per `asyncio.run`; returns (code, how it spells asyncio.run)."""
    import_line = draw(st.sampled_from(sorted(ALIASES)))
    run = ALIASES[import_line]
    lines = ['"""Yields one record per item."""'] if draw(st.booleans()) else []
    lines += ["loop = 'taken'"] if draw(st.booleans()) else []
    if draw(st.booleans()):
        lines += ["for item in items:", f"    yield {run}(record(item))"]
    else:
        lines += ["while items:", f"    got = {run}(record(items.pop(0)))", "    yield got"]
    lines += [f"yield {run}(record(-1))"] if draw(st.booleans()) else []
    body = textwrap.indent("\n".join(lines), "    ")
    return f"{import_line}\n\n\ndef entry(items):\n{body}\n", run


def _drain(code: str) -> tuple[list[Any], list[tuple[Any, ...]]]:
    namespace: dict[str, Any] = {"record": record}
    exec(compile(code, "example.py", "exec"), namespace)
    RECORDED.clear()
    return list(namespace["entry"]([1, 2, 3])), list(RECORDED)


@settings(max_examples=40, deadline=None)
@given(generators())
def test_generated_generators_yield_the_same_from_one_loop(case: tuple[str, str]) -> None:
    code, run = case
    once = fixed_text(run_rules(code, RULES, unsafe=True))
    assert f"{run}(" not in once.split("def entry", 1)[1], "no asyncio.run is left in the generator"
    twice = run_rules(once, RULES, unsafe=True)
    assert twice.fixed is None and twice.error is None and twice.findings == [], "a second pass must change nothing"
    assert _drain(once) == _drain(code)
