"""Run 20 rounds of the optimizer, then count the event loops it created and left open.

A policy records every loop asyncio creates, so each one's `is_closed()` can be checked at the
end. Exit status 1 when any is left open.
"""

import asyncio
import sys

from optimizer import optimize

CREATED = []


class RecordingPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self):
        loop = super().new_event_loop()
        CREATED.append(loop)
        return loop


def main():
    asyncio.set_event_loop_policy(RecordingPolicy())
    best = optimize(20)
    left_open = [loop for loop in CREATED if not loop.is_closed()]
    print(f"best {best}: {len(CREATED)} event loops created, {len(left_open)} left open")
    return 1 if left_open else 0


if __name__ == "__main__":
    sys.exit(main())
