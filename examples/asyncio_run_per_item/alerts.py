"""A recall-alert job shaped like seed 003 #3: a Celery task that calls `asyncio.run` per item.

The alert service limits how many alerts are in flight with an `asyncio.Semaphore`. The first
time the semaphore makes a sender wait, it binds itself to the running event loop; the next
`asyncio.run` starts a different loop, and the semaphore refuses to work there.
"""

import asyncio

TASKS = {}


def task(func):
    """Stand-in for `@celery_app.task`: registers the function; a worker calls it synchronously."""
    TASKS[func.__name__] = func
    return func


class AlertService:
    """Sends alerts, at most `limit` at a time."""

    def __init__(self, limit=2):
        self._in_flight = asyncio.Semaphore(limit)

    async def affected_users(self, agency):
        await asyncio.sleep(0)
        return [f"{agency}-user-{number}" for number in range(4)]

    async def send_alerts(self, users):
        return await asyncio.gather(*(self._send(user) for user in users))

    async def _send(self, user):
        async with self._in_flight:
            await asyncio.sleep(0.01)
            return f"alerted {user}"


SERVICE = AlertService()


@task
def check_all_agencies_for_recalls(agencies, *, dry_run=False):
    """Alert the users affected by each agency's new recalls; return how many were alerted."""
    sent = []
    for agency in agencies:
        users = asyncio.run(SERVICE.affected_users(agency))
        if not dry_run:
            sent.extend(asyncio.run(SERVICE.send_alerts(users)))
    return len(sent)
