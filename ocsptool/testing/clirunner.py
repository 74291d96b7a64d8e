"""click's test runner with click 8.2's streams on every click ocsptool supports.

From click 8.2 on, ``CliRunner`` keeps stderr apart (``result.stderr``) and
``result.output`` is what a terminal would show: stdout and stderr, interleaved. click 8.1
(Debian 12 ships 8.1.3) mixes stderr into stdout unless told not to, and then ``output``
is stdout alone. On 8.1 this runner does what 8.2 does, so the tests hold on both.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import click.testing
from click.testing import Result

_MIXES_STDERR = tuple(int(part) for part in version("click").split(".")[:2]) < (8, 2)


class _Tee(io.BytesIO):
    """One stream's bytes, also written to the shared terminal view."""

    def __init__(self, both: io.BytesIO) -> None:
        super().__init__()
        self.both = both

    def write(self, data: Any) -> int:
        self.both.write(data)
        return super().write(data)


class _Result81(Result):
    terminal: bytes = b""

    @property
    def output(self) -> str:
        return self.terminal.decode(self.runner.charset, "replace").replace("\r\n", "\n")


class CliRunner(click.testing.CliRunner):
    """``click.testing.CliRunner``, with 8.2's ``stderr`` and ``output`` on click 8.1."""

    if _MIXES_STDERR:

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("mix_stderr", False)
            super().__init__(*args, **kwargs)
            self._terminal = io.BytesIO()

        @contextlib.contextmanager
        def isolation(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            with super().isolation(*args, **kwargs):
                wrapper = click.testing._NamedTextIOWrapper
                self._terminal = both = io.BytesIO()
                out, err = _Tee(both), _Tee(both)
                sys.stdout = wrapper(
                    out, encoding=self.charset, name="<stdout>", mode="w", write_through=True
                )
                sys.stderr = wrapper(
                    err,
                    encoding=self.charset,
                    name="<stderr>",
                    mode="w",
                    errors="backslashreplace",
                    write_through=True,
                )
                yield out, err

        def invoke(self, *args: Any, **kwargs: Any) -> Result:
            result = super().invoke(*args, **kwargs)
            result.__class__ = _Result81
            assert isinstance(result, _Result81)
            result.terminal = self._terminal.getvalue()
            return result
