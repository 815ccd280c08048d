"""Two ways a synchronous service runs coroutines on its own event loop (seeds 000 #2, 001 #1).

Both close the loop only when the coroutine succeeds: every failure leaves a loop (its selector
and sockets) open, and `stream_answer` also leaves the dead loop installed on its worker thread.
"""

import asyncio
import threading


def run_coro_sync(coro, timeout=5):
    """Run `coro` to completion on a fresh thread with its own loop; re-raise what it raised."""
    result = [None]
    exception = [None]

    def run_in_thread():
        try:
            new_loop = asyncio.new_event_loop()
            asyncio.set_event_loop(new_loop)
            result[0] = new_loop.run_until_complete(coro)
            new_loop.close()
        except Exception as e:
            exception[0] = e

    thread = threading.Thread(target=run_in_thread)
    thread.start()
    thread.join(timeout)
    if exception[0] is not None:
        raise exception[0]
    return result[0]


def stream_answer(agent, question):
    """Ask the agent, then store its answer: two coroutines on one loop (a streaming view's worker)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    answer = loop.run_until_complete(agent.ask(question))
    loop.run_until_complete(agent.save(answer))
    loop.close()
    return answer
