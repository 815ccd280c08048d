"""Seed 000 #3: browser contexts taken from a manager and given back by hand.

`scrape` returns its context to the manager only when the page loads; a page that fails leaves
a browser context running. The launcher here is a stand-in that counts live contexts, so the leak
is visible: before `unleak apply` the program ends with contexts still open and exits 1; after it
(`async with manager.browser_context(...)`), none are left and it exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator


class BrowserContext:
    def __init__(self, manager: BrowserManager) -> None:
        self.manager = manager

    def open(self, url: str) -> str:
        if "broken" in url:
            raise ConnectionError(f"cannot load {url}")
        return f"<html>{url}</html>"


class BrowserManager:
    """Hands out browser contexts; `live` counts the ones not given back."""

    def __init__(self) -> None:
        self.live = 0

    async def get_browser(self, headless: bool) -> BrowserContext:
        self.live += 1
        return BrowserContext(self)

    async def cleanup(self, context: BrowserContext) -> None:
        self.live -= 1

    @contextlib.asynccontextmanager
    async def browser_context(self, headless: bool) -> AsyncIterator[BrowserContext]:
        context = await self.get_browser(headless)
        try:
            yield context
        finally:
            await self.cleanup(context)


async def scrape(manager: BrowserManager, url: str) -> str:
    ctx = await manager.get_browser(headless=True)
    page = ctx.open(url)
    await manager.cleanup(ctx)
    return page


async def main() -> int:
    manager = BrowserManager()
    urls = ["https://a.example/", "https://broken.example/", "https://b.example/", "https://broken.example/x"]
    for url in urls:
        try:
            await scrape(manager, url)
        except ConnectionError as error:
            print(f"failed: {error}")
    print(f"{manager.live} browser contexts left open")
    return 1 if manager.live else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
