"""The results cache: a cached run prints what an uncached one prints, and is never stale.

Each test runs the real `unleak` command in a fresh project folder (the current directory).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from unleak.cli import app
from unleak.engine import pipeline
from unleak.engine.cache import CACHE_FOLDER

BARE = "try:\n    risky()\nexcept:\n    handle()\n"
MODELS = """
    from sqlalchemy import Column, Integer, String
    from sqlalchemy.orm import declarative_base

    Base = declarative_base()


    class Tenant(Base):
        __tablename__ = "tenants"
        id = Column(Integer, primary_key=True)
        slug = Column(String, unique=True)
"""
SEED = """
    from app.models import Tenant


    def seed(db):
        if not db.query(Tenant).filter(Tenant.slug == "acme").first():
            db.add(Tenant(slug="acme"))
            db.commit()
"""


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("pyproject.toml").write_text("[tool.unleak]\n")
    write("app/worker.py", BARE)
    write("app/models.py", MODELS)
    write("app/seed.py", SEED)
    return tmp_path


def write(path: str, text: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(text).lstrip("\n"))
    return target


def unleak(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def entries() -> list[Path]:
    return sorted((Path(CACHE_FOLDER) / "entries").glob("*"))


@pytest.fixture
def processed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the pipeline really processes (a cache hit does not)."""
    seen: list[str] = []
    real_process = pipeline.process

    def counting(job: pipeline.Job) -> pipeline.FileResult:
        seen.append(job.display)
        return real_process(job)

    monkeypatch.setattr("unleak.engine.execute.process", counting)
    return seen


@pytest.mark.parametrize(
    "command",
    [("check",), ("check", "--format", "json"), ("check", "--format", "sarif"), ("diff",), ("check", "--unsafe", "-v")],
)
def test_a_cached_run_prints_byte_for_byte_what_an_uncached_run_prints(command: tuple[str, ...], processed: list[str]) -> None:
    uncached = unleak(*command, ".", "--jobs", "1", "--no-cache")
    assert not Path(CACHE_FOLDER).exists(), "--no-cache writes nothing"
    first = unleak(*command, ".", "--jobs", "1")
    processed.clear()
    second = unleak(*command, ".", "--jobs", "1")
    assert processed == [], "every file came from the cache"
    for run in (first, second):
        assert (run.exit_code, run.stdout, run.stderr) == (uncached.exit_code, uncached.stdout, uncached.stderr)


def test_the_cache_has_its_own_gitignore() -> None:
    unleak("check", ".")
    assert Path(CACHE_FOLDER, ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_changed_file_is_processed_again(processed: list[str]) -> None:
    unleak("check", ".", "--jobs", "1")
    write("app/worker.py", BARE.replace("handle", "recover"))
    processed.clear()
    result = unleak("check", ".", "--jobs", "1")
    assert processed == ["app/worker.py"]
    assert "app/worker.py:3:1: UL401" in result.stdout


def test_an_answer_of_the_project_index_that_changed_invalidates_the_entry() -> None:
    assert "[*]" in unleak("check", ".").stdout
    write("app/models.py", MODELS.replace("unique=True", "index=True"))
    result = unleak("check", ".")
    assert "no unique key of Tenant (app/models.py) covers slug" in result.stdout
    assert result.stdout == unleak("check", ".", "--no-cache").stdout


def test_a_corrupted_entry_is_a_miss(processed: list[str]) -> None:
    expected = unleak("check", ".", "--jobs", "1")
    for entry in entries():
        entry.write_bytes(entry.read_bytes()[:20])
    processed.clear()
    again = unleak("check", ".", "--jobs", "1")
    assert sorted(processed) == ["app/seed.py", "app/worker.py"]
    assert (again.exit_code, again.stdout) == (expected.exit_code, expected.stdout)


def test_apply_then_apply_again_reads_from_the_cache_what_the_fixed_point_settles(processed: list[str]) -> None:
    unleak("apply", ".", "--jobs", "1")
    fixed = Path("app/worker.py").read_text()
    processed.clear()
    unleak("apply", ".", "--jobs", "1")
    # seed.py's fix adds `except IntegrityError:` and a commit inside `try`: that triggers UL206,
    # which the first run did not run on it, so its settled result was not stored ahead.
    assert processed == ["app/seed.py"]
    stored = entries()
    processed.clear()
    unleak("apply", ".", "--jobs", "1")
    assert processed == []
    assert entries() == stored, "a run that reads everything from the cache stores nothing new"
    assert Path("app/worker.py").read_text() == fixed


def test_jobs_1_and_jobs_2_fill_the_same_cache() -> None:
    serial = unleak("diff", ".", "--jobs", "1")
    stored = [entry.name for entry in entries()]
    unleak("clean")
    parallel = unleak("diff", ".", "--jobs", "2")
    assert serial.stdout == parallel.stdout
    assert [entry.name for entry in entries()] == stored


def test_clean_removes_the_cache() -> None:
    unleak("check", ".")
    result = unleak("clean", ".")
    assert result.exit_code == 0
    assert not Path(CACHE_FOLDER).exists()
    assert f"removed {CACHE_FOLDER}" in result.stderr


def test_a_file_outside_any_project_is_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    monkeypatch.chdir(loose)
    write("script.py", BARE)
    monkeypatch.setattr("unleak.engine.cache.project_root", lambda folder: None)
    unleak("check", "script.py")
    assert not Path(CACHE_FOLDER).exists()


def test_a_re_run_takes_the_byte_prefilter_s_answers_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from unleak.engine import cache

    searched: list[bytes] = []
    real = cache.triggered_rules
    monkeypatch.setattr(cache, "triggered_rules", lambda raw, rules, settings: searched.append(raw) or real(raw, rules, settings))
    write("app/plain.py", "x = 1\n")
    first = unleak("check", ".", "--jobs", "1")
    assert len(searched) == 4, "every file searched once"
    searched.clear()
    assert unleak("check", ".", "--jobs", "1").stdout == first.stdout
    assert searched == []
    write("app/plain.py", "try:\n    x = 1\nexcept:\n    pass\n")
    assert "app/plain.py:3:1: UL401" in unleak("check", ".", "--jobs", "1").stdout
    assert searched == [Path("app/plain.py").read_bytes()], "only the changed file is searched again"


def test_a_corrupted_trigger_memo_is_a_miss(processed: list[str]) -> None:
    expected = unleak("check", ".", "--jobs", "1")
    Path(CACHE_FOLDER, "triggers").write_bytes(b"\x80\x05garbage")
    processed.clear()
    again = unleak("check", ".", "--jobs", "1")
    assert processed == []
    assert (again.exit_code, again.stdout) == (expected.exit_code, expected.stdout)


def test_an_unchanged_project_s_answers_hold_without_asking_the_index_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from unleak.knowledge.project import ProjectView

    expected = unleak("check", ".", "--jobs", "1")
    assert "[*]" in expected.stdout, "seed.py's fix relied on the index (Tenant.slug is unique)"
    asked: list[object] = []
    real = ProjectView.still_answers
    monkeypatch.setattr(ProjectView, "still_answers", lambda self, used: asked.append(used) or real(self, used))
    assert unleak("check", ".", "--jobs", "1").stdout == expected.stdout
    assert asked == []
    write("app/unrelated.py", "x = 1\n")  # the project changed: the entry's answers are asked again
    assert unleak("check", ".", "--jobs", "1").stdout == expected.stdout
    assert len(asked) == 1
