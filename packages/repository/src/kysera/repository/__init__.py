"""kysera.repository: repositories on plain SQLAlchemy tables, with a pluggy plugin system."""

from kysera.repository.context import QueryContext as QueryContext
from kysera.repository.context import QueryOperation as QueryOperation
from kysera.repository.context import as_read_back as as_read_back
from kysera.repository.errors import ConflictError as ConflictError
from kysera.repository.errors import PluginError as PluginError
from kysera.repository.factories import create_repositories_factory as create_repositories_factory
from kysera.repository.factories import create_repository as create_repository
from kysera.repository.hooks import KyseraHookSpecs as KyseraHookSpecs
from kysera.repository.hooks import hookimpl as hookimpl
from kysera.repository.hooks import hookspec as hookspec
from kysera.repository.ordering import OrderSpec as OrderSpec
from kysera.repository.ordering import compile_order_by as compile_order_by
from kysera.repository.orm import Orm as Orm
from kysera.repository.orm import create_orm as create_orm
from kysera.repository.orm import require_transactions as require_transactions
from kysera.repository.plugin import Plugin as Plugin
from kysera.repository.registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from kysera.repository.registry import PluginRegistry as PluginRegistry
from kysera.repository.relations import Relation as Relation
from kysera.repository.relations import RelationKind as RelationKind
from kysera.repository.relations import belongs_to as belongs_to
from kysera.repository.relations import foreign_key_relations as foreign_key_relations
from kysera.repository.relations import has_many as has_many
from kysera.repository.relations import has_one as has_one
from kysera.repository.relations import many_to_many as many_to_many
from kysera.repository.repository import Executor as Executor
from kysera.repository.repository import Repository as Repository
from kysera.repository.restricting import ConditionOf as ConditionOf
from kysera.repository.restricting import restrict_select as restrict_select
from kysera.repository.transaction import Transaction as Transaction
from kysera.repository.validation import default_validate_results as default_validate_results
from kysera.repository.validation import partial_model as partial_model
from kysera.repository.where import WhereSpec as WhereSpec
from kysera.repository.where import compile_where as compile_where

__all__ = [  # noqa: RUF022 (plain sorted() order, which test_exports checks)
    "ConditionOf",
    "ConflictError",
    "ENTRY_POINT_GROUP",
    "Executor",
    "KyseraHookSpecs",
    "OrderSpec",
    "Orm",
    "Plugin",
    "PluginError",
    "PluginRegistry",
    "QueryContext",
    "QueryOperation",
    "Relation",
    "RelationKind",
    "Repository",
    "Transaction",
    "WhereSpec",
    "as_read_back",
    "belongs_to",
    "compile_order_by",
    "compile_where",
    "create_orm",
    "create_repositories_factory",
    "create_repository",
    "default_validate_results",
    "foreign_key_relations",
    "has_many",
    "has_one",
    "hookimpl",
    "hookspec",
    "many_to_many",
    "partial_model",
    "require_transactions",
    "restrict_select",
]
