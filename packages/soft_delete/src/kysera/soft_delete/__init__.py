"""kysera.soft_delete: hide deleted rows instead of removing them."""

from kysera.soft_delete.errors import RecordNotDeletedError as RecordNotDeletedError
from kysera.soft_delete.filtering import filter_select as filter_select
from kysera.soft_delete.indexes import LIVE_MARKER_COLUMN as LIVE_MARKER_COLUMN
from kysera.soft_delete.indexes import soft_delete_unique_index as soft_delete_unique_index
from kysera.soft_delete.mixin import SoftDeleteMixin as SoftDeleteMixin
from kysera.soft_delete.plugin import ALWAYS_EXCLUDED_TABLES as ALWAYS_EXCLUDED_TABLES
from kysera.soft_delete.plugin import SoftDeletePlugin as SoftDeletePlugin
from kysera.soft_delete.plugin import utc_now as utc_now
from kysera.soft_delete.protocol import SoftDeleteMethods as SoftDeleteMethods
from kysera.soft_delete.repository import SoftDeleteRepository as SoftDeleteRepository

__all__ = [
    "ALWAYS_EXCLUDED_TABLES",
    "LIVE_MARKER_COLUMN",
    "RecordNotDeletedError",
    "SoftDeleteMethods",
    "SoftDeleteMixin",
    "SoftDeletePlugin",
    "SoftDeleteRepository",
    "filter_select",
    "soft_delete_unique_index",
    "utc_now",
]
