"""Where the repositories of `unleak bulk` run: local processes, or a Dask `distributed` cluster.

Both run `bulk.run_repository` once per repository and hand each result to `on_done` as it
arrives; the results come back in the tasks' order, so the summary does not depend on the
scheduler. A task that dies (a killed worker, a lost process) becomes a `failed` result.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any

from unleak.errors import UserError
from unleak.workflows.bulk import RepositoryResult, Task, failed, run_repository

OnDone = Callable[[RepositoryResult], None]

# How long to wait for a scheduler named by --scheduler before giving up.
CONNECT_SECONDS = 30


def run_tasks(tasks: list[Task], jobs: int, scheduler: str | None, on_done: OnDone) -> list[RepositoryResult]:
    """Every task's result, in the tasks' order: on `scheduler` (a Dask address) or in `jobs` local processes."""
    if not tasks:
        return []
    if scheduler is None:
        return _in_local_processes(tasks, jobs, on_done)
    return _on_dask(tasks, scheduler, on_done)


def _in_local_processes(tasks: list[Task], jobs: int, on_done: OnDone) -> list[RepositoryResult]:
    results: dict[int, RepositoryResult] = {}
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=_process_context()) as pool:
        futures: dict[Future[RepositoryResult], int] = {
            pool.submit(run_repository, task): index for index, task in enumerate(tasks)
        }
        for future in as_completed(futures):
            index = futures[future]
            results[index] = _result_of(future, tasks[index])
            on_done(results[index])
    return [results[index] for index in range(len(tasks))]


def _process_context() -> multiprocessing.context.BaseContext:
    """Not a plain fork (the progress bar's thread runs in this process): a fork server that has
    imported the task's code once, where there is one, else fresh spawned processes."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([run_repository.__module__])
    return context


def _on_dask(tasks: list[Task], address: str, on_done: OnDone) -> list[RepositoryResult]:
    distributed = _import_distributed()
    try:
        client = distributed.Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise UserError("--scheduler", f"cannot connect to {address}: {error}") from None
    results: dict[int, RepositoryResult] = {}
    with client:
        # pure=False: each run is new work, never a result Dask remembers from an earlier run.
        futures = client.map(run_repository, tasks, pure=False, retries=0)
        index_of = {future.key: index for index, future in enumerate(futures)}
        for future in distributed.as_completed(futures, loop=client.loop):
            index = index_of[future.key]
            results[index] = _result_of(future, tasks[index])
            on_done(results[index])
    return [results[index] for index in range(len(tasks))]


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UserError("--scheduler", "needs Dask's `distributed` package: pip install 'unleak[dask]'") from None
    return distributed


def _result_of(future: Any, task: Task) -> RepositoryResult:
    """The task's result, or `failed` when the process or worker running it was lost."""
    try:
        result: RepositoryResult = future.result()
        return result
    except Exception as error:
        return failed(task, f"internal error: the worker failed: {type(error).__name__}: {error}")
