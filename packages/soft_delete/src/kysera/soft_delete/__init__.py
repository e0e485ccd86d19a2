"""kysera.soft_delete: hide deleted rows instead of removing them."""

from kysera.soft_delete.errors import RecordNotDeletedError as RecordNotDeletedError

__all__ = ["RecordNotDeletedError"]
