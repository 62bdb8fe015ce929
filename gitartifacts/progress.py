"""Progress bars on stderr (tqdm), silent when stderr is not a terminal or with --quiet."""

from __future__ import annotations

import os
import sys
from typing import Any


def enabled(quiet: bool = False) -> bool:
    """Bars are drawn only for a person watching a terminal."""
    return not quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


class Bar:
    """A counter that draws a tqdm bar when enabled and costs nothing when not.

    Also usable as an fsspec-style callback: `set_size`, `relative_update`, `absolute_update`.
    """

    def __init__(self, total: int | None, desc: str, unit: str = "file", quiet: bool = False,
                 unit_scale: bool = False) -> None:
        self._bar: Any = None
        if enabled(quiet) and (total is None or total > 0):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale,
                             file=sys.stderr, leave=False, dynamic_ncols=True)

    def __call__(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def set_size(self, size: int) -> None:
        if self._bar is not None:
            self._bar.total = size
            self._bar.refresh()

    def relative_update(self, inc: int = 1) -> None:
        self(inc)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
