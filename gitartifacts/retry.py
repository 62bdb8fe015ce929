"""One retry policy: which failures are transient, how often and how long to wait."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from gitartifacts.errors import (
    BucketNotFoundError,
    CorruptObjectError,
    GartError,
    ObjectNotFoundError,
    RemoteError,
    RemoteUnreachableError,
)

T = TypeVar("T")

# Modules whose exceptions mean "the network or the service hiccuped".
_NETWORK_MODULES = ("botocore", "aiobotocore", "aiohttp", "urllib3", "requests",
                    "azure.core", "google.api_core", "google.auth", "gcsfs")
_PERMANENT_NETWORK = ("NoCredentialsError", "ClientAuthenticationError", "NoSuchBucket",
                      "InvalidAccessKeyId", "SignatureDoesNotMatch", "ResourceNotFoundError")


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same call again may succeed.

    Never transient: a missing or corrupt object (the bytes will not change by asking again),
    a denied permission, and programming errors (TypeError, ValueError, ...)."""
    if isinstance(exc, (ObjectNotFoundError, CorruptObjectError, BucketNotFoundError,
                        RemoteUnreachableError, FileNotFoundError, PermissionError,
                        IsADirectoryError, NotADirectoryError)):
        return False  # an unreachable endpoint was already retried within the remote's limits
    # asyncio.TimeoutError is the builtin TimeoutError on Python >= 3.11; older ones need
    # the name too, without importing asyncio on every command's start-up path.
    if isinstance(exc, (RemoteError, ConnectionError, TimeoutError)) or (
            type(exc).__name__ == "TimeoutError" and type(exc).__module__.startswith("asyncio")):
        return True
    if isinstance(exc, GartError):
        return False
    module = type(exc).__module__ or ""
    if module.startswith(_NETWORK_MODULES):
        return type(exc).__name__ not in _PERMANENT_NETWORK
    # A bare OSError from a filesystem layer (EIO, ECONNRESET...) is worth one more try.
    return type(exc) is OSError


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all, waiting `backoff`, 2×, 4× … seconds in between."""

    attempts: int = 3
    backoff: float = 0.2

    def delays(self) -> Iterator[float]:
        """The wait before each retry (one fewer than attempts)."""
        for attempt in range(self.attempts - 1):
            yield self.backoff * 2**attempt

    def call(self, action: Callable[[], T],
             transient: Callable[[BaseException], bool] = is_transient) -> T:
        """Run `action`, retrying transient failures; the last failure is raised."""
        for delay in self.delays():
            try:
                return action()
            except Exception as exc:  # noqa: BLE001 - classified, then re-raised
                if not transient(exc):
                    raise
            time.sleep(delay)
        return action()

    async def call_async(self, action: Callable[[], Awaitable[T]],
                         transient: Callable[[BaseException], bool] = is_transient) -> T:
        """The same policy for a coroutine (async fsspec batches)."""
        for delay in self.delays():
            try:
                return await action()
            except Exception as exc:  # noqa: BLE001 - classified, then re-raised
                if not transient(exc):
                    raise
            import asyncio

            await asyncio.sleep(delay)
        return await action()


DEFAULT = RetryPolicy()
