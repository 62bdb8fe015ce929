"""Hooks for the crash and concurrency suites: die at the Nth write, pause at a named point.

Inert (one cached environment lookup) unless a test sets them; read through `config.env_value`,
the only reader of environment variables:

    GART_TEST_KILL_AT=write:N        SIGKILL this process at its Nth write (object, pack,
                                     index, manifest, tag, lock), mid-way where the write has
                                     a temporary file: after the bytes, before the rename
    GART_TEST_PAUSE_AT=POINT:FILE    at the named point (e.g. `gc-sweep`, `push-publish`),
                                     create FILE and wait while it exists (at most 120 s)
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from gitartifacts.config import env_value

KILL_VARIABLE = "GART_TEST_KILL_AT"
PAUSE_VARIABLE = "GART_TEST_PAUSE_AT"
PAUSE_LIMIT = 120.0

_lock = threading.Lock()
_counts: dict[str, int] = {}
_kill: tuple[str, int] | None | bool = False  # False: not read yet


def _kill_spec() -> tuple[str, int] | None:
    global _kill
    if _kill is False:
        text = env_value(KILL_VARIABLE) or ""
        kind, _, number = text.partition(":")
        _kill = (kind, int(number)) if kind and number.isdigit() and int(number) > 0 else None
    return _kill if isinstance(_kill, tuple) else None


def hit(kind: str = "write") -> None:
    """Count one `kind` event; SIGKILL ourselves when it is the one the test asked for."""
    spec = _kill_spec()
    if spec is None or spec[0] != kind:
        return
    with _lock:
        _counts[kind] = count = _counts.get(kind, 0) + 1
    if count == spec[1]:
        os.kill(os.getpid(), signal.SIGKILL)


def pause(point: str) -> None:
    """Wait at `point` while the test's flag file exists (the test deletes it to resume)."""
    text = env_value(PAUSE_VARIABLE)
    if not text:
        return
    name, _, flag = text.partition(":")
    if name != point or not flag:
        return
    path = Path(flag)
    path.touch()
    deadline = time.monotonic() + PAUSE_LIMIT
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
