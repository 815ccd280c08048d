"""UL202 unmanaged-resource: cases beyond the embedded examples, config pairs, generated variants."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.engine.findings import FileResult
from unleak.engine.pipeline import Job, process
from unleak.engine.prefilter import triggered_rules
from unleak.settings import ResourcePair, Settings
from unleak.transforms.ul202_unmanaged_resource import UnmanagedResource

RULES = (UnmanagedResource,)
BROWSER = ResourcePair(acquire="get_browser", release="cleanup", context="browser_context")


def _run(code: str, *resources: ResourcePair) -> FileResult:
    raw = textwrap.dedent(code).encode("utf-8")
    settings = Settings(resources=resources)
    codes = tuple(rule.code for rule in triggered_rules(raw, RULES, settings))
    return process(Job("example.py", None, raw, codes, settings, True))


def _fix(code: str, *resources: ResourcePair) -> str:
    return fixed_text(_run(code, *resources))


CHANGED = {
    "tempfile through a module alias, at module level": (
        """
        import tempfile as tf

        scratch = tf.NamedTemporaryFile("w")
        scratch.write("x")
        scratch.flush()
        scratch.close()
        print("done")
        """,
        """
        import tempfile as tf

        with tf.NamedTemporaryFile("w") as scratch:
            scratch.write("x")
            scratch.flush()
        print("done")
        """,
    ),
    "socket in a nested block, iterated file, blank line dropped": (
        """
        import socket

        def probe(hosts, path):
            for host in hosts:
                if host:
                    conn = socket.socket()

                    conn.connect((host, 80))
                    conn.close()
            log = open(path)
            for line in log:
                print(line)
            log.close()
        """,
        """
        import socket

        def probe(hosts, path):
            for host in hosts:
                if host:
                    with socket.socket() as conn:
                        conn.connect((host, 80))
            with open(path) as log:
                for line in log:
                    print(line)
        """,
    ),
    "aiohttp session in an async function": (
        """
        from aiohttp import ClientSession

        async def fetch(url):
            session = ClientSession()
            response = await session.get(url)
            text = await response.text()
            await session.close()
            return text
        """,
        """
        from aiohttp import ClientSession

        async def fetch(url):
            async with ClientSession() as session:
                response = await session.get(url)
                text = await response.text()
            return text
        """,
    ),
    "sync httpx client, statements before and after stay in order": (
        """
        import httpx

        def ping(url):
            started = now()
            client = httpx.Client()
            client.get(url)
            client.close()
            return now() - started
        """,
        """
        import httpx

        def ping(url):
            started = now()
            with httpx.Client() as client:
                client.get(url)
            return now() - started
        """,
    ),
    "session from a sessionmaker factory of this module": (
        """
        from sqlalchemy.orm import sessionmaker

        SessionLocal = sessionmaker(bind=engine)

        def count(model):
            db = SessionLocal()
            total = db.query(model).count()
            db.close()
            return total
        """,
        """
        from sqlalchemy.orm import sessionmaker

        SessionLocal = sessionmaker(bind=engine)

        def count(model):
            with SessionLocal() as db:
                total = db.query(model).count()
            return total
        """,
    ),
    "async session from async_sessionmaker": (
        """
        from sqlalchemy.ext.asyncio import async_sessionmaker

        Factory = async_sessionmaker(engine)

        async def count(model):
            db = Factory()
            total = await db.scalar(model)
            await db.close()
            return total
        """,
        """
        from sqlalchemy.ext.asyncio import async_sessionmaker

        Factory = async_sessionmaker(engine)

        async def count(model):
            async with Factory() as db:
                total = await db.scalar(model)
            return total
        """,
    ),
    "SQLAlchemy Session(...)": (
        """
        from sqlalchemy.orm import Session

        def save(engine, row):
            session = Session(engine)
            session.add(row)
            session.commit()
            session.close()
        """,
        """
        from sqlalchemy.orm import Session

        def save(engine, row):
            with Session(engine) as session:
                session.add(row)
                session.commit()
        """,
    ),
    "async playwright started and stopped by hand": (
        """
        from playwright.async_api import async_playwright

        async def screenshot(url):
            pw = await async_playwright().start()
            browser = await pw.chromium.launch()
            await (await browser.new_page()).goto(url)
            await pw.stop()
        """,
        """
        from playwright.async_api import async_playwright

        async def screenshot(url):
            async with async_playwright() as pw:
                browser = await pw.chromium.launch()
                await (await browser.new_page()).goto(url)
        """,
    ),
    "sync playwright": (
        """
        from playwright.sync_api import sync_playwright

        def screenshot(url):
            pw = sync_playwright().start()
            pw.chromium.launch().new_page().goto(url)
            pw.stop()
        """,
        """
        from playwright.sync_api import sync_playwright

        def screenshot(url):
            with sync_playwright() as pw:
                pw.chromium.launch().new_page().goto(url)
        """,
    ),
}


LENT_TO_CALLS = {
    "passed to json.dump": (
        """
        import json

        def dump(path, data):
            handle = open(path, "w")
            json.dump(data, handle)
            handle.close()
        """,
        """
        import json

        def dump(path, data):
            with open(path, "w") as handle:
                json.dump(data, handle)
        """,
    ),
    "wrapped by csv.writer, the writer a local": (
        """
        import csv

        def export(path, rows):
            fh = open(path, "w", newline="")
            writer = csv.writer(fh)
            for row in rows:
                writer.writerow(row)
            fh.close()
        """,
        """
        import csv

        def export(path, rows):
            with open(path, "w", newline="") as fh:
                writer = csv.writer(fh)
                for row in rows:
                    writer.writerow(row)
        """,
    ),
    "session passed by keyword to an awaited method, its result kept in a list": (
        """
        import aiohttp

        class Scraper:
            async def crawl(self, urls):
                session = aiohttp.ClientSession()
                results = []
                for url in urls:
                    results.append(await self.run(url, session=session))
                await session.close()
                return results
        """,
        """
        import aiohttp

        class Scraper:
            async def crawl(self, urls):
                async with aiohttp.ClientSession() as session:
                    results = []
                    for url in urls:
                        results.append(await self.run(url, session=session))
                return results
        """,
    ),
    "iterated by comprehensions and a generator consumed here": (
        """
        def count(path):
            fh = open(path)
            lines = [line.strip() for line in fh]
            total = sum(1 for _ in fh)
            fh.close()
            return lines, total
        """,
        """
        def count(path):
            with open(path) as fh:
                lines = [line.strip() for line in fh]
                total = sum(1 for _ in fh)
            return lines, total
        """,
    ),
}

KINDS_BY_QUALIFIED_NAME = {
    "Path.open on a parameter annotated Path, derived with /": (
        """
        from pathlib import Path

        def read(root: Path):
            f = (root / "a.txt").open()
            data = f.read()
            f.close()
            return data
        """,
        """
        from pathlib import Path

        def read(root: Path):
            with (root / "a.txt").open() as f:
                data = f.read()
            return data
        """,
    ),
    "Path.open on a name bound to a derived Path": (
        """
        import pathlib

        def write(name):
            p = pathlib.Path(name).with_suffix(".txt")
            f = p.open("w")
            f.write("x")
            f.close()
        """,
        """
        import pathlib

        def write(name):
            p = pathlib.Path(name).with_suffix(".txt")
            with p.open("w") as f:
                f.write("x")
        """,
    ),
    "connections and urlopen": (
        """
        import socket
        from urllib.request import urlopen

        def fetch(host):
            conn = socket.create_connection((host, 80))
            conn.sendall(b"x")
            conn.close()
            resp = urlopen(host)
            body = resp.read()
            resp.close()
            return body
        """,
        """
        import socket
        from urllib.request import urlopen

        def fetch(host):
            with socket.create_connection((host, 80)) as conn:
                conn.sendall(b"x")
            with urlopen(host) as resp:
                body = resp.read()
            return body
        """,
    ),
    "executor shut down plainly: with": (
        """
        from concurrent.futures import ThreadPoolExecutor

        def run_all(jobs):
            pool = ThreadPoolExecutor(4)
            futures = [pool.submit(job) for job in jobs]
            pool.shutdown()
            return futures
        """,
        """
        from concurrent.futures import ThreadPoolExecutor

        def run_all(jobs):
            with ThreadPoolExecutor(4) as pool:
                futures = [pool.submit(job) for job in jobs]
            return futures
        """,
    ),
}

TRY_FINALLY_KINDS = {
    "executor shut down without waiting: with would wait": (
        """
        import concurrent.futures

        def fire(job):
            pool = concurrent.futures.ProcessPoolExecutor()
            pool.submit(job)
            pool.shutdown(wait=False)
        """,
        """
        import concurrent.futures

        def fire(job):
            pool = concurrent.futures.ProcessPoolExecutor()
            try:
                pool.submit(job)
            finally:
                pool.shutdown(wait=False)
        """,
    ),
    "sqlite3 connection and cursor: with would not close them": (
        """
        import sqlite3

        def rows(path):
            conn = sqlite3.connect(path)
            cur = conn.cursor()
            cur.execute("select 1")  # the query
            # fetched
            rows = cur.fetchall()
            cur.close()  # the cursor
            conn.close()
            return rows
        """,
        """
        import sqlite3

        def rows(path):
            conn = sqlite3.connect(path)
            try:
                cur = conn.cursor()
                try:
                    cur.execute("select 1")  # the query
                    # fetched
                    rows = cur.fetchall()
                finally:
                    cur.close()  # the cursor
            finally:
                conn.close()
            return rows
        """,
    ),
    "cursor of a connection opened by with": (
        """
        import sqlite3

        def insert(path, row):
            with sqlite3.connect(path) as conn:
                cur = conn.cursor()
                cur.execute("insert into t values (?)", row)
                cur.close()
        """,
        """
        import sqlite3

        def insert(path, row):
            with sqlite3.connect(path) as conn:
                cur = conn.cursor()
                try:
                    cur.execute("insert into t values (?)", row)
                finally:
                    cur.close()
        """,
    ),
    "smtp quit and ftp close keep their own release": (
        """
        import ftplib
        from smtplib import SMTP

        def send(host, msg):
            server = SMTP(host)
            server.send_message(msg)
            server.quit()
            ftp = ftplib.FTP(host)
            ftp.login()
            ftp.close()
        """,
        """
        import ftplib
        from smtplib import SMTP

        def send(host, msg):
            server = SMTP(host)
            try:
                server.send_message(msg)
            finally:
                server.quit()
            ftp = ftplib.FTP(host)
            try:
                ftp.login()
            finally:
                ftp.close()
        """,
    ),
    "playwright browser, context and page": (
        """
        from playwright.async_api import async_playwright

        async def shot(url):
            async with async_playwright() as p:
                browser = await p.chromium.launch(headless=True)
                context = await browser.new_context()
                page = await context.new_page()
                await page.goto(url)
                await page.close()
                await context.close()
                await browser.close()
        """,
        """
        from playwright.async_api import async_playwright

        async def shot(url):
            async with async_playwright() as p:
                browser = await p.chromium.launch(headless=True)
                try:
                    context = await browser.new_context()
                    try:
                        page = await context.new_page()
                        try:
                            await page.goto(url)
                        finally:
                            await page.close()
                    finally:
                        await context.close()
                finally:
                    await browser.close()
        """,
    ),
    "sync playwright browser from a started manager": (
        """
        from playwright.sync_api import sync_playwright

        def shot(url):
            p = sync_playwright().start()
            browser = p.firefox.launch()
            browser.new_page().goto(url)
            browser.close()
        """,
        """
        from playwright.sync_api import sync_playwright

        def shot(url):
            p = sync_playwright().start()
            browser = p.firefox.launch()
            try:
                browser.new_page().goto(url)
            finally:
                browser.close()
        """,
    ),
}


@pytest.mark.parametrize(
    ("before", "after"),
    [*LENT_TO_CALLS.values(), *KINDS_BY_QUALIFIED_NAME.values(), *TRY_FINALLY_KINDS.values()],
    ids=[*LENT_TO_CALLS, *KINDS_BY_QUALIFIED_NAME, *TRY_FINALLY_KINDS],
)
def test_lent_resources_and_new_kinds(before: str, after: str) -> None:
    fixed = _fix(before)
    assert fixed == textwrap.dedent(after)
    assert _fix(fixed) == fixed


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_fixes_exactly(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)


UNTOUCHED = {
    "returned": """
        def make(path):
            handle = open(path)
            handle.write("x")
            return handle
        """,
    "yielded": """
        def lines(path):
            handle = open(path)
            yield handle
            handle.close()
        """,
    "stored on self": """
        class Log:
            def start(self, path):
                handle = open(path)
                self.handle = handle
                handle.close()
        """,
    "put in a container": """
        def keep(path, bag):
            handle = open(path)
            bag = [handle]
            handle.close()
        """,
    "already in finally": """
        def read(path):
            handle = open(path)
            try:
                data = handle.read()
            finally:
                handle.close()
            return data
        """,
    "already a with": """
        def read(path):
            handle = open(path)
            with handle:
                data = handle.read()
            handle.close()
        """,
    "closed in another method": """
        class Reader:
            def open(self, path):
                self.handle = open(path)

            def close(self):
                self.handle.close()
        """,
    "closed only in except": """
        def read(path):
            handle = open(path)
            try:
                return handle.read()
            except OSError:
                handle.close()
                raise
        """,
    "used by a nested function": """
        def read(path):
            handle = open(path)
            reader = lambda: handle.read()
            reader()
            handle.close()
        """,
    "async client in sync code": """
        import httpx

        def fetch(url):
            client = httpx.AsyncClient()
            client.get(url)
            client.aclose()
        """,
    "look-alike open from another module": """
        from storage.backends import open

        def read(path):
            handle = open(path)
            data = handle.read()
            handle.close()
        """,
    "async close not awaited": """
        import httpx

        async def fetch(url):
            client = httpx.AsyncClient()
            await client.get(url)
            client.aclose()
        """,
    "session factory imported from elsewhere (unknown kind)": """
        from app.db import SessionLocal

        def count(model):
            db = SessionLocal()
            total = db.query(model).count()
            db.close()
            return total
        """,
    "playwright start not awaited in async code": """
        from playwright.async_api import async_playwright

        async def screenshot(url):
            pw = async_playwright().start()
            await pw.chromium.launch()
            await pw.stop()
        """,
    "unknown object with a close method": """
        def drain(pool):
            conn = pool.acquire()
            conn.send("x")
            conn.close()
        """,
    "also closed on an early-return path": """
        from playwright.sync_api import sync_playwright

        def screenshot(url):
            pw = sync_playwright().start()
            if not url:
                pw.stop()
                return
            pw.chromium.launch().new_page().goto(url)
            pw.stop()
        """,
    "never closed": """
        def read(path):
            handle = open(path)
            return handle.read()
        """,
}


@pytest.mark.parametrize(
    ("module", "call", "use"),
    [
        ("gzip", "gzip.open(p)", "read()"),
        ("bz2", "bz2.open(p)", "read()"),
        ("lzma", "lzma.open(p)", "read()"),
        ("io", "io.open(p)", "read()"),
        ("codecs", 'codecs.open(p, encoding="utf-8")', "read()"),
        ("zipfile", "zipfile.ZipFile(p)", "namelist()"),
        ("tarfile", "tarfile.open(p)", "getnames()"),
        ("shelve", "shelve.open(p)", "sync()"),
    ],
)
def test_files_archives_and_shelves_become_with(module: str, call: str, use: str) -> None:
    before = f"import {module}\n\ndef work(p):\n    r = {call}\n    r.{use}\n    r.close()\n"
    assert _fix(before) == f"import {module}\n\ndef work(p):\n    with {call} as r:\n        r.{use}\n"


ESCAPES = {
    "returned on one path before its close": """
        def source(path, raw):
            handle = open(path)
            if raw:
                return handle
            data = handle.read()
            handle.close()
            return data
        """,
    "returned before its close, wrapped by a call": """
        import csv

        def rows(path, flag):
            fh = open(path)
            if flag:
                return csv.reader(fh)
            fh.read()
            fh.close()
        """,
    "a generator over it returned before its close": """
        def lines(path, flag):
            fh = open(path)
            if flag:
                return (line for line in fh)
            fh.close()
        """,
    "yielded inside what a call made of it": """
        def parsed(path):
            fh = open(path)
            yield parse(fh)
            fh.close()
        """,
    "what a call made of it stored on self": """
        import csv

        class Export:
            def start(self, path):
                fh = open(path, "w")
                self.writer = csv.writer(fh)
                self.writer.writerow(["a"])
                fh.close()
        """,
    "stored in a container by a method": """
        def keep(path, readers):
            fh = open(path)
            readers.append(fh)
            fh.close()
        """,
    "handed to an exit stack": """
        def stacked(path, stack):
            fh = open(path)
            stack.enter_context(fh)
            fh.close()
        """,
    "stored by setattr": """
        def attach(path, target):
            fh = open(path)
            setattr(target, "log", fh)
            fh.close()
        """,
    "assigned to another name": """
        def alias(path):
            fh = open(path)
            other = fh
            other.read()
            fh.close()
        """,
    "in a tuple handed to a thread": """
        import threading

        def spawn(path):
            fh = open(path)
            threading.Thread(target=work, args=(fh,)).start()
            fh.close()
        """,
    "captured by a nested function": """
        def closure(path):
            fh = open(path)

            def later():
                return fh.read()

            run(later)
            fh.close()
        """,
    "its close passed on another path": """
        def closed_elsewhere(path):
            fh = open(path)
            if not check(fh):
                cleanup(fh.close)
                return
            fh.read()
            fh.close()
        """,
    "a helper named like a release gets it on another path": """
        import smtplib

        def send(host, msg):
            server = smtplib.SMTP(host)
            if not msg:
                safe_quit(server)
                return
            server.send_message(msg)
            server.quit()
        """,
    "configured release called on another path": """
        async def scrape(manager, url):
            ctx = await manager.get_browser()
            if not url:
                await manager.cleanup(ctx)
                return
            await ctx.go(url)
            await manager.cleanup(ctx)
        """,
    "sqlite connection used by with only (commits, never closes)": """
        import sqlite3

        def save(path):
            conn = sqlite3.connect(path)
            with conn:
                conn.execute("insert into t values (1)")
        """,
    "open() on something not known to be a Path": """
        def read(storage, name):
            f = storage.open(name)
            data = f.read()
            f.close()
            return data
        """,
    "cursor() of something not known to be a sqlite3 connection": """
        def rows(conn):
            cur = conn.cursor()
            cur.execute("select 1")
            cur.close()
        """,
    "launch() on something that is not playwright": """
        async def go(rocket):
            ship = await rocket.chromium.launch()
            await ship.fly()
            await ship.close()
        """,
    "executor shut down on another path too": """
        from concurrent.futures import ThreadPoolExecutor

        def run(jobs):
            pool = ThreadPoolExecutor()
            if not jobs:
                pool.shutdown()
                return
            pool.map(print, jobs)
            pool.shutdown()
        """,
}


@pytest.mark.parametrize("code", ESCAPES.values(), ids=ESCAPES.keys())
def test_escaping_resources_and_look_alike_kinds_are_left_alone(code: str) -> None:
    result = _run(code, BROWSER)
    assert result.fixed is None
    assert not result.findings


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = _run(code, BROWSER)
    assert result.fixed is None
    assert not result.findings


def test_use_after_close_is_reported_without_a_fix() -> None:
    code = """
        def read(path):
            handle = open(path)
            data = handle.read()
            handle.close()
            print(handle.closed)
        """
    result = _run(code)
    assert result.fixed is None
    assert [finding.rule for finding in result.findings] == ["UL202"]


PAIR_BEFORE = """
    async def scrape(manager, url):
        ctx = await manager.get_browser(headless=True)
        page = await ctx.new_page()
        await page.goto(url)
        await manager.cleanup(ctx)
        return url
    """
PAIR_AFTER = """
    async def scrape(manager, url):
        async with manager.browser_context(headless=True) as ctx:
            page = await ctx.new_page()
            await page.goto(url)
        return url
    """


def test_configured_pair_in_process() -> None:
    assert _fix(PAIR_BEFORE, BROWSER) == textwrap.dedent(PAIR_AFTER)


def test_configured_pair_without_await_is_a_plain_with() -> None:
    before = """
        def scrape(pool, url):
            conn = pool.checkout(url, retries=2)
            conn.send("hi")
            pool.checkin(conn)
        """
    after = """
        def scrape(pool, url):
            with pool.connection(url, retries=2) as conn:
                conn.send("hi")
        """
    pair = ResourcePair(acquire="checkout", release="checkin", context="connection")
    assert _fix(before, pair) == textwrap.dedent(after)


def test_configured_function_pair_needs_the_context_manager_in_scope() -> None:
    code = """
        from app import get_browser, cleanup{extra}

        async def scrape(url):
            ctx = await get_browser(url)
            await ctx.go()
            await cleanup(ctx)
        """
    missing = _run(code.format(extra=""), BROWSER)
    assert missing.fixed is None
    assert [finding.rule for finding in missing.findings] == ["UL202"]
    fixed = _fix(code.format(extra=", browser_context"), BROWSER)
    assert "    async with browser_context(url) as ctx:\n        await ctx.go()\n" in fixed
    assert "cleanup(ctx)" not in fixed


@pytest.mark.parametrize(
    "release",
    ["await other.cleanup(ctx)", "await manager.cleanup(ctx, force=True)", "await manager.dispose(ctx)"],
)
def test_configured_pair_needs_the_same_receiver_and_release(release: str) -> None:
    code = f"""
        async def scrape(manager, other):
            ctx = await manager.get_browser()
            await ctx.go()
            {release}
        """
    assert _run(code, BROWSER).fixed is None


def test_configured_pair_is_ignored_without_config() -> None:
    assert _run(PAIR_BEFORE).fixed is None


def test_configured_pair_through_pyproject_and_cli(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.unleak]\n\n[[tool.unleak.resources]]\nacquire = "get_browser"\nrelease = "cleanup"\n'
        'context = "browser_context"\n'
    )
    target = tmp_path / "scrape.py"
    target.write_text(textwrap.dedent(PAIR_BEFORE))
    command = [sys.executable, "-m", "unleak", "apply", str(target)]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=60, check=False)
    assert first.returncode == 0, first.stderr
    assert target.read_text() == textwrap.dedent(PAIR_AFTER)
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=60, check=False)
    assert again.returncode == 0, again.stderr
    assert target.read_text() == textwrap.dedent(PAIR_AFTER)


def test_missing_key_in_config_is_a_clear_error(tmp_path: Path) -> None:
    pyproject = '[[tool.unleak.resources]]\nacquire = "get_browser"\nrelease = "cleanup"\n'
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "scrape.py").write_text(textwrap.dedent(PAIR_BEFORE))
    done = subprocess.run(
        [sys.executable, "-m", "unleak", "check", str(tmp_path / "scrape.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "missing the key 'context'" in done.stdout + done.stderr


def test_could_fire_needs_a_release_of_the_assigned_name() -> None:
    assert not UnmanagedResource.could_fire(ast.parse("f = open(p)\nprint(g)\ng.close()\n"))
    assert not UnmanagedResource.could_fire(ast.parse("f = open(p)\nprint(f)\n"))
    assert UnmanagedResource.could_fire(ast.parse("def x():\n    f = open(p)\n    f.close()\n"))
    configured = ast.parse("async def x():\n    c = await m.get_browser()\n    await m.cleanup(c)\n")
    assert not UnmanagedResource.could_fire(configured)
    assert UnmanagedResource.could_fire_under(configured, Settings(resources=(BROWSER,)))


@pytest.mark.parametrize(
    ("imports", "possible"),
    [
        ("import tempfile", True),
        ("import tempfile as tmp", True),
        ("from tempfile import NamedTemporaryFile", True),
        ("from sqlalchemy import orm", True),
        ("import sqlalchemy.orm", True),
        ("from django.core.files import temp as tempfile", False),  # same spelling, another module
        ("# self.storage.open()", False),  # a method named like a built-in
        ("", False),
    ],
)
def test_could_fire_follows_how_the_module_is_imported(imports: str, possible: bool) -> None:
    call = {
        "from tempfile import NamedTemporaryFile": "NamedTemporaryFile()",
        "import tempfile as tmp": "tmp.NamedTemporaryFile()",
        "from sqlalchemy import orm": "orm.Session()",
        "import sqlalchemy.orm": "sqlalchemy.orm.Session()",
        "# self.storage.open()": "self.storage.open(name)",
    }.get(imports, "tempfile.NamedTemporaryFile()")
    code = f"{imports}\n\ndef x():\n    f = {call}\n    f.write(b'a')\n    f.close()\n"
    assert UnmanagedResource.could_fire(ast.parse(code)) is possible


GATE_CASES = {
    # what the visitor cannot take: the gate rules it out
    "a descriptor closed by a function": ("import os\n\ndef f(p):\n    fd = os.open(p, 0)\n    os.close(fd)\n", False),
    "open() of a name no binding makes a path": (
        "from pathlib import Path\n\ndef f(self):\n    s = self.make()\n    h = s.open('x')\n    h.write('a')\n    h.close()\n",
        False,
    ),
    "path.open() without pathlib": ("def f(p):\n    h = p.open()\n    h.read()\n    h.close()\n", False),
    "cursor() without sqlite3": ("def f(conn):\n    c = conn.cursor()\n    c.execute('x')\n    c.close()\n", False),
    "start() without playwright": ("def f(m):\n    s = m.server().start()\n    s.run()\n    s.stop()\n", False),
    "a call of no session factory next to one": (
        "from sqlalchemy.orm import sessionmaker\n\nSessionLocal = sessionmaker()\n\n"
        "def f():\n    s = other()\n    s.run()\n    s.close()\n",
        False,
    ),
    # what it can take
    "this module's session factory": (
        "from sqlalchemy.orm import sessionmaker\n\nSessionLocal = sessionmaker()\n\n"
        "def f():\n    s = SessionLocal()\n    s.run()\n    s.close()\n",
        True,
    ),
    "open() of a parameter annotated Path": (
        "from pathlib import Path\n\ndef f(p: Path):\n    h = p.open()\n    h.read()\n    h.close()\n",
        True,
    ),
    "open() of a path's parent": ("import pathlib\n\ndef f(p):\n    h = p.parent.open()\n    h.read()\n    h.close()\n", True),
    "open() of a joined path": (
        "from pathlib import Path as P\n\nbase = P('.')\n\ndef f():\n    h = (base / 'x').open()\n    h.read()\n    h.close()\n",
        True,
    ),
    "open() of a name bound by with": (
        "import pathlib\n\ndef f(q):\n    with q.with_suffix('.txt') as p:\n        h = p.open()\n        h.read()\n        h.close()\n",
        True,
    ),
    "cursor() with sqlite3": ("import sqlite3\n\ndef f(conn):\n    c = conn.cursor()\n    c.execute('x')\n    c.close()\n", True),
    "a shutdown with a positional argument": (
        "import concurrent.futures\n\ndef f():\n    pool = concurrent.futures.ThreadPoolExecutor()\n    pool.map(print, [])\n    pool.shutdown(False)\n",
        True,
    ),
}


@pytest.mark.parametrize(("code", "possible"), GATE_CASES.values(), ids=GATE_CASES.keys())
def test_could_fire_needs_what_the_visitor_needs(code: str, possible: bool) -> None:
    assert UnmanagedResource.could_fire(ast.parse(code)) is possible


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "from pathlib import Path\n\ndef f(p: Path):\n    h = p.parent.open()\n    data = h.read()\n    h.close()\n    return data\n",
            "from pathlib import Path\n\ndef f(p: Path):\n    with p.parent.open() as h:\n        data = h.read()\n    return data\n",
        ),
        (
            "import concurrent.futures\n\ndef f(jobs):\n    pool = concurrent.futures.ThreadPoolExecutor()\n"
            "    pool.map(print, jobs)\n    pool.shutdown(False)\n",
            "import concurrent.futures\n\ndef f(jobs):\n    pool = concurrent.futures.ThreadPoolExecutor()\n"
            "    try:\n        pool.map(print, jobs)\n    finally:\n        pool.shutdown(False)\n",
        ),
    ],
    ids=["a path's parent", "a shutdown with a positional argument"],
)
def test_shapes_the_gate_let_through_are_fixed(before: str, after: str) -> None:
    assert _fix(before) == after


def test_trigger_lets_configured_releases_through_only_when_configured() -> None:
    raw = textwrap.dedent(PAIR_BEFORE).encode("utf-8")
    assert triggered_rules(raw, RULES, Settings()) == ()
    assert triggered_rules(raw, RULES, Settings(resources=(BROWSER,))) == RULES
    assert triggered_rules(b"print(x)\n", RULES, Settings(resources=(BROWSER,))) == ()


# --- generated variants ------------------------------------------------------------------------

KINDS = {
    "open(path)": ("", "close", False),
    "httpx.Client()": ("import httpx\n\n", "close", False),
    "tempfile.TemporaryFile()": ("import tempfile\n\n", "close", False),
    "httpx.AsyncClient()": ("import httpx\n\n", "aclose", True),
}


def _uses(draw: st.DrawFn, name: str, optional_last: str) -> list[str]:
    """One to three uses of `name`, maybe a comment among them, maybe `optional_last` after them."""
    uses = [f"step{i}({name}.attr{i})" for i in range(draw(st.integers(1, 3)))]
    if draw(st.booleans()):
        uses.insert(draw(st.integers(0, len(uses))), "# a comment between statements")
    if draw(st.booleans()):
        uses.append(optional_last)
    return uses


def _function(draw: st.DrawFn, header: str, prefix: str, body: list[str]) -> str:
    """`body` nested in zero to two `if`s, in `work(path, flag0, flag1)`."""
    nested = "\n".join(body)
    for level in range(draw(st.integers(0, 2))):
        nested = f"if flag{level}:\n" + textwrap.indent(nested, "    ")
    return f"{header}{prefix} work(path, flag0, flag1):\n" + textwrap.indent(nested, "    ") + "\n"


@st.composite
def programs(draw: st.DrawFn) -> str:
    acquire = draw(st.sampled_from(sorted(KINDS)))
    header, close, asynchronous = KINDS[acquire]
    name = draw(st.sampled_from(("f", "handle", "client")))
    uses = _uses(draw, name, f"for item in {name}:\n    handle_item(item)")
    before = [f"before{i}()" for i in range(draw(st.integers(0, 2)))]
    after = [f"after{i}()" for i in range(draw(st.integers(0, 2)))]
    closing = f"await {name}.{close}()" if asynchronous else f"{name}.{close}()"
    body = [*before, f"{name} = {acquire}", *uses, closing, *after, "return 0"]
    return _function(draw, header, "async def" if asynchronous else "def", body)


def _statement_calls(code: str) -> list[str]:
    """Every called name in source order: what must survive, in the same order."""
    tree = ast.parse(code)
    called = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    in_order = sorted(called, key=lambda node: (node.lineno, node.col_offset))
    return [cast(ast.Name, node.func).id for node in in_order]


@settings(max_examples=40, deadline=None)
@given(programs())
def test_generated_variants_compile_are_idempotent_and_keep_order(code: str) -> None:
    fixed = fixed_text(run_rules(code, RULES))
    assert fixed != code
    compile(fixed, "generated.py", "exec")
    assert "with " in fixed and ".close()" not in fixed and ".aclose()" not in fixed
    assert _statement_calls(fixed) == _statement_calls(code)
    assert fixed_text(run_rules(fixed, RULES)) == fixed


TRY_FINALLY_KINDS_GENERATED = {
    "sqlite3.connect(path)": ("import sqlite3\n\n", "close()"),
    "ftplib.FTP(path)": ("import ftplib\n\n", "quit()"),
    "concurrent.futures.ThreadPoolExecutor()": ("import concurrent.futures\n\n", "shutdown(wait=False)"),
}


@st.composite
def try_finally_programs(draw: st.DrawFn) -> str:
    acquire = draw(st.sampled_from(sorted(TRY_FINALLY_KINDS_GENERATED)))
    header, release = TRY_FINALLY_KINDS_GENERATED[acquire]
    uses = _uses(draw, "res", "lend(res)")
    return _function(draw, header, "def", [f"res = {acquire}", *uses, f"res.{release}", "return 0"])


@settings(max_examples=30, deadline=None)
@given(try_finally_programs())
def test_generated_try_finally_variants_compile_are_idempotent_and_keep_order(code: str) -> None:
    fixed = fixed_text(run_rules(code, RULES))
    compile(fixed, "generated.py", "exec")
    assert "finally:" in fixed and "with " not in fixed
    assert _statement_calls(fixed) == _statement_calls(code)
    assert fixed_text(run_rules(fixed, RULES)) == fixed
