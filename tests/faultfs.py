"""faulty:// — an fsspec wrapper that fails, truncates or corrupts the Nth call of a method."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import fsspec
from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.spec import AbstractFileSystem

PROTOCOL = "faulty"
FAULT_METHODS = ("cat_file", "pipe_file", "put_file", "get_file")
FAULT_MODES = ("error", "truncate", "partial", "corrupt", "stall")


class InjectedFault(ConnectionError):
    """The error a faulty call raises (a ConnectionError, as a dropped connection would)."""


def damage(data: bytes, mode: str) -> bytes:
    """The bytes a truncating or corrupting call delivers instead of `data`."""
    if mode in ("truncate", "partial", "stall"):
        return data[: len(data) // 2]
    if mode == "corrupt" and data:
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    return data


class FaultyFileSystem(AbstractFileSystem):
    """Delegates to an inner filesystem; one chosen method misbehaves on chosen calls.

    It is reached through the normal remote URL path (`faulty:///abs/dir` or `faulty://bucket/x`
    with options from the remote's config), so gart's own code runs unpatched. Options:

        target_protocol  "file" (default) or "memory": where the bytes really live
        target_options   options of the target filesystem (an emulator's endpoint, ...)
        fault_method     which method misbehaves: cat_file, pipe_file, put_file or get_file
        fault_path       only calls on paths containing this text count (default: all)
        fault_call       the first counted call (1-based, per method) that misbehaves
        fault_count      how many calls in a row misbehave from there (0: every later call)
        fault_mode       "error" (raise ConnectionError), "truncate" (half the bytes, no error),
                         "partial" (half the bytes land, then an error), "corrupt" (one byte
                         flipped, no error) or "stall" (half the bytes land, then it
                         touches `stall_marker` and sleeps)
        stall_marker     a local file created when a stalled call begins (for SIGKILL tests)
        stall_seconds    how long a stalled call sleeps (default 60)

    It has a rename (as sftp or hdfs do, unlike S3), so gart writes objects here under a
    temp name and renames them into place: a "partial" put leaves only that temp name.
    """

    protocol = PROTOCOL
    root_marker = ""
    # Every instance made by the test process, newest last, so tests can read call counts.
    instances: ClassVar[list[FaultyFileSystem]] = []

    def __init__(
        self,
        target_protocol: str = "file",
        fault_method: str | None = None,
        fault_path: str = "",
        fault_call: int = 1,
        fault_count: int = 1,
        fault_mode: str = "error",
        stall_marker: str | None = None,
        stall_seconds: float = 60.0,
        target_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fault_method is not None and fault_method not in FAULT_METHODS:
            raise ValueError(f"fault_method must be one of {FAULT_METHODS}")
        if fault_mode not in FAULT_MODES:
            raise ValueError(f"fault_mode must be one of {FAULT_MODES}")
        self.inner = fsspec.filesystem(
            target_protocol, **{"skip_instance_cache": True, **(target_options or {})}
        )
        self.fault_method = fault_method
        self.fault_path = str(fault_path)
        self.fault_call = int(fault_call)
        self.fault_count = int(fault_count)
        self.fault_mode = fault_mode
        self.stall_marker = stall_marker
        self.stall_seconds = float(stall_seconds)
        self.calls: Counter[str] = Counter()
        self.matched = 0  # calls of fault_method on a fault_path so far
        self.faults: list[tuple[str, str]] = []  # (method, path) of every call that misbehaved
        self._lock = threading.Lock()
        FaultyFileSystem.instances.append(self)

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        if text.startswith(f"{PROTOCOL}://"):
            text = text[len(PROTOCOL) + 3 :]
        return text.rstrip("/") or "/"

    # -- fault decision ----------------------------------------------------------------

    def _fault(self, method: str, path: str) -> str | None:
        """The fault mode for this call of `method`, or None when it behaves."""
        with self._lock:
            self.calls[method] += 1
            if method != self.fault_method or self.fault_path not in path:
                return None
            self.matched += 1
            n = self.matched
            if n < self.fault_call:
                return None
            if self.fault_count and n >= self.fault_call + self.fault_count:
                return None
            self.faults.append((method, path))
        if self.fault_mode == "error":
            raise InjectedFault(f"injected fault: {method} call {n} on {path}")
        return self.fault_mode

    def _stall(self) -> None:
        """Hang mid-transfer (half the bytes written), so a test can SIGKILL the process."""
        if self.stall_marker:
            Path(self.stall_marker).touch()
        time.sleep(self.stall_seconds)

    # -- the four methods that can misbehave --------------------------------------------

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        path = self._strip_protocol(path)
        mode = self._fault("cat_file", path)
        data = bytes(self.inner.cat_file(path, start=start, end=end))
        if mode == "stall":
            self._stall()
        if mode == "partial":
            raise InjectedFault(f"injected fault: connection reset reading {path}")
        return damage(data, mode) if mode else data

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        fault = self._fault("pipe_file", path)
        self._parent_dirs(path)
        self.inner.pipe_file(path, damage(bytes(value), fault) if fault else value)
        if fault == "stall":
            self._stall()
        if fault == "partial":
            raise InjectedFault(f"injected fault: connection reset writing {path}")

    def put_file(self, lpath: str, rpath: str, callback: Any = DEFAULT_CALLBACK,
                 mode: str = "overwrite", **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        fault = self._fault("put_file", rpath)
        self._parent_dirs(rpath)
        if fault:
            self.inner.pipe_file(rpath, damage(Path(lpath).read_bytes(), fault))
            if fault == "stall":
                self._stall()
            if fault == "partial":
                raise InjectedFault(f"injected fault: connection reset writing {rpath}")
            return
        self.inner.put_file(lpath, rpath)

    def get_file(self, rpath: str, lpath: str, callback: Any = DEFAULT_CALLBACK,
                 outfile: Any = None, **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        fault = self._fault("get_file", rpath)
        if fault:
            Path(lpath).write_bytes(damage(bytes(self.inner.cat_file(rpath)), fault))
            if fault == "stall":
                self._stall()
            if fault == "partial":
                raise InjectedFault(f"injected fault: connection reset reading {rpath}")
            return
        self.inner.get_file(rpath, lpath)

    # -- plain delegation ---------------------------------------------------------------

    def _parent_dirs(self, path: str) -> None:
        parent = path.rpartition("/")[0]
        if parent:
            self.inner.makedirs(parent, exist_ok=True)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        return self.inner.ls(self._strip_protocol(path), detail=detail)

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return self.inner.info(self._strip_protocol(path))

    def exists(self, path: str, **kwargs: Any) -> bool:
        return bool(self.inner.exists(self._strip_protocol(path)))

    def rm_file(self, path: str) -> None:
        self.inner.rm_file(self._strip_protocol(path))

    def mv(self, path1: str, path2: str, recursive: bool = False, maxdepth: int | None = None,
           **kwargs: Any) -> None:
        self.inner.mv(self._strip_protocol(path1), self._strip_protocol(path2))

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self.inner.makedirs(self._strip_protocol(path), exist_ok=exist_ok)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self.inner.mkdir(self._strip_protocol(path), create_parents=create_parents)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        return self.inner.open(self._strip_protocol(path), mode)


def register() -> None:
    """Make `faulty://` URLs resolve to FaultyFileSystem in this process."""
    fsspec.register_implementation(PROTOCOL, FaultyFileSystem, clobber=True)


register()
