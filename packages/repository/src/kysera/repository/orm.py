"""The ORM object: one executor, one plugin set, repositories, transactions and `execute`.

"ORM" is the product's word for this façade; it maps nothing: tables stay plain
`sqlalchemy.Table` objects and every statement stays a Core statement.
"""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel
from sqlalchemy import CompoundSelect, Delete, Insert, Result, Select, Table, Update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.visitors import replacement_traverse

from kysera.core import classify_database_errors, guard_engine
from kysera.repository._execution import autocommit_engine, require_transactions
from kysera.repository._outcome import commit
from kysera.repository.context import QueryContext, QueryOperation
from kysera.repository.errors import PluginError
from kysera.repository.registry import PluginRegistry
from kysera.repository.relations import Relation, RelationMap
from kysera.repository.repository import Executor, Repository
from kysera.repository.transaction import Transaction, active_connection, open_transaction

__all__ = ["Orm", "create_orm", "require_transactions"]

_EntityT = TypeVar("_EntityT", bound=BaseModel)
_RepositoryT = TypeVar("_RepositoryT", bound=Repository[Any])


class Orm:
    """Repositories, transactions and statements sharing one executor and one plugin set.

    Create it with `create_orm`, which validates and configures the plugins.

    Attributes:
        registry: The validated, ordered plugins.
        binding: The key under which ``orm.transaction()`` binds its connection.
        validate_results: The default ``validate_results`` of its repositories.
        relations: The declared relations (see `relate`).
    """

    def __init__(
        self,
        executor: Executor,
        registry: PluginRegistry,
        *,
        validate_results: bool | None = None,
    ) -> None:
        if not isinstance(executor, (AsyncEngine, AsyncConnection)):
            raise TypeError(
                f"executor must be an AsyncEngine or AsyncConnection, not {type(executor).__name__}"
            )
        guard_engine(executor if isinstance(executor, AsyncEngine) else executor.engine)
        self._executor = executor
        self.registry = registry
        self.binding = object()
        self.validate_results = validate_results
        self._classes: dict[tuple[type, tuple[type, ...]], type[Repository[Any]]] = {}
        self.relations = RelationMap()

    @property
    def plugins(self) -> tuple[object, ...]:
        """The plugins, in order (outermost first)."""
        return self.registry.plugins

    @property
    def executor(self) -> Executor:
        """Where statements run now: the open ``orm.transaction()`` connection, else the
        executor the ORM was created with."""
        return active_connection(self.binding) or self._executor

    @overload
    def repository(
        self,
        table: Table,
        *,
        entity: type[_EntityT],
        create: type[BaseModel] | None = None,
        update: type[BaseModel] | None = None,
        validate_results: bool | None = None,
    ) -> Repository[_EntityT]: ...

    @overload
    def repository(
        self,
        table: Table,
        *,
        entity: None = None,
        create: type[BaseModel] | None = None,
        update: type[BaseModel] | None = None,
        validate_results: bool | None = None,
    ) -> Repository[dict[str, Any]]: ...

    @overload
    def repository(
        self,
        table: Table,
        *,
        entity: type[BaseModel] | None = None,
        create: type[BaseModel] | None = None,
        update: type[BaseModel] | None = None,
        validate_results: bool | None = None,
        repository_class: type[_RepositoryT],
    ) -> _RepositoryT: ...

    def repository(
        self,
        table: Table,
        *,
        entity: type[BaseModel] | None = None,
        create: type[BaseModel] | None = None,
        update: type[BaseModel] | None = None,
        validate_results: bool | None = None,
        repository_class: type[Repository[Any]] = Repository,
    ) -> Repository[Any]:
        """Create a repository for ``table`` with this ORM's plugins and transactions.

        The plugins' mixins are composed, in plugin order, in front of
        ``repository_class`` (a `Repository` subclass of your own, if you like).

        Args:
            table: The table.
            entity: Pydantic model for rows (plain dicts when ``None``).
            create: Pydantic model for create/upsert input.
            update: Pydantic model for update input (default: all-optional ``create``).
            validate_results: Validate rows (default: the ORM's, else
                ``KYSERA_VALIDATION_MODE``).
            repository_class: The base class to compose the plugin mixins onto; a
                subscripted generic such as ``SoftDeleteRepository[Book]`` types the result.
        """
        # A subscripted generic (``SoftDeleteRepository[Book]``, for its static type) is
        # composed as its class: type() takes classes only.
        repository_class = typing.get_origin(repository_class) or repository_class
        mixins = tuple(self.registry.mixins(table, self))
        cls = self._classes.get((repository_class, mixins))
        if cls is None:
            if mixins:
                cls = type(
                    f"{table.name.title().replace('_', '')}Repository",
                    (*mixins, repository_class),
                    {},
                )
            else:
                cls = repository_class
            self._classes[(repository_class, mixins)] = cls
        return cls(
            self._executor,
            table,
            entity=entity,
            create=create,
            update=update,
            validate_results=self.validate_results
            if validate_results is None
            else validate_results,
            orm=self,
        )

    def relate(self, *relations: Relation) -> None:
        """Declare relations that ``include=`` and ``repo.load`` can load.

        ```python
        orm.relate(
            has_many(authors, "books", books),
            belongs_to(books, "author", authors),
            many_to_many(books, "tags", tags, through=book_tags),
        )
        ```

        A relation applies to every repository of its source table, created before or after.
        Declaring a name again replaces the earlier relation.
        """
        self.relations.add(relations)

    def transaction(
        self, isolation_level: str | None = None
    ) -> AbstractAsyncContextManager[Transaction]:
        """Run a block in one transaction: ``async with orm.transaction() as tx:``.

        Every repository of this ORM (created before or inside the block) and every plugin
        runs on ``tx.connection`` inside the block, in this task and tasks it starts. A
        nested ``orm.transaction()`` is a SAVEPOINT. Leaving the block normally commits (a
        savepoint is released); an exception rolls back and propagates.

        Args:
            isolation_level: For the outermost block: ``"READ COMMITTED"``,
                ``"REPEATABLE READ"``, ``"SERIALIZABLE"`` (and ``"READ UNCOMMITTED"`` where
                supported). Retry serialization failures with
                ``kysera.core.retry_transaction``.

        Raises:
            BadRequestError: ``isolation_level`` on a nested block.
        """
        return open_transaction(self.binding, self._executor, isolation_level=isolation_level)

    def changes(
        self,
        *,
        tables: Iterable[str] | str | None = None,
        after: int = 0,
        poll_interval: float = 1.0,
        batch_size: int = 1000,
    ) -> AsyncIterator[Any]:
        """Every change recorded after ``after``, in commit order, waiting for new ones.

        ```python
        orm = await create_orm(engine, plugins=[ChangeFeedPlugin()])
        async for change in orm.changes(tables=["users"], after=saved_cursor):
            await handle(change)
            saved_cursor = change.id
        ```

        The stream comes from the plugin that keeps the change feed (`kysera-changes`'
        ``ChangeFeedPlugin``), which documents its delivery guarantees. It never ends by
        itself; break out of the loop or cancel the task to stop it.

        Args:
            tables: Only changes of these tables (default: every recorded table).
            after: The cursor: the id of the last change already handled (0: from the start).
            poll_interval: Seconds to wait between reads that found nothing new.
            batch_size: The most changes read per statement.

        Raises:
            PluginError: No plugin keeps a change feed.
            InvalidQueryError: A bad cursor, ``poll_interval`` or ``batch_size`` (raised by
                the plugin, before any I/O).
        """
        names: tuple[str, ...] | None = None
        if tables is not None:
            names = (tables,) if isinstance(tables, str) else tuple(tables)
        stream = self.registry.follow_changes(
            self, tables=names, after=after, poll_interval=poll_interval, batch_size=batch_size
        )
        if stream is None:
            raise PluginError(
                "orm.changes() needs a plugin that keeps a change feed: install kysera-changes "
                "and pass kysera.changes.ChangeFeedPlugin() to create_orm"
            )
        return stream

    def _intercept_compound(self, statement: Any, options: Mapping[str, Any]) -> Any:
        """A UNION/INTERSECT/EXCEPT whose every SELECT went through the plugins, each as a
        statement of its own (so a scoping plugin scopes each part, or refuses it)."""
        members: dict[int, Select[Any]] = {}
        pending: list[Any] = list(statement.selects)
        while pending:
            part = pending.pop()
            part = getattr(part, "element", part)  # a grouped compound inside the compound
            if isinstance(part, CompoundSelect):
                pending.extend(part.selects)
            elif isinstance(part, Select):
                members[id(part)] = part

        def replace(element: Any, **kw: Any) -> Any:
            if id(element) in members and element is members[id(element)]:
                return self.registry.intercept(
                    QueryContext("select", None, element, options, hand_written=True)
                )
            return None

        no_options: dict[str, Any] = {}
        return replacement_traverse(statement, no_options, replace)

    async def execute(self, statement: Executable, **options: Any) -> Result[Any]:
        """Run a Core statement through the plugins (e.g. soft delete hides deleted rows).

        SELECT, INSERT, UPDATE and DELETE statements pass through every plugin's
        ``kysera_intercept_query`` with ``options`` (a UNION, INTERSECT or EXCEPT: each of its
        SELECTs, as a statement of its own); other statements (text, DDL) run as given. On
        an engine, a write commits its own transaction; reads open none.

        Returns:
            The buffered result.
        """
        operation: QueryOperation | None
        table: Table | None = None
        if isinstance(statement, Select):
            operation = "select"
        elif isinstance(statement, (Insert, Update, Delete)):
            operation = (
                "insert"
                if isinstance(statement, Insert)
                else "update"
                if isinstance(statement, Update)
                else "delete"
            )
            target = statement.table
            table = target if isinstance(target, Table) else None
        else:
            operation = None
        if isinstance(statement, CompoundSelect):
            if self.registry.intercepts:
                statement = self._intercept_compound(statement, options)
            operation = "select"
        elif operation is not None and self.registry.intercepts:
            statement = self.registry.intercept(
                QueryContext(operation, table, statement, options, hand_written=True)
            )
        with classify_database_errors():
            connection = active_connection(self.binding)
            if connection is None and isinstance(self._executor, AsyncConnection):
                connection = self._executor
            if connection is not None:
                return await connection.execute(statement)
            engine = self._executor
            assert isinstance(engine, AsyncEngine)
            if operation == "select":
                async with autocommit_engine(engine).connect() as connection:
                    return await connection.execute(statement)
            async with engine.connect() as connection, connection.begin() as transaction:
                result = await connection.execute(statement)
                await commit(transaction)
                return result


