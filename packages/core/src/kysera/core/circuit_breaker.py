"""A circuit breaker: stop calling a database that is down, then probe it before trusting it.

```
closed ──(failure_threshold counted failures in a row)──▶ open
open ──(reset_timeout seconds later)──▶ half_open
half_open ──(half_open_max_calls probes succeed)──▶ closed
half_open ──(a probe fails)──▶ open
```

While open, calls fail at once with `CircuitOpenError` instead of waiting on timeouts.
Only errors for which ``counts(exc)`` is true count as failures (by default transient
errors: lost connections, timeouts...). Any other outcome, including an error such as a
unique violation, shows the database answering and counts as a success.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from types import TracebackType
from typing import ParamSpec, TypeVar

from kysera.core.errors import (
    BadRequestError,
    CircuitOpenError,
    DatabaseError,
    classify_database_errors,
    is_transient_error,
)

__all__ = ["CircuitBreaker", "CircuitState"]

T = TypeVar("T")
P = ParamSpec("P")


class CircuitState(str, enum.Enum):
    """The state of a `CircuitBreaker`; compares equal to its string value."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __str__(self) -> str:
        return self.value


# The calls entered with ``async with breaker:`` in the current task, innermost last, each as
# (breaker, generation it was admitted in). Module-level: a ContextVar per instance would leak.
_ENTERED: ContextVar[tuple[tuple[CircuitBreaker, int], ...]] = ContextVar(
    "kysera_circuit_breaker_entered", default=()
)


class CircuitBreaker:
    """Fail fast while a dependency is down, and let a few probes find out when it is back.

    Use it around any async call, as ``await breaker.call(fn, *args)`` or as
    ``async with breaker: ...``. Database exceptions raised inside either form are
    re-raised as classified `DatabaseError` subclasses, like `classify_database_errors`.

    The breaker is meant for one event loop; it needs no lock because its state only
    changes between awaits. Outcomes of calls admitted before a state change (a slow call
    that finishes after the circuit opened, say) are ignored.

    Args:
        failure_threshold: Counted failures in a row, in the closed state, that open the
            circuit.
        reset_timeout: Seconds the circuit stays open before letting probes through.
        half_open_max_calls: How many probe calls the half-open state admits at once; the
            circuit closes when that many have succeeded.
        counts: Whether an error counts as a failure (default `is_transient_error`); it
            receives the classified error.
        on_state_change: Called as ``on_state_change(old, new)`` after each transition.
        clock: A monotonic clock in seconds; inject a fake one in tests.

    Raises:
        BadRequestError: If an option is out of range.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        counts: Callable[[BaseException], bool] = is_transient_error,
        on_state_change: Callable[[CircuitState, CircuitState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise BadRequestError(f"failure_threshold must be >= 1, got {failure_threshold!r}")
        if reset_timeout < 0:
            raise BadRequestError(f"reset_timeout must be >= 0, got {reset_timeout!r}")
        if half_open_max_calls < 1:
            raise BadRequestError(f"half_open_max_calls must be >= 1, got {half_open_max_calls!r}")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self._counts = counts
        self._on_state_change = on_state_change
        self._clock = clock
        self._state = CircuitState.CLOSED
        # Bumped on every transition, so late outcomes from an earlier state are ignored.
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._probes_admitted = 0
        self._probes_succeeded = 0

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self.state.value!r}, failures={self._failures}, "
            f"failure_threshold={self.failure_threshold}, reset_timeout={self.reset_timeout})"
        )

    @property
    def state(self) -> CircuitState:
        """The current state; an open circuit whose ``reset_timeout`` has passed is half-open."""
        self._refresh()
        return self._state

    @property
    def failure_count(self) -> int:
        """Counted failures in a row in the closed state (0 in the other states)."""
        return self._failures

    def reset(self) -> None:
        """Close the circuit and forget the failures, whatever the state."""
        if self._state is not CircuitState.CLOSED:
            self._transition(CircuitState.CLOSED)
        self._failures = 0

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: If the circuit is open, or half-open with every probe slot
                taken; ``fn`` is not called.
            Exception: Whatever ``fn`` raised (database errors classified).
        """
        ticket = self._admit()
        try:
            async with classify_database_errors():
                result = await fn(*args, **kwargs)
        except Exception as exc:
            self._record_error(ticket, exc)
            raise
        except BaseException:
            self._release(ticket)
            raise
        self._record_success(ticket)
        return result

    async def __aenter__(self) -> CircuitBreaker:
        ticket = self._admit()
        _ENTERED.set((*_ENTERED.get(), (self, ticket)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        ticket = self._pop_entered()
        if exc is None:
            self._record_success(ticket)
        elif isinstance(exc, Exception):
            try:
                classify_database_errors().__exit__(exc_type, exc, traceback)
            except DatabaseError as classified:
                self._record_error(ticket, classified)
                raise
            self._record_error(ticket, exc)
        else:
            self._release(ticket)

    # --- state machine ---------------------------------------------------------------------

    def _refresh(self) -> None:
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            self._transition(CircuitState.HALF_OPEN)

    def _admit(self) -> int:
        self._refresh()
        if self._state is CircuitState.OPEN:
            remaining = self.reset_timeout - (self._clock() - self._opened_at)
            raise CircuitOpenError(
                f"circuit breaker is open after {self.failure_threshold} failures in a row; "
                f"failing fast for another {remaining:.1f} s"
            )
        if self._state is CircuitState.HALF_OPEN:
            if self._probes_admitted >= self.half_open_max_calls:
                raise CircuitOpenError(
                    "circuit breaker is half-open and its probe calls are already running"
                )
            self._probes_admitted += 1
        return self._generation

    def _record_success(self, ticket: int) -> None:
        if ticket != self._generation:
            return
        if self._state is CircuitState.CLOSED:
            self._failures = 0
        elif self._state is CircuitState.HALF_OPEN:
            self._probes_succeeded += 1
            if self._probes_succeeded >= self.half_open_max_calls:
                self._transition(CircuitState.CLOSED)

    def _record_error(self, ticket: int, exc: BaseException) -> None:
        if not self._counts(exc):
            # The dependency answered (a unique violation, a bad query): not an outage.
            self._record_success(ticket)
            return
        if ticket != self._generation:
            return
        if self._state is CircuitState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._transition(CircuitState.OPEN)
        elif self._state is CircuitState.HALF_OPEN:
            self._transition(CircuitState.OPEN)

    def _release(self, ticket: int) -> None:
        # A cancelled probe proved nothing: give its slot to the next caller.
        if ticket == self._generation and self._state is CircuitState.HALF_OPEN:
            self._probes_admitted -= 1

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._failures = 0
        self._probes_admitted = 0
        self._probes_succeeded = 0
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        if self._on_state_change is not None:
            self._on_state_change(old, new)

    def _pop_entered(self) -> int:
        entered = _ENTERED.get()
        for index in range(len(entered) - 1, -1, -1):
            breaker, ticket = entered[index]
            if breaker is self:
                _ENTERED.set(entered[:index] + entered[index + 1 :])
                return ticket
        raise RuntimeError("CircuitBreaker.__aexit__ without a matching __aenter__")
