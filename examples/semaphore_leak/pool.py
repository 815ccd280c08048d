"""A worker pool whose semaphore leaks a slot each time a job raises (seed 000 #3, rule UL201).

Each job takes one of the pool's two slots with `await slots.acquire()` and gives it back with
`slots.release()` -- but only when the job succeeds: a job that raises skips the release. After
two failing jobs both slots are gone and the next job waits for a slot forever. `main()` gives
each job 1 s (`asyncio.wait_for`) and exits with status 1 when one never got a slot.

Run: `python pool.py`. Exit status 0: every job ran; 1: a job never got a slot.
"""

from __future__ import annotations

import asyncio
import sys

SLOTS = 2
JOBS = ("fail:1", "fail:2", "ok:3", "ok:4")  # jobs 1 and 2 raise ValueError
SLOT_WAIT_SECONDS = 1.0

slots = asyncio.Semaphore(SLOTS)


async def run_job(job: str) -> str:
    await slots.acquire()
    kind, number = job.split(":")
    await asyncio.sleep(0.01)  # the real work would await I/O here
    if kind == "fail":
        raise ValueError(f"job {number} failed")
    slots.release()
    return f"job {number} done"


async def main() -> int:
    for number, job in enumerate(JOBS, start=1):
        try:
            print(await asyncio.wait_for(run_job(job), timeout=SLOT_WAIT_SECONDS), flush=True)
        except ValueError as error:
            print(f"{error}, carrying on", flush=True)
        except asyncio.TimeoutError:
            print(f"job {number} never got a slot ({SLOT_WAIT_SECONDS} s): the pool leaked its slots", flush=True)
            return 1
    print("all jobs handled", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
