"""UL501 from-env-missing-field: cases beyond the embedded examples."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul501_from_env_missing_field import FromEnvMissingField

RULES = (FromEnvMissingField,)


def fixed(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code).lstrip("\n"), RULES, unsafe=True))


def messages(code: str) -> list[str]:
    result = run_rules(textwrap.dedent(code).lstrip("\n"), RULES, fixing=False)
    assert result.error is None, result.error
    return [finding.message for finding in result.findings]


def test_attrs_class_path_bool_float_and_negative_defaults_in_an_empty_multiline_call() -> None:
    before = '''
        import os
        from pathlib import Path as P

        import attrs

        @attrs.define
        class Settings:
            root: P = P("/srv/app")
            ratio: float = 2
            verbose: bool = True
            retries: int = -1

            @classmethod
            def from_env(cls) -> "Settings":
                os.getenv("APP_TOKEN")
                return cls(
                    # nothing yet
                )
        '''
    assert fixed(before) == textwrap.dedent(
        '''
        import os
        from pathlib import Path as P

        import attrs

        @attrs.define
        class Settings:
            root: P = P("/srv/app")
            ratio: float = 2
            verbose: bool = True
            retries: int = -1

            @classmethod
            def from_env(cls) -> "Settings":
                os.getenv("APP_TOKEN")
                return cls(
                    # nothing yet
                    root=P(os.getenv("APP_ROOT", "/srv/app")),
                    ratio=float(os.getenv("APP_RATIO", "2")),
                    verbose=os.getenv("APP_VERBOSE", "true").lower() in ("1", "true", "yes", "on"),
                    retries=int(os.getenv("APP_RETRIES", "-1"))
                )
        '''
    ).lstrip("\n")


def test_hand_written_init_single_line_call_keeps_its_trailing_comma_and_quotes() -> None:
    before = """
        from os import getenv

        class Client:
            host: str
            port: int
            debug: bool

            def __init__(self, host: str, port: int = 80, *, debug: bool = False) -> None:
                self.host, self.port, self.debug = host, port, debug

            @classmethod
            def from_env(cls) -> "Client":
                return cls(host=getenv('SVC_HOST', 'localhost'),)
        """
    assert fixed(before) == textwrap.dedent(
        """
        from os import getenv

        class Client:
            host: str
            port: int
            debug: bool

            def __init__(self, host: str, port: int = 80, *, debug: bool = False) -> None:
                self.host, self.port, self.debug = host, port, debug

            @classmethod
            def from_env(cls) -> "Client":
                return cls(host=getenv('SVC_HOST', 'localhost'), port=int(getenv('SVC_PORT', '80')), debug=getenv('SVC_DEBUG', 'false').lower() in ('1', 'true', 'yes', 'on'),)
        """
    ).lstrip("\n")


def test_named_tuple_comment_after_the_last_argument_stays_on_its_line() -> None:
    before = """
        import os
        from typing import NamedTuple

        class Endpoint(NamedTuple):
            host: str
            port: int = 80

            @classmethod
            def from_env(cls) -> "Endpoint":
                return cls(
                    host=os.environ["EP_HOST"]  # required
                )
        """
    assert fixed(before) == textwrap.dedent(
        """
        import os
        from typing import NamedTuple

        class Endpoint(NamedTuple):
            host: str
            port: int = 80

            @classmethod
            def from_env(cls) -> "Endpoint":
                return cls(
                    host=os.environ["EP_HOST"],  # required
                    port=int(os.environ.get("EP_PORT", "80"))
                )
        """
    ).lstrip("\n")


def test_pydantic_field_defaults_and_a_hanging_indent() -> None:
    before = """
        import os
        import pydantic

        class Settings(pydantic.BaseModel):
            host: str = pydantic.Field("localhost")
            port: int = pydantic.Field(default=8080, description="listen port")
            key: str = pydantic.Field(..., description="API key")

            @classmethod
            def from_env(cls) -> "Settings":
                settings = cls(key=os.environ["API_KEY"],
                               port=int(os.getenv("API_PORT", "8080")))
                return settings
        """
    assert fixed(before) == textwrap.dedent(
        """
        import os
        import pydantic

        class Settings(pydantic.BaseModel):
            host: str = pydantic.Field("localhost")
            port: int = pydantic.Field(default=8080, description="listen port")
            key: str = pydantic.Field(..., description="API key")

            @classmethod
            def from_env(cls) -> "Settings":
                settings = cls(key=os.environ["API_KEY"],
                               port=int(os.getenv("API_PORT", "8080")),
                               host=os.getenv("API_HOST", "localhost"))
                return settings
        """
    ).lstrip("\n")


def test_classic_attrs_with_auto_attribs_and_a_qualified_dataclass_decorator() -> None:
    for decorator in ("@attr.s(auto_attribs=True)", "@dataclasses.dataclass(frozen=True)"):
        before = f"""
            import os, attr, dataclasses

            {decorator}
            class Settings:
                host: str
                port: int = 80

                @classmethod
                def from_env(cls):
                    return cls(host=os.environ["APP_HOST"])
            """
        # the method only reads `os.environ[...]`: the lookup with a default is `os.environ.get`
        assert 'return cls(host=os.environ["APP_HOST"], port=int(os.environ.get("APP_PORT", "80")))' in fixed(before)


def test_some_fields_need_a_hand_written_lookup() -> None:
    before = """
        import os
        from dataclasses import dataclass, field

        @dataclass
        class Settings:
            host: str
            port: int = 80
            tags: list[str] = field(default_factory=list)
            timeout: float | None = None

            @classmethod
            def from_env(cls):
                return cls(host=os.environ["APP_HOST"])
        """
    assert messages(before) == [
        "`Settings.from_env()` builds `cls(...)` without `port`, `tags`, `timeout`: no environment variable can "
        "change these fields, the class default always wins; add the lookup of `tags`, `timeout` by hand"
    ]
    once = fixed(before)
    assert 'return cls(host=os.environ["APP_HOST"], port=int(os.environ.get("APP_PORT", "80")))' in once
    assert messages(once) == [
        "`Settings.from_env()` builds `cls(...)` without `tags`, `timeout`: no environment variable can change "
        "these fields, the class default always wins; add the lookup by hand"
    ]
    assert run_rules(once, RULES, unsafe=True).fixed is None


def test_a_missing_required_field_is_reported_without_a_fix() -> None:
    before = """
        import os
        from dataclasses import dataclass, field

        @dataclass
        class Settings:
            host: str
            token: str = field(repr=False)
            port: int = 80

            @classmethod
            def from_env(cls):
                return cls(host=os.environ["APP_HOST"])
        """
    assert messages(before) == [
        "`Settings.from_env()` builds `cls(...)` without the required field(s) `token`: it fails with TypeError; "
        "pass them, read from the environment"
    ]
    result = run_rules(textwrap.dedent(before), RULES, unsafe=True)
    assert result.fixed is None and not result.findings[0].fixable


def test_the_fix_waits_for_unsafe() -> None:
    code = textwrap.dedent(
        """
        import os
        from dataclasses import dataclass

        @dataclass
        class Settings:
            port: int = 80
            debug: bool = False

            @classmethod
            def from_env(cls):
                return cls(port=int(os.getenv("APP_PORT", "80")))
        """
    )
    result = run_rules(code, RULES)
    assert result.fixed is None
    assert [(f.rule, f.fixable, f.safety, f.applicable) for f in result.findings] == [("UL501", True, "unsafe", False)]
    assert 'debug=os.getenv("APP_DEBUG", "false").lower() in ("1", "true", "yes", "on")' in fixed(code)


@pytest.mark.parametrize(
    ("reads", "expected"),
    [
        # a variable named after its keyword gives the prefix, even when the others share more
        ('max_conns=int(os.getenv("SVC_MAX_CONNS", "1")), max_idle=int(os.getenv("SVC_MAX_IDLE", "1"))', "SVC_LEVEL"),
        # otherwise the common start of the variables, up to its last "_"
        ('max_conns=int(os.getenv("MY_APP_CONNS", "1")), max_idle=int(os.getenv("MY_APP_IDLE", "1"))', "MY_APP_LEVEL"),
        # a single unrelated variable: up to its first "_"
        ('max_conns=int(os.getenv("APP_POOL_SIZE", "1")), max_idle=1', "APP_LEVEL"),
        # nothing shared, or no literal names: no prefix
        ('max_conns=int(os.getenv("CONNS", "1")), max_idle=int(os.getenv("IDLE", "1"))', "LEVEL"),
        ('max_conns=int(os.getenv(NAME, "1")), max_idle=1', "LEVEL"),
    ],
)
def test_the_prefix_comes_from_the_variables_the_method_reads(reads: str, expected: str) -> None:
    code = f"""
        import os
        from dataclasses import dataclass

        @dataclass
        class Pool:
            max_conns: int = 1
            max_idle: int = 1
            level: str = "INFO"

            @classmethod
            def from_env(cls):
                return cls({reads})
        """
    assert f'level=os.getenv("{expected}", "INFO")' in fixed(code)


def test_only_the_fields_declared_for_the_constructor_count() -> None:
    assert not messages(
        """
        import os
        import typing
        from dataclasses import dataclass, field, InitVar
        from pydantic import BaseModel, Field, ConfigDict

        @dataclass
        class Settings:
            host: str
            LIMIT: typing.ClassVar[int] = 3
            NAMES: "ClassVar[tuple[str, ...]]" = ()
            cache: dict = field(default_factory=dict, init=False)
            _seen: int = 0

            @classmethod
            def from_env(cls):
                return cls(host=os.environ["APP_HOST"])

        class Model(BaseModel):
            model_config = ConfigDict(populate_by_name=True)
            api_key: str = Field(alias="key")
            host: str

            @classmethod
            def from_env(cls):
                return cls(key=os.environ["APP_KEY"], host=os.environ["APP_HOST"])
        """
    )


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(
            """
            import os
            from pydantic_settings import BaseSettings

            class Settings(BaseSettings):
                host: str
                port: int = 80

                @classmethod
                def from_env(cls):
                    return cls(host=os.environ["APP_HOST"])
            """,
            id="pydantic-settings-reads-the-rest-itself",
        ),
        pytest.param(
            """
            import os
            from dataclasses import dataclass

            @dataclass
            class Settings:
                host: str
                port: int = 80

                @classmethod
                def from_env(cls):
                    return cls(*[os.environ["APP_HOST"]])

                @classmethod
                def positional(cls):
                    return cls(os.environ["APP_HOST"])
            """,
            id="star-and-positional-arguments",
        ),
        pytest.param(
            """
            import os
            from dataclasses import dataclass

            @dataclass
            class Settings:
                host: str
                port: int = 80

                @staticmethod
                def from_env():
                    return Settings(host=os.environ["APP_HOST"])

                def build(cls):  # an undecorated method: `cls` is an instance
                    return cls(host=os.environ["APP_HOST"])
            """,
            id="not-a-classmethod",
        ),
        pytest.param(
            """
            from dataclasses import dataclass
            from myconf import getenv, environ

            @dataclass
            class Settings:
                host: str
                port: int = 80

                @classmethod
                def from_env(cls):
                    return cls(host=getenv("APP_HOST") or environ["APP_HOST"])
            """,
            id="getenv-look-alike",
        ),
        pytest.param(
            """
            import os
            from dataclasses import dataclass
            from base import Base, Meta

            @dataclass
            class Inherits(Base):
                port: int = 80

                @classmethod
                def from_env(cls):
                    return cls(host=os.environ["APP_HOST"])

            class WithMeta(metaclass=Meta):
                port: int = 80

                @classmethod
                def from_env(cls):
                    return cls(host=os.environ["APP_HOST"])
            """,
            id="fields-we-cannot-see",
        ),
        pytest.param(
            """
            import os

            class Plain:
                host: str
                port: int = 80

                @classmethod
                def from_env(cls):
                    return cls(host=os.environ["APP_HOST"])

            class Kwargs:
                host: str

                def __init__(self, host, port=80, **extra):
                    self.host = host

                @classmethod
                def from_env(cls):
                    return cls(host=os.environ["APP_HOST"])

            class NotSettingsShaped:  # no annotated fields: any factory may leave a parameter at its default
                def __init__(self, host, port=80):
                    self.host = host

                @classmethod
                def from_env(cls):
                    return cls(host=os.environ["APP_HOST"])
            """,
            id="no-visible-keyword-constructor",
        ),
        pytest.param(
            """
            import os
            import attr
            from dataclasses import dataclass

            @dataclass(init=False)
            class NoInit:
                port: int = 80

                @classmethod
                def from_env(cls):
                    return cls(host=os.environ["APP_HOST"])

            @attr.s
            class Classic:
                port: int = 80
                host = attr.ib()

                @classmethod
                def from_env(cls):
                    return cls(host=os.environ["APP_HOST"])

            @attr.define
            class Mixed:
                port: int = 80
                host = attr.field()

                @classmethod
                def from_env(cls):
                    return cls(host=os.environ["APP_HOST"])
            """,
            id="no-generated-init-or-annotations-are-not-fields",
        ),
        pytest.param(
            """
            import os
            from dataclasses import dataclass

            @dataclass
            class Settings:
                port: int = 80

                @classmethod
                def from_env(cls):
                    cls = pick_subclass(os.environ["APP_KIND"])
                    return cls(name="x")
            """,
            id="cls-rebound",
        ),
    ],
)
def test_left_alone(code: str) -> None:
    assert messages(code) == []


def test_several_calls_and_nested_classes_are_checked_separately() -> None:
    code = """
        import os
        from dataclasses import dataclass

        @dataclass
        class Outer:
            name: str = "outer"

            @dataclass
            class Inner:
                size: int = 1

                @classmethod
                def from_env(cls):
                    if os.getenv("APP_SMALL"):
                        return cls()
                    return cls(size=int(os.getenv("APP_SIZE", "1")))

            @classmethod
            def from_env(cls):
                return cls(name=os.getenv("APP_NAME", "outer"))
        """
    assert messages(code) == [
        "`Inner.from_env()` builds `cls(...)` without `size`: no environment variable can change this field, "
        "the class default always wins"
    ]
    assert fixed(code).count('return cls(size=int(os.getenv("APP_SIZE", "1")))\n') == 2


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "settings_from_env"


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=30)


def test_settings_example_honours_the_environment_after_the_unsafe_fix(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(EXAMPLE, tmp_path / EXAMPLE.name))
    program = folder / "service.py"
    run = [sys.executable, str(program)]
    unsafe_apply = [sys.executable, "-m", "unleak", "apply", "--unsafe", str(folder)]

    before = _run(run, folder)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "ignored: SERVICE_MAX_RETRY_ATTEMPTS=0 (the service runs with 3)" in before.stdout
    assert "ignored: SERVICE_VERBOSE=false (the service runs with True)" in before.stdout

    original = program.read_bytes()
    assert _run(unsafe_apply, folder).returncode == 0
    fixed_once = program.read_bytes()
    assert fixed_once != original
    assert _run(unsafe_apply, folder).returncode == 0
    assert program.read_bytes() == fixed_once, "a second apply changed the file again"

    after = _run(run, folder)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "config: ServiceConfig(request_timeout=2.5, max_retry_attempts=0, verbose=False)" in after.stdout
    assert "ignored" not in after.stdout
