"""A Celery-style base task that runs a coroutine from a synchronous worker (issue 14).

`run_async` is the get-or-create fallback found in Celery base tasks, circuit-breaker wrappers
and embedding helpers: on a worker thread `get_event_loop()` raises, so every thread creates a
loop, installs it, and never closes it.
"""

import asyncio


class AsyncTask:
    """Base class of tasks whose work is a coroutine; the worker calls `run` on one of its threads."""

    def run(self, *args):
        return self.run_async(self.work(*args))

    def run_async(self, coro):
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)


class MakeThumbnail(AsyncTask):
    async def work(self, image_id):
        await asyncio.sleep(0)
        return f"thumbnail-{image_id}.png"
