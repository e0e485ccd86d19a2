"""Every read path hides soft-deleted rows; include_deleted=True shows them again."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from soft_delete_support import post_tags, posts, tags, users

from kysera.core import NotFoundError
from kysera.repository import Orm, many_to_many


async def seed(orm: Orm) -> tuple[Any, list[dict[str, Any]]]:
    repo = orm.repository(users)
    rows = await repo.create_many(
        [{"email": f"{name}@example.com", "name": name} for name in ("ann", "bob", "cid")]
    )
    await repo.soft_delete(rows[1]["id"])
    return repo, rows


async def test_repository_reads_hide_deleted_rows(orm: Orm) -> None:
    repo, (ann, bob, _cid) = await seed(orm)

    assert await repo.find_by_id(bob["id"]) is None
    with pytest.raises(NotFoundError):
        await repo.get(bob["id"])
    assert {u["name"] for u in await repo.find_by_ids([ann["id"], bob["id"]])} == {"ann"}
    assert [u["name"] for u in await repo.find_all(order_by="name")] == ["ann", "cid"]
    assert [u["name"] for u in await repo.find({"name": {"$in": ["bob", "cid"]}})] == ["cid"]
    assert await repo.find({"name": "bob"}, columns=["id"]) == []
    assert await repo.find_one({"name": "bob"}) is None
    assert await repo.count() == 2
    assert await repo.exists({"name": "bob"}) is False
    items, total = await repo.find_and_count(order_by="name", limit=1)
    assert ([u["name"] for u in items], total) == (["ann"], 2)
    page = await repo.paginate(page=1, limit=10)
    assert ([u["name"] for u in page.items], page.total) == (["ann", "cid"], 2)
    keyset = await repo.paginate_cursor(limit=1)
    following = await repo.paginate_cursor(limit=1, after=keyset.next_cursor)
    assert [u["name"] for u in keyset.items + following.items] == ["ann", "cid"]
    assert following.has_next is False


async def test_include_deleted_shows_them_per_call(orm: Orm) -> None:
    repo, (ann, bob, _cid) = await seed(orm)
    shown = {"include_deleted": True}

    assert (await repo.find_by_id(bob["id"], **shown))["name"] == "bob"
    assert (await repo.get(bob["id"], **shown))["deleted_at"] is not None
    assert len(await repo.find_by_ids([ann["id"], bob["id"]], **shown)) == 2
    assert [u["name"] for u in await repo.find_all(order_by="name", **shown)] == [
        "ann",
        "bob",
        "cid",
    ]
    assert (await repo.find_one({"name": "bob"}, **shown)) is not None
    assert await repo.count(**shown) == 3
    assert await repo.exists({"name": "bob"}, **shown) is True
    assert (await repo.find_and_count(**shown))[1] == 3
    assert (await repo.paginate(page=1, limit=10, **shown)).total == 3
    assert len((await repo.paginate_cursor(limit=10, **shown)).items) == 3
    # ...and the next call without the option hides them again.
    assert await repo.count() == 2


async def test_hand_written_selects_and_joins(orm: Orm) -> None:
    _, (ann, bob, _cid) = await seed(orm)
    post_repo = orm.repository(posts)
    await post_repo.create_many(
        [
            {"user_id": ann["id"], "title": "ann-live"},
            {"user_id": ann["id"], "title": "ann-gone"},
            {"user_id": bob["id"], "title": "bob-live"},
        ]
    )
    gone = await post_repo.find_one({"title": "ann-gone"})
    await post_repo.soft_delete(gone["id"])

    plain = await orm.execute(sa.select(users.c.name).order_by(users.c.name))
    assert plain.scalars().all() == ["ann", "cid"]

    inner = sa.select(users.c.name, posts.c.title).join_from(users, posts).order_by(posts.c.title)
    assert [tuple(row) for row in await orm.execute(inner)] == [("ann", "ann-live")]

    # LEFT JOIN: the filter of the optional side goes into ON, so users keep their row.
    left = (
        sa.select(users.c.name, posts.c.title)
        .outerjoin_from(users, posts)
        .order_by(users.c.name, posts.c.title)
    )
    assert [tuple(row) for row in await orm.execute(left)] == [
        ("ann", "ann-live"),
        ("cid", None),
    ]
    # The same through select_from(join) and with the tables the other way round.
    right_side = (
        sa.select(posts.c.title, users.c.name)
        .select_from(posts.outerjoin(users, posts.c.user_id == users.c.id))
        .order_by(posts.c.title)
    )
    assert [tuple(row) for row in await orm.execute(right_side)] == [
        ("ann-live", "ann"),
        ("bob-live", None),
    ]
    # An alias is filtered as its table.
    author = users.alias("author")
    aliased = sa.select(author.c.name).order_by(author.c.name)
    assert (await orm.execute(aliased)).scalars().all() == ["ann", "cid"]

    # Nested SELECTs are filtered too: IN, EXISTS, a subquery in FROM.
    with_posts = sa.select(users.c.name).where(users.c.id.in_(sa.select(posts.c.user_id)))
    assert (await orm.execute(with_posts)).scalars().all() == ["ann"]
    posting = sa.select(users.c.name).where(sa.exists().where(posts.c.user_id == users.c.id))
    assert (await orm.execute(posting)).scalars().all() == ["ann"]
    counts = (
        sa.select(posts.c.user_id, sa.func.count().label("n")).group_by(posts.c.user_id).subquery()
    )
    per_user = sa.select(users.c.name, counts.c.n).join(counts, counts.c.user_id == users.c.id)
    assert [tuple(row) for row in await orm.execute(per_user)] == [("ann", 1)]

    everything = await orm.execute(
        sa.select(sa.func.count()).select_from(posts), include_deleted=True
    )
    assert everything.scalar_one() == 3


@pytest.mark.kysera_databases("sqlite", "postgresql")  # MySQL/MariaDB have no FULL JOIN
async def test_full_outer_join_hides_deleted_rows_on_both_sides(orm: Orm) -> None:
    _, (ann, bob, _cid) = await seed(orm)
    post_repo = orm.repository(posts)
    await post_repo.create_many(
        [{"user_id": ann["id"], "title": "ann-live"}, {"user_id": bob["id"], "title": "bob-live"}]
    )
    statement = (
        sa.select(users.c.name, posts.c.title)
        .join_from(users, posts, users.c.id == posts.c.user_id, full=True)
        .order_by(posts.c.title, users.c.name)
    )
    rows = {tuple(row) for row in await orm.execute(statement)}
    assert rows == {("ann", "ann-live"), (None, "bob-live"), ("cid", None)}


async def test_tables_without_the_column_are_untouched(orm: Orm) -> None:
    repo = orm.repository(tags)
    await repo.create({"label": "x"})
    assert (await orm.execute(sa.select(tags.c.label))).scalars().all() == ["x"]
    assert not hasattr(repo, "soft_delete")


async def test_each_select_of_a_union_hides_deleted_rows(orm: Orm) -> None:
    await seed(orm)
    names = sa.union(
        sa.select(users.c.name).where(users.c.name < "c"),
        sa.select(users.c.name).where(users.c.name >= "b"),
    ).order_by("name")
    # bob is deleted: before, a UNION passed orm.execute unfiltered and returned him.
    assert (await orm.execute(names)).scalars().all() == ["ann", "cid"]
    shown = await orm.execute(names, include_deleted=True)
    assert shown.scalars().all() == ["ann", "bob", "cid"]


async def test_a_soft_deleted_link_of_a_join_table_pairs_nothing(orm: Orm) -> None:
    orm.relate(many_to_many(posts, "tags", tags, through=post_tags))
    (ann,) = await orm.repository(users).create_many([{"email": "a@x.org", "name": "ann"}])
    post = await orm.repository(posts).create({"user_id": ann["id"], "title": "Hello"})
    made = await orm.repository(tags).create_many([{"label": "kept"}, {"label": "unlinked"}])
    links = orm.repository(post_tags)
    for tag in made:
        await links.create({"post_id": post["id"], "tag_id": tag["id"]})
    await links.soft_delete({"post_id": post["id"], "tag_id": made[1]["id"]})
    repo = orm.repository(posts)

    found = await repo.find_by_id(post["id"], include="tags")
    every = await repo.find_by_id(post["id"], include="tags", include_deleted=True)
    counted = await repo.find_by_id(post["id"], include={"tags": {"count": True}})

    assert found is not None
    assert [tag["label"] for tag in found["tags"]] == ["kept"]
    assert every is not None
    assert sorted(tag["label"] for tag in every["tags"]) == ["kept", "unlinked"]
    assert counted is not None
    assert counted["tags_count"] == 1
