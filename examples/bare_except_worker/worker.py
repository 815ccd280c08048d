"""A queue worker that keeps itself alive with a bare `except:` (seed 001 #3, rule UL401).

The bare `except:` is meant to survive a bad job, but it also swallows the `CancelledError`
that `task.cancel()` throws in at shutdown: the worker carries on and never stops.

Run: `python worker.py`. Exit status 0: clean shutdown; 1: the worker ignored cancellation.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import NoReturn

JOBS = ("resize:1", "resize:oops", "resize:3")  # the second one raises ValueError
SHUTDOWN_GRACE_SECONDS = 1.0


async def resize(job: str) -> str:
    await asyncio.sleep(0.01)  # the real work would await I/O here
    return f"{int(job.removeprefix('resize:')) * 100}px"


async def take_and_run(queue: asyncio.Queue[str]) -> None:
    job = await queue.get()
    try:
        print(f"worker: {job} -> {await resize(job)}", flush=True)
    finally:
        queue.task_done()


async def worker(queue: asyncio.Queue[str]) -> None:
    """Run jobs forever; a job that fails must not kill the worker."""
    while True:
        try:
            await take_and_run(queue)
        except:  # keep the worker alive, whatever a job does
            print(f"worker: swallowed {sys.exc_info()[1]!r}, carrying on", flush=True)


def give_up(message: str) -> NoReturn:
    """Exit now, as the orchestrator's SIGKILL would after the grace period.

    Returning instead would hang: asyncio.run() cancels the leftover task and waits for it, forever.
    """
    print(message, flush=True)
    os._exit(1)


async def main() -> int:
    queue: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(worker(queue))
    for job in JOBS:
        queue.put_nowait(job)
    await queue.join()

    print("main: all jobs handled, shutting down", flush=True)
    task.cancel()
    stopped, _ = await asyncio.wait({task}, timeout=SHUTDOWN_GRACE_SECONDS)
    if not stopped:
        give_up(f"main: worker ignored cancellation (still running {SHUTDOWN_GRACE_SECONDS} s after task.cancel())")
    print("main: clean shutdown", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
