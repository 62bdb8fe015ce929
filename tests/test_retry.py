"""The one retry policy: transient failures are retried with backoff, permanent ones never."""

from __future__ import annotations

import asyncio

import pytest

from gitartifacts.errors import CorruptObjectError, ObjectNotFoundError, RemoteError
from gitartifacts.retry import RetryPolicy, is_transient

QUICK = RetryPolicy(attempts=3, backoff=0.0)


class Flaky:
    """Fails with `exc` for the first `failures` calls, then returns 'ok'."""

    def __init__(self, exc: BaseException, failures: int) -> None:
        self.exc, self.failures, self.calls = exc, failures, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return "ok"


@pytest.mark.parametrize("exc", [RemoteError("reset"), ConnectionResetError(), TimeoutError(),
                                 OSError(5, "EIO")])
def test_a_transient_failure_that_clears_is_retried(exc: BaseException) -> None:
    action = Flaky(exc, failures=2)
    assert QUICK.call(action) == "ok" and action.calls == 3


@pytest.mark.parametrize("exc", [CorruptObjectError("bad"), ObjectNotFoundError("gone"),
                                 FileNotFoundError(), PermissionError(), TypeError("bug"),
                                 ValueError("bug"), KeyError("bug")])
def test_permanent_failures_are_raised_at_the_first_attempt(exc: BaseException) -> None:
    action = Flaky(exc, failures=1)
    with pytest.raises(type(exc)):
        QUICK.call(action)
    assert action.calls == 1


def test_a_failure_that_persists_is_raised_after_the_last_attempt() -> None:
    action = Flaky(RemoteError("down"), failures=10)
    with pytest.raises(RemoteError):
        QUICK.call(action)
    assert action.calls == 3


def test_the_async_form_follows_the_same_policy() -> None:
    transient, permanent = Flaky(TimeoutError(), 2), Flaky(CorruptObjectError("bad"), 1)

    async def run(action: Flaky) -> str:
        async def once() -> str:
            return action()
        return await QUICK.call_async(once)

    assert asyncio.run(run(transient)) == "ok" and transient.calls == 3
    with pytest.raises(CorruptObjectError):
        asyncio.run(run(permanent))
    assert permanent.calls == 1


def test_backoff_doubles() -> None:
    assert list(RetryPolicy(attempts=4, backoff=0.5).delays()) == [0.5, 1.0, 2.0]


def test_network_library_errors_are_classified_by_kind() -> None:
    auth = type("NoCredentialsError", (Exception,), {"__module__": "botocore.exceptions"})
    reset = type("EndpointConnectionError", (Exception,), {"__module__": "botocore.exceptions"})
    assert is_transient(reset()) and not is_transient(auth())
