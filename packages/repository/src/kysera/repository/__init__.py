"""kysera.repository: repositories on plain SQLAlchemy tables, with a pluggy plugin system."""

from kysera.repository.errors import PluginError as PluginError
from kysera.repository.ordering import OrderSpec as OrderSpec
from kysera.repository.ordering import compile_order_by as compile_order_by
from kysera.repository.where import WhereSpec as WhereSpec
from kysera.repository.where import compile_where as compile_where

__all__ = ["OrderSpec", "PluginError", "WhereSpec", "compile_order_by", "compile_where"]
