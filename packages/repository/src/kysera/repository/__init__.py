"""kysera.repository: repositories on plain SQLAlchemy tables, with a pluggy plugin system."""

from kysera.repository.errors import PluginError as PluginError

__all__ = ["PluginError"]
