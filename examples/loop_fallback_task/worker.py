"""Run the task 50 times, each on a fresh worker thread, then count the event loops left open.

Every loop asyncio creates goes through the event loop policy, so a policy that records them
lets us check each one's `is_closed()` at the end (holding them also keeps the garbage collector
from closing them for us, as it eventually would). Exit status 1 when any is left open.
"""

import asyncio
import sys
import threading

from tasks import MakeThumbnail

CREATED = []
JOBS = 50


class RecordingPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self):
        loop = super().new_event_loop()
        CREATED.append(loop)
        return loop


def main():
    asyncio.set_event_loop_policy(RecordingPolicy())
    results = []
    for image_id in range(JOBS):
        worker = threading.Thread(target=lambda i=image_id: results.append(MakeThumbnail().run(i)))
        worker.start()
        worker.join()
    assert sorted(results) == sorted(f"thumbnail-{i}.png" for i in range(JOBS)), results
    left_open = [loop for loop in CREATED if not loop.is_closed()]
    print(f"{len(results)} tasks done, {len(left_open)} event loops left open")
    return 1 if left_open else 0


if __name__ == "__main__":
    sys.exit(main())
