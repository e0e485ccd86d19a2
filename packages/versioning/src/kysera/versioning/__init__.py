"""kysera.versioning: optimistic locking with a version column bumped on every update."""

from kysera.versioning.mixin import VersionMixin as VersionMixin
from kysera.versioning.plugin import VersionPlugin as VersionPlugin
from kysera.versioning.repository import VersionedRepository as VersionedRepository

__all__ = ["VersionMixin", "VersionPlugin", "VersionedRepository"]
