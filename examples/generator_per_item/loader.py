"""A document loader whose `lazy_load()` yields one page per `asyncio.run` (issue 14).

Each page is fetched in parts, at most two requests in flight, through one `asyncio.Semaphore`.
The first time the semaphore makes a request wait, it binds itself to the running loop; the next
page runs on a new loop, and the semaphore raises "is bound to a different event loop".
"""

import asyncio


class PageLoader:
    def __init__(self, urls):
        self.urls = urls
        self.in_flight = asyncio.Semaphore(2)

    async def _fetch_part(self, url, part):
        async with self.in_flight:
            await asyncio.sleep(0.01)
            return f"{url}#{part}"

    async def _aload(self, url):
        parts = await asyncio.gather(*(self._fetch_part(url, part) for part in range(3)))
        return " ".join(parts)

    def lazy_load(self):
        """Yield one page per URL, as the caller iterates."""
        for url in self.urls:
            yield asyncio.run(self._aload(url))
