"""Call both runners with coroutines that fail, then count the event loops left open.

Every loop asyncio creates goes through the event loop policy, so a policy that records them
lets us check each one's `is_closed()` at the end. Exit status 1 when any is left open.
"""

import asyncio
import contextlib
import sys
from concurrent.futures import ThreadPoolExecutor

import runners

CREATED = []


class RecordingPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self):
        loop = super().new_event_loop()
        CREATED.append(loop)
        return loop


async def flaky_upstream():
    await asyncio.sleep(0)
    raise ValueError("upstream timed out")


async def answer():
    await asyncio.sleep(0)
    return 42


class Agent:
    def __init__(self, fail):
        self.fail = fail
        self.saved = []

    async def ask(self, question):
        await asyncio.sleep(0)
        if self.fail:
            raise ValueError("model unavailable")
        return f"answer to {question}"

    async def save(self, text):
        self.saved.append(text)


def main():
    asyncio.set_event_loop_policy(RecordingPolicy())
    for _ in range(3):
        with contextlib.suppress(ValueError):
            runners.run_coro_sync(flaky_upstream())
    with ThreadPoolExecutor(max_workers=1) as streaming_worker:
        for _ in range(3):
            with contextlib.suppress(ValueError):
                streaming_worker.submit(runners.stream_answer, Agent(fail=True), "status?").result(timeout=5)
        agent = Agent(fail=False)
        streamed = streaming_worker.submit(runners.stream_answer, agent, "status?").result(timeout=5)
    assert runners.run_coro_sync(answer()) == 42, "the success path must still return the result"
    assert streamed == "answer to status?" and agent.saved == [streamed]
    left_open = [loop for loop in CREATED if not loop.is_closed()]
    print(f"{len(CREATED)} event loops created, {len(left_open)} left open")
    return 1 if left_open else 0


if __name__ == "__main__":
    sys.exit(main())
