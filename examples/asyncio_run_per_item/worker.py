"""Run the task the way a Celery worker does: look it up by name and call it synchronously."""

import sys

from alerts import TASKS


def main():
    try:
        alerted = TASKS["check_all_agencies_for_recalls"](["fda", "usda", "nhtsa"])
    except RuntimeError as error:
        print(f"task failed: RuntimeError: {error}")
        return 1
    print(f"task done: alerted {alerted} users")
    return 0


if __name__ == "__main__":
    sys.exit(main())