async def create_orm(
    executor: Executor,
    plugins: Sequence[object] = (),
    *,
    discover: bool = False,
    validate_results: bool | None = None,
    relations: Literal["foreign_keys"] | None = None,
) -> Orm:
    """Create the ORM object: validate and order the plugins, then configure them.

    Args:
        executor: An `AsyncEngine` (each write commits its own transaction) or an
            `AsyncConnection` (the caller's transaction).
        plugins: Plugin objects; their order here does not matter.
        discover: Also load plugins from the ``kysera.plugins`` entry point group.
        validate_results: Default ``validate_results`` for the ORM's repositories.
        relations: ``"foreign_keys"`` derives a ``belongs_to`` and a ``has_many`` from every
            foreign key of the tables' ``MetaData`` (named as `foreign_key_relations`
            describes); relations declared with `Orm.relate` take precedence.

    Raises:
        PluginError: Duplicate names, a missing requirement, a conflict or a cycle.
        ValueError: ``relations`` is neither ``None`` nor ``"foreign_keys"``.
    """
    if relations not in (None, "foreign_keys"):
        raise ValueError(f"relations must be None or 'foreign_keys', got {relations!r}")
    registry = PluginRegistry(plugins, discover=discover)
    orm = Orm(executor, registry, validate_results=validate_results)
    orm.relations.from_foreign_keys = relations == "foreign_keys"
    registry.configure(orm)
    return orm
