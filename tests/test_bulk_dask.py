"""`unleak bulk --scheduler`: one task per repository on a real Dask `distributed.LocalCluster`
with 2 worker processes (processes=True), and the same results as the default local processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import LocalCluster

from tests.test_bulk import (
    BARE,
    CLEAN,
    FIXED,
    UNSAFE_FIX,
    git,
    in_tmp,
    make_repository,
    unleak,
    url_of,
)
from unleak.workflows import scheduling

__all__ = ["in_tmp"]  # the autouse fixture: each test in its own folder, with its own git identity


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _fleet() -> list[str]:
    """Repositories of every kind: changed, clean, failed; local checkouts and URLs."""
    make_repository("service", {"app.py": BARE, "config.py": UNSAFE_FIX, "pkg/mod.py": "x = 1\n" + BARE})
    make_repository("tidy", {"app.py": CLEAN})
    make_repository("ignores", {"app.py": BARE, "pyproject.toml": '[tool.unleak]\nignore = ["UL401"]\n'})
    Path("plain-folder").mkdir()
    return ["service", url_of("tidy"), url_of("ignores"), "plain-folder", url_of("service")]


def _run(folder: str, *flags: str) -> tuple[int, dict, dict[str, bytes]]:
    """Exit code, the report without timings, and the patches written, of one bulk run."""
    result = unleak(*flags, "--patch-dir", folder, "--report", f"{folder}.json")
    report = json.loads(Path(f"{folder}.json").read_text())
    for row in report["repositories"]:
        del row["seconds"]
    patches = {path.name: path.read_bytes() for path in Path(folder).iterdir()}
    return result.exit_code, report, patches


def test_dask_and_local_processes_give_identical_results(scheduler: str) -> None:
    fleet = _fleet()

    local = _run("local", *fleet)
    on_dask = _run("dask", *fleet, "--scheduler", scheduler)

    assert on_dask == local
    exit_code, report, patches = on_dask
    assert exit_code == 2  # plain-folder failed, and the others went on
    assert [row["status"] for row in report["repositories"]] == ["changed", "clean", "clean", "failed", "changed"]
    assert sorted(patches) == ["service-2.patch", "service.patch"]
    assert patches["service.patch"] == patches["service-2.patch"]


def test_a_worker_with_several_threads_gives_the_same_results() -> None:
    fleet = _fleet()
    with LocalCluster(n_workers=1, threads_per_worker=3, processes=False, dashboard_address=":0") as threaded:
        on_threads = _run("threads", *fleet, "--scheduler", threaded.scheduler_address)
    assert on_threads == _run("local", *fleet)


def test_dask_workers_clone_commit_and_push_the_branch(scheduler: str) -> None:
    checkout = make_repository("service", {"app.py": BARE})

    result = unleak(url_of("service"), "--branch", "unleak/fixes", "--push", "--scheduler", scheduler)

    assert result.exit_code == 0, result.output
    assert git(Path("service.git").absolute(), "show", "unleak/fixes:app.py") + "\n" == FIXED
    assert git(checkout, "branch", "--list") == "* main", "the user's checkout is not involved"


def test_an_unreachable_scheduler_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduling, "CONNECT_SECONDS", 2)
    make_repository("service", {"app.py": BARE})
    result = unleak("service", "--check", "--scheduler", "tcp://127.0.0.1:9")
    assert result.exit_code == 2
    assert "cannot connect to tcp://127.0.0.1:9" in result.output
