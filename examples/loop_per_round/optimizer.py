"""An optimizer-style loop that scores each round's candidates concurrently (issue 14).

Every round creates a fresh event loop, installs it, and never closes it: one leaked loop (its
selector and self-pipe: three file descriptors) per round.
"""

import asyncio


async def score(candidate):
    await asyncio.sleep(0)
    return -((candidate - 0.3) ** 2)


async def score_round(round_number, best):
    candidates = [best or 0.0, round_number / 10]
    scores = await asyncio.gather(*map(score, candidates))
    return max(zip(scores, candidates))[1]


def optimize(rounds):
    """Tune one parameter over `rounds` rounds; return the best value found."""
    best = None
    for round_number in range(rounds):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        best = loop.run_until_complete(score_round(round_number, best))
    return best
