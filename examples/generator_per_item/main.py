"""Iterate the loader over three URLs and print each page it yields."""

import sys

from loader import PageLoader


def main():
    pages = PageLoader(["/a", "/b", "/c"]).lazy_load()
    for page in pages:
        print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
