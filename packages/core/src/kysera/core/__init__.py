"""kysera.core: errors, pagination, health, retries, SQL capture and testing helpers."""

from kysera.core.capture import CapturedQuery as CapturedQuery
from kysera.core.capture import QueryProfiler as QueryProfiler
from kysera.core.capture import QuerySummary as QuerySummary
from kysera.core.capture import capture_queries as capture_queries
from kysera.core.capture import format_sql as format_sql
from kysera.core.circuit_breaker import CircuitBreaker as CircuitBreaker
from kysera.core.circuit_breaker import CircuitState as CircuitState
from kysera.core.commands import Command as Command
from kysera.core.commands import command_engine as command_engine
from kysera.core.commands import command_url as command_url
from kysera.core.connect_timeout import limit_connect_time as limit_connect_time
from kysera.core.cursors import decode_cursor as decode_cursor
from kysera.core.cursors import encode_cursor as encode_cursor
from kysera.core.cursors import ordering_fingerprint as ordering_fingerprint
from kysera.core.engine_guards import guard_engine as guard_engine
from kysera.core.errors import BadRequestError as BadRequestError
from kysera.core.errors import CheckConstraintError as CheckConstraintError
from kysera.core.errors import CircuitOpenError as CircuitOpenError
from kysera.core.errors import CommitOutcomeUnknownError as CommitOutcomeUnknownError
from kysera.core.errors import DatabaseConnectionError as DatabaseConnectionError
from kysera.core.errors import DatabaseError as DatabaseError
from kysera.core.errors import DeadlockError as DeadlockError
from kysera.core.errors import ForeignKeyError as ForeignKeyError
from kysera.core.errors import InvalidCursorError as InvalidCursorError
from kysera.core.errors import InvalidQueryError as InvalidQueryError
from kysera.core.errors import KyseraError as KyseraError
from kysera.core.errors import LockTimeoutError as LockTimeoutError
from kysera.core.errors import NotFoundError as NotFoundError
from kysera.core.errors import NotNullError as NotNullError
from kysera.core.errors import QueryTimeoutError as QueryTimeoutError
from kysera.core.errors import SerializationError as SerializationError
from kysera.core.errors import StaleStatementError as StaleStatementError
from kysera.core.errors import UniqueConstraintError as UniqueConstraintError
from kysera.core.errors import ValidationError as ValidationError
from kysera.core.errors import classify_database_errors as classify_database_errors
from kysera.core.errors import is_transient_error as is_transient_error
from kysera.core.errors import parse_database_error as parse_database_error
from kysera.core.health import HealthCheckResult as HealthCheckResult
from kysera.core.health import HealthMonitor as HealthMonitor
from kysera.core.health import HealthStatus as HealthStatus
from kysera.core.health import PoolMetrics as PoolMetrics
from kysera.core.health import check_health as check_health
from kysera.core.pagination import CursorPage as CursorPage
from kysera.core.pagination import OffsetPage as OffsetPage
from kysera.core.pagination import paginate as paginate
from kysera.core.pagination import paginate_cursor as paginate_cursor
from kysera.core.retry import retry_transaction as retry_transaction
from kysera.core.retry import retryable as retryable
from kysera.core.retry import with_retry as with_retry
from kysera.core.shutdown import GracefulShutdown as GracefulShutdown
from kysera.core.shutdown import shutdown_database as shutdown_database
from kysera.core.urls import async_url as async_url
from kysera.core.urls import driver_extra as driver_extra

__all__ = [
    "BadRequestError",
    "CapturedQuery",
    "CheckConstraintError",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Command",
    "CommitOutcomeUnknownError",
    "CursorPage",
    "DatabaseConnectionError",
    "DatabaseError",
    "DeadlockError",
    "ForeignKeyError",
    "GracefulShutdown",
    "HealthCheckResult",
    "HealthMonitor",
    "HealthStatus",
    "InvalidCursorError",
    "InvalidQueryError",
    "KyseraError",
    "LockTimeoutError",
    "NotFoundError",
    "NotNullError",
    "OffsetPage",
    "PoolMetrics",
    "QueryProfiler",
    "QuerySummary",
    "QueryTimeoutError",
    "SerializationError",
    "StaleStatementError",
    "UniqueConstraintError",
    "ValidationError",
    "async_url",
    "capture_queries",
    "check_health",
    "classify_database_errors",
    "command_engine",
    "command_url",
    "decode_cursor",
    "driver_extra",
    "encode_cursor",
    "format_sql",
    "guard_engine",
    "is_transient_error",
    "limit_connect_time",
    "ordering_fingerprint",
    "paginate",
    "paginate_cursor",
    "parse_database_error",
    "retry_transaction",
    "retryable",
    "shutdown_database",
    "with_retry",
]
