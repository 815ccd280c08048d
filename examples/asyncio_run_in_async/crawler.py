"""A crawler whose coroutine calls `asyncio.run()` (seeds 000 and 003 #3).

Run it: it raises `RuntimeError: asyncio.run() cannot be called from a running event loop`.
Run `unleak apply .` and run it again: it prints the crawl report.
"""

import asyncio

SITE = {"/": "home", "/about": "about us", "/jobs": "we are hiring"}


async def fetch(path: str) -> str:
    await asyncio.sleep(0.01)  # stands in for the network
    return SITE[path]


async def crawl(paths: list[str]) -> dict[str, object]:
    pages = []
    for path in paths:
        pages.append(asyncio.run(fetch(path)))  # runs inside crawl()'s event loop
    title = asyncio.run(fetch("/")).title()  # a method call on the result
    return {"title": title, "pages": pages}


def main() -> None:
    report = asyncio.run(crawl(sorted(SITE)))  # correct: the program's one event loop
    print(f"title={report['title']} pages={report['pages']}")


if __name__ == "__main__":
    main()
