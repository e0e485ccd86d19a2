"""kysera.repository: repositories on plain SQLAlchemy tables, with a pluggy plugin system."""

from kysera.repository.context import QueryContext as QueryContext
from kysera.repository.context import QueryOperation as QueryOperation
from kysera.repository.errors import PluginError as PluginError
from kysera.repository.hooks import KyseraHookSpecs as KyseraHookSpecs
from kysera.repository.hooks import hookimpl as hookimpl
from kysera.repository.hooks import hookspec as hookspec
from kysera.repository.plugin import Plugin as Plugin
from kysera.repository.registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from kysera.repository.registry import PluginRegistry as PluginRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "KyseraHookSpecs",
    "Plugin",
    "PluginError",
    "PluginRegistry",
    "QueryContext",
    "QueryOperation",
    "hookimpl",
    "hookspec",
]
