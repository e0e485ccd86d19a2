"""The extension points plugin mixins and interceptors build on, through third-party plugins
(`extension_plugins`) and the public API only, on every configured database:

- the per-call options in `Repository.call_options`, inside the preparation hooks;
- `QueryContext.read_back`, marking the SELECT that reads a write's rows back;
- `Repository.upsert_update_columns`, keeping a column out of an upsert's UPDATE branch.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from extension_plugins import HideArchivedPlugin, ProvenancePlugin
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import NotFoundError
from kysera.core.pytest_plugin import kysera_schema_fixture
from kysera.core.testing import snapshot_table
from kysera.repository import (
    Orm,
    QueryContext,
    Repository,
    as_read_back,
    create_orm,
    hookimpl,
)

metadata = sa.MetaData()
documents = sa.Table(
    "ext_documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(40), nullable=False, unique=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_by", sa.String(40), nullable=True),
    sa.Column("updated_by", sa.String(40), nullable=True),
)

ext_engine = kysera_schema_fixture(metadata)


async def plugins_orm(engine: AsyncEngine, *extra: Any) -> tuple[Orm, HideArchivedPlugin]:
    hide = HideArchivedPlugin()
    return await create_orm(engine, plugins=[ProvenancePlugin(), hide, *extra]), hide


def who(row: dict[str, Any]) -> tuple[Any, Any]:
    return row["created_by"], row["updated_by"]


# --- per-call options in the preparation hooks -------------------------------------------


async def test_every_write_path_shows_the_call_options_to_the_hooks(
    ext_engine: AsyncEngine,
) -> None:
    orm, _ = await plugins_orm(ext_engine)
    repo = orm.repository(documents)

    one = await repo.create({"slug": "a", "title": "A"}, actor="ada")
    two, three = await repo.create_many(
        [{"slug": "b", "title": "B"}, {"slug": "c", "title": "C"}], actor="ada"
    )
    assert [who(row) for row in (one, two, three)] == [("ada", "ada")] * 3
    assert await repo.create_many([{"slug": "d", "title": "D"}], returning=False, actor="x") == 1

    assert who(await repo.update(one["id"], {"title": "A2"}, actor="bob")) == ("ada", "bob")
    assert await repo.update_many({"slug": "b"}, {"title": "B2"}, actor="cy") == 1
    [changed] = await repo.bulk_update([(three["id"], {"title": "C2"})], actor="dee")
    assert who(changed) == ("ada", "dee")
    assert who(await repo.upsert({"slug": "e", "title": "E"}, conflict=["slug"], actor="eve")) == (
        "eve",
        "eve",
    )

    stored = {row["slug"]: who(row) for row in await snapshot_table(ext_engine, documents)}
    assert stored == {
        "a": ("ada", "bob"),
        "b": ("ada", "cy"),
        "c": ("ada", "dee"),
        "d": ("x", "x"),
        "e": ("eve", "eve"),
    }


async def test_options_do_not_outlive_their_call(ext_engine: AsyncEngine) -> None:
    orm, _ = await plugins_orm(ext_engine)
    repo = orm.repository(documents)
    assert repo.call_options == {}

    await repo.create({"slug": "a", "title": "A"}, actor="ada")
    anonymous = await repo.create({"slug": "b", "title": "B"})

    assert who(anonymous) == (None, None)
    assert repo.call_options == {}


class ShoutMixin(Repository[Any]):
    """A mixin written before options reached the hooks: one-argument overrides only."""

    def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**row, "title": row["title"].upper()} for row in super().prepare_insert(rows)]

    def prepare_update(self, values: dict[str, Any]) -> dict[str, Any]:
        values = super().prepare_update(values)
        return {**values, "title": values["title"].upper()} if "title" in values else values


class ShoutPlugin:
    name = "shout"
    priority = 50  # outermost: its overrides call the provenance mixin's through super()

    @hookimpl
    def kysera_repository_mixin(self, table: sa.Table) -> type:
        return ShoutMixin


async def test_an_older_one_argument_mixin_in_the_chain_still_works(
    ext_engine: AsyncEngine,
) -> None:
    orm, _ = await plugins_orm(ext_engine, ShoutPlugin())
    repo = orm.repository(documents)
    assert orm.registry.names[0] == "shout"

    created = await repo.create({"slug": "a", "title": "quiet"}, actor="ada")
    updated = await repo.update(created["id"], {"title": "still quiet"}, actor="bob")

    assert (created["title"], who(created)) == ("QUIET", ("ada", "ada"))
    assert (updated["title"], who(updated)) == ("STILL QUIET", ("ada", "bob"))


# --- the read-back marker --------------------------------------------------------------------


def test_read_back_is_a_mark_on_the_statement() -> None:
    plain = sa.select(documents)
    marked = as_read_back(plain)

    assert QueryContext("select", documents, plain).read_back is False
    assert QueryContext("select", documents, marked).read_back is True
    # What a plugin derives from a marked statement stays marked.
    derived = marked.where(documents.c.archived.is_(False))
    assert QueryContext("select", documents, derived).read_back is True


async def test_a_write_that_hides_its_own_row_still_returns_it(ext_engine: AsyncEngine) -> None:
    orm, _ = await plugins_orm(ext_engine)
    repo = orm.repository(documents)
    first, second, third = await repo.create_many(
        [{"slug": s, "title": s.upper()} for s in ("a", "b", "c")]
    )

    archived = await repo.update(first["id"], {"archived": True})
    [bulk] = await repo.bulk_update([(second["id"], {"archived": True})])
    upserted = await repo.upsert({"slug": "c", "title": "C", "archived": True}, conflict=["slug"])
    created = await repo.create({"slug": "d", "title": "D", "archived": True})

    assert [row["archived"] for row in (archived, bulk, upserted, created)] == [True] * 4
    assert upserted["id"] == third["id"]
    # Reads still hide them, and writes that match by condition skip them.
    assert await repo.find_by_id(first["id"]) is None
    assert await repo.count() == 0
    assert await repo.count(include_archived=True) == 4
    with pytest.raises(NotFoundError):
        await repo.update(first["id"], {"title": "again"})
    with pytest.raises(NotFoundError):
        await repo.bulk_update([(second["id"], {"title": "again"})])
    assert (await repo.get(first["id"], include_archived=True))["title"] == "A"


async def test_only_read_backs_of_writes_are_marked(ext_engine: AsyncEngine) -> None:
    orm, hide = await plugins_orm(ext_engine)
    repo = orm.repository(documents)
    first, second = await repo.create_many(
        [{"slug": "a", "title": "A"}, {"slug": "b", "title": "B"}]
    )
    hide.selects.clear()

    await repo.find_by_id(first["id"])
    await repo.find_by_ids([first["id"], second["id"]])
    await repo.find_all()
    await repo.find({"slug": "a"})
    assert hide.selects
    assert not any(read_back for _, read_back in hide.selects)

    hide.selects.clear()
    await repo.update(first["id"], {"title": "A2"})
    await repo.upsert({"slug": "b", "title": "B2"}, conflict=["slug"])
    # Without RETURNING for UPDATE (MySQL/MariaDB) both writes read their rows back.
    expected = [] if ext_engine.dialect.update_returning else [("ext_documents", True)] * 2
    assert hide.selects == expected

    hide.selects.clear()
    await repo.bulk_update([(first["id"], {"title": "A3"})])
    # bulk_update checks its keys (a read: filtered), then reads its rows back (marked).
    assert hide.selects == [("ext_documents", False), ("ext_documents", True)]


# --- keeping a column out of an upsert's UPDATE branch -------------------------------------


async def test_upsert_keeps_the_hooks_columns_unless_update_names_them(
    ext_engine: AsyncEngine,
) -> None:
    orm, _ = await plugins_orm(ext_engine)
    repo = orm.repository(documents)
    original = await repo.upsert({"slug": "a", "title": "A"}, conflict=["slug"], actor="ada")

    # No update=: every given column but the conflict key, minus what the hook drops.
    again = await repo.upsert({"slug": "a", "title": "A2"}, conflict=["slug"], actor="bob")
    assert (again["id"], again["title"], who(again)) == (original["id"], "A2", ("ada", "bob"))

    # update=[...] is used as given: columns it leaves out keep their values...
    listed = await repo.upsert(
        {"slug": "a", "title": "A3"}, conflict=["slug"], update=["title"], actor="cy"
    )
    assert (listed["title"], who(listed)) == ("A3", ("ada", "bob"))
    # ...and a column it names is overwritten, even one the hook keeps out by default.
    named = await repo.upsert(
        {"slug": "a", "title": "A4"},
        conflict=["slug"],
        update=["title", "created_by", "updated_by"],
        actor="dee",
    )
    assert (named["title"], who(named)) == ("A4", ("dee", "dee"))

    # The hook sees the call's options too.
    rewritten = await repo.upsert(
        {"slug": "a", "title": "A5"}, conflict=["slug"], actor="eve", rewrite_creator=True
    )
    assert who(rewritten) == ("eve", "eve")


async def test_upsert_many_asks_the_hook_once_per_set_of_columns(ext_engine: AsyncEngine) -> None:
    orm, _ = await plugins_orm(ext_engine)
    repo = orm.repository(documents)
    await repo.create_many([{"slug": "a", "title": "A"}, {"slug": "b", "title": "B"}], actor="ada")

    rows = await repo.upsert_many(
        [
            {"slug": "a", "title": "A2"},
            {"slug": "b", "title": "B2", "archived": False},  # another set of columns
            {"slug": "c", "title": "C"},
        ],
        conflict=["slug"],
        actor="bob",
    )

    assert [(row["slug"], row["title"], who(row)) for row in rows] == [
        ("a", "A2", ("ada", "bob")),
        ("b", "B2", ("ada", "bob")),
        ("c", "C", ("bob", "bob")),
    ]
