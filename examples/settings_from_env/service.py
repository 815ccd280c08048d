"""A service configured from the environment whose `from_env()` forgot two fields (seed 004 #1).

The operator's settings for this deployment are in DEPLOYMENT (normally the container's
environment). `ServiceConfig.from_env()` reads only SERVICE_REQUEST_TIMEOUT: retries and verbose
logging silently keep their defaults, whatever the environment says. The program prints the
configuration it ends up with and exits with status 1 if a setting was ignored.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

# What the operator set, and the value the service must then run with.
DEPLOYMENT = {
    "SERVICE_REQUEST_TIMEOUT": ("2.5", 2.5),
    "SERVICE_MAX_RETRY_ATTEMPTS": ("0", 0),  # retries off: the upstream is not idempotent
    "SERVICE_VERBOSE": ("false", False),  # "false" must mean False, not bool("false")
}


@dataclass(frozen=True)
class ServiceConfig:
    request_timeout: float = 30.0
    max_retry_attempts: int = 3
    verbose: bool = True

    @classmethod
    def from_env(cls) -> ServiceConfig:
        return cls(
            request_timeout=float(os.getenv("SERVICE_REQUEST_TIMEOUT", "30.0")),
        )


def ignored_settings(config: ServiceConfig) -> list[str]:
    ignored = []
    for variable, (text, wanted) in DEPLOYMENT.items():
        actual = getattr(config, variable.removeprefix("SERVICE_").lower())
        if actual != wanted:
            ignored.append(f"ignored: {variable}={text} (the service runs with {actual!r})")
    return ignored


def main() -> int:
    os.environ.update({variable: text for variable, (text, _) in DEPLOYMENT.items()})
    config = ServiceConfig.from_env()
    print(f"config: {config}")
    ignored = ignored_settings(config)
    for line in ignored:
        print(line)
    if not ignored:
        print(f"all {len(DEPLOYMENT)} settings from the environment are in effect")
    return 1 if ignored else 0


if __name__ == "__main__":
    sys.exit(main())
