"""kysera.timestamps: maintain created_at / updated_at on every write."""

from kysera.timestamps.bypass import without_timestamps as without_timestamps
from kysera.timestamps.errors import InvalidTimestampError as InvalidTimestampError
from kysera.timestamps.mixin import TimestampsMixin as TimestampsMixin
from kysera.timestamps.plugin import TimestampsPlugin as TimestampsPlugin
from kysera.timestamps.protocol import TimestampedRepository as TimestampedRepository
from kysera.timestamps.repository import TimestampsRepository as TimestampsRepository
from kysera.timestamps.types import UTCDateTime as UTCDateTime

__all__ = [
    "InvalidTimestampError",
    "TimestampedRepository",
    "TimestampsMixin",
    "TimestampsPlugin",
    "TimestampsRepository",
    "UTCDateTime",
    "without_timestamps",
]
