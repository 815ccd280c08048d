"""Django requests that check for a tag and create it race each other (rule UL301, the Django form).

`ensure_tag` asks `Tag.objects.filter(name=...).exists()` and creates the tag when the answer is
no. Four requests (threads, each with its own database connection, as Django gives them) ask
for the same new tag at once; a barrier lines them up between the check and the create, which
is what a busy server does by chance: they all see "no tag", they all create it, and all but
one crash on the unique name with `IntegrityError`. After `unleak apply` the function calls
`Tag.objects.get_or_create(...)`, which catches the conflict and returns the winner's row.

Run: `python tags.py` (a fresh SQLite file in a temporary directory each time).
Exit status 0: every request got the tag and there is one row; 1: a request crashed.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

import django
from django.conf import settings

REQUESTS = 4
LINE_UP_SECONDS = 5.0

folder = tempfile.TemporaryDirectory()
settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(Path(folder.name) / "app.db"), "OPTIONS": {"timeout": 10}}},
    INSTALLED_APPS=[],
    USE_TZ=True,
)
django.setup()

from django.db import connection, models  # noqa: E402  (the settings come first)

line_up = threading.Barrier(REQUESTS)


class Tag(models.Model):
    name = models.CharField(max_length=40, unique=True)
    color = models.CharField(max_length=10)

    class Meta:
        app_label = "tags"


def lined_up(color: str) -> str:
    line_up.wait(LINE_UP_SECONDS)  # every request has done its check by now
    return color


def ensure_tag(name: str) -> None:
    if not Tag.objects.filter(name=name).exists():
        Tag.objects.create(name=name, color=lined_up("red"))


def handle_request(crashes: dict[int, str], number: int) -> None:
    try:
        ensure_tag("python")
    except Exception as error:  # the request would fail with a 500 here
        crashes[number] = type(error).__name__
    finally:
        connection.close()  # this thread's connection


def main() -> int:
    with connection.schema_editor() as editor:
        editor.create_model(Tag)
    crashes: dict[int, str] = {}
    requests = [threading.Thread(target=handle_request, args=(crashes, n)) for n in range(1, REQUESTS + 1)]
    for request in requests:
        request.start()
    for request in requests:
        request.join()
    rows = Tag.objects.count()
    connection.close()
    for name in sorted(set(crashes.values())):
        print(f"{list(crashes.values()).count(name)} of {REQUESTS} requests crashed with {name}")
    if not crashes:
        print(f"all {REQUESTS} requests got the tag")
    print(f"tag rows: {rows}")
    return 1 if crashes or rows != 1 else 0


if __name__ == "__main__":
    status = main()
    folder.cleanup()
    sys.exit(status)
