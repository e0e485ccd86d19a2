"""kysera.changes: a change feed written in the same transaction as every write.

`ChangeFeedPlugin` records one row per changed entity; `read_changes` / `follow_changes`
read them in commit order from a cursor; `purge_changes` deletes old ones.
"""

from kysera.changes.consumer import Change as Change
from kysera.changes.consumer import follow_changes as follow_changes
from kysera.changes.consumer import purge_changes as purge_changes
from kysera.changes.consumer import read_changes as read_changes
from kysera.changes.plugin import ChangeFeedPlugin as ChangeFeedPlugin
from kysera.changes.table import ChangeTables as ChangeTables
from kysera.changes.table import change_tables as change_tables
from kysera.changes.table import create_change_tables as create_change_tables

__all__ = [
    "Change",
    "ChangeFeedPlugin",
    "ChangeTables",
    "change_tables",
    "create_change_tables",
    "follow_changes",
    "purge_changes",
    "read_changes",
]
