"""A price import that logs a bad row without its traceback (seed 003, lessons; rule UL402).

`logger.error(f"... {e}")` keeps only the exception's message: the log says what went wrong
but not where. `logger.exception(...)` also logs the traceback.

Run: `python prices.py`. It always exits 0; the log goes to stderr.
"""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger(__name__)

ROWS = (("coffee", "2.50"), ("tea", "1,80"), ("cake", "3.20"))  # "1,80" has a comma: a bad row


def parse_cents(price: str) -> int:
    euros, cents = price.split(".")
    return int(euros) * 100 + int(cents)


def import_prices(rows: tuple[tuple[str, str], ...]) -> dict[str, int]:
    prices = {}
    for name, price in rows:
        try:
            prices[name] = parse_cents(price)
        except ValueError as e:
            logger.error(f"skipping {name}: {e}")
    return prices


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    prices = import_prices(ROWS)
    print(f"imported {len(prices)} of {len(ROWS)} prices: {prices}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
