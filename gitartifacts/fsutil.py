"""One way to replace a file atomically: temp beside it, optional fsync, rename."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

# Every temporary file gart creates starts with this, so gart (and only gart) can recognise
# and clean the ones a killed process left behind.
TEMP_PREFIX = ".tmp-"


# The names of gart's own temp files (temp_name below): `.tmp-PID-12hex`.
# scan never reports them (a killed run must not look like a user's change, nor be added);
# checkout removes them.
TEMP_NAME_RE = re.compile(re.escape(TEMP_PREFIX) + r"[0-9]+-[0-9a-f]{12,64}\Z")


def is_temp_name(name: str) -> bool:
    """Is `name` a temp file gart created (and a killed run may have left behind)?"""
    return name.startswith(TEMP_PREFIX) and TEMP_NAME_RE.match(name) is not None


def temp_name(directory: str | os.PathLike[str]) -> str:
    """A unique temporary name beside the final one, so a rename into place is atomic."""
    return f"{os.fspath(directory)}/{TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"


def atomic_write(
    path: str | os.PathLike[str], data: bytes, *, durable: bool = False, mode: int | None = None
) -> None:
    """Replace `path` with `data` so readers see the old bytes or the new, never a mix.

    `durable` (records the format promises survive a crash: run records, objects, indexes)
    fsyncs the file before the rename and the directory after it; caches and files git
    tracks anyway skip the cost. The temp file is removed if anything fails.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final.parent)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(final.parent)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename in `path` durable; a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
