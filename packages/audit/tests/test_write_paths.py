"""Every write path of an audited repository logs what really happened."""

from __future__ import annotations

from typing import Any

from audit_support import AUDIT_TABLE, Account, accounts, memberships, notes
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditedRepository, AuditPlugin, audit_context, audit_log_table
from kysera.repository import Repository, create_orm


async def audited(engine: AsyncEngine, table: Any = accounts, **options: Any) -> Any:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE, **options)])
    return orm.repository(table)


async def test_create_logs_an_insert_with_the_stored_row(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    with audit_context(user_id=7, request_id="r-1"):
        row = await repo.create({"email": "ann@example.com", "name": "Ann"})

    [entry] = await repo.get_audit_history(row["id"])
    assert entry.operation == "INSERT"
    assert entry.table_name == "au_accounts"
    assert entry.entity_id == str(row["id"])
    assert entry.old_values is None
    assert entry.new_values == row
    assert set(entry.changed_fields) == set(row)
    assert entry.changed_by == "7"
    assert entry.metadata == {"request_id": "r-1"}


async def test_create_many_logs_one_insert_per_row(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    rows = await repo.create_many(
        [{"email": f"u{i}@example.com", "name": f"U{i}"} for i in range(3)]
    )
    count = await repo.create_many([{"email": "x@example.com", "name": "X"}], returning=False)

    assert count == 1
    inserts = await repo.get_table_audit_logs(operation="INSERT")
    assert len(inserts) == 4
    assert {entry.entity_id for entry in inserts} >= {str(row["id"]) for row in rows}


async def test_update_logs_old_new_and_changed_fields(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    row = await repo.create({"email": "bo@example.com", "name": "Bo"})
    await repo.update(row["id"], {"name": "Bob"})

    latest = (await repo.get_audit_history(row["id"]))[0]
    assert latest.operation == "UPDATE"
    assert latest.old_values == row
    assert latest.new_values == {**row, "name": "Bob"}
    assert latest.changed_fields == ["name"]


async def test_no_op_updates_are_skipped_unless_asked(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    row = await repo.create({"email": "cy@example.com", "name": "Cy"})
    await repo.update(row["id"], {"name": "Cy"})
    assert [e.operation for e in await repo.get_audit_history(row["id"])] == ["INSERT"]

    keep = await audited(engine, skip_unchanged=False)
    await keep.update(row["id"], {"name": "Cy"})
    latest = (await keep.get_audit_history(row["id"]))[0]
    assert latest.operation == "UPDATE"
    assert latest.changed_fields == []


async def test_update_many_logs_only_rows_that_changed(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    a = await repo.create({"email": "a@example.com", "name": "same"})
    b = await repo.create({"email": "b@example.com", "name": "other"})
    await repo.create({"email": "c@example.com", "name": "untouched"})

    matched = await repo.update_many({"id": {"$in": [a["id"], b["id"]]}}, {"name": "same"})

    assert matched == 2
    updates = await repo.get_table_audit_logs(operation="UPDATE")
    assert [(e.entity_id, e.changed_fields) for e in updates] == [(str(b["id"]), ["name"])]
    assert updates[0].old_values is not None
    assert updates[0].old_values["name"] == "other"


async def test_bulk_update_logs_each_row(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    a = await repo.create({"email": "a@example.com", "name": "A"})
    b = await repo.create({"email": "b@example.com", "name": "B"})

    await repo.bulk_update([(a["id"], {"name": "A2"}), (b["id"], {"email": "b2@example.com"})])

    updates = {e.entity_id: e for e in await repo.get_table_audit_logs(operation="UPDATE")}
    assert updates[str(a["id"])].changed_fields == ["name"]
    assert updates[str(b["id"])].changed_fields == ["email"]
    assert updates[str(b["id"])].new_values == {**b, "email": "b2@example.com"}


async def test_upsert_logs_insert_or_update_as_it_happened(engine: AsyncEngine) -> None:
    repo = await audited(engine, memberships)
    await repo.upsert({"org_id": 1, "user_id": 1, "role": "member"})
    await repo.upsert({"org_id": 1, "user_id": 1, "role": "admin"})
    await repo.upsert({"org_id": 1, "user_id": 1, "role": "admin"})  # no change: not logged

    history = await repo.get_audit_history((1, 1))
    assert [e.operation for e in history] == ["UPDATE", "INSERT"]
    assert history[0].entity_id == "[1,1]"
    assert history[0].changed_fields == ["role"]
    assert history[0].old_values == {"org_id": 1, "user_id": 1, "role": "member"}


async def test_upsert_many_mixes_inserts_and_updates(engine: AsyncEngine) -> None:
    repo = await audited(engine, memberships)
    await repo.create({"org_id": 2, "user_id": 1, "role": "member"})
    await repo.upsert_many(
        [
            {"org_id": 2, "user_id": 1, "role": "owner"},
            {"org_id": 2, "user_id": 2, "role": "member"},
        ]
    )
    logs = await repo.get_table_audit_logs()
    assert sorted((e.entity_id, e.operation) for e in logs) == [
        ("[2,1]", "INSERT"),
        ("[2,1]", "UPDATE"),
        ("[2,2]", "INSERT"),
    ]


async def test_delete_logs_the_deleted_row(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    row = await repo.create({"email": "d@example.com", "name": "D"})
    assert await repo.delete(row["id"]) is True
    assert await repo.delete(row["id"]) is False

    history = await repo.get_audit_history(row["id"])
    assert [e.operation for e in history] == ["DELETE", "INSERT"]
    assert history[0].old_values == row
    assert history[0].new_values is None


async def test_delete_many_logs_only_ids_that_existed(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    a = await repo.create({"email": "a@example.com", "name": "A"})
    b = await repo.create({"email": "b@example.com", "name": "B"})

    assert await repo.delete_many([a["id"], b["id"], 999_999]) == 2

    deletes = await repo.get_table_audit_logs(operation="DELETE")
    assert sorted(e.entity_id for e in deletes) == sorted([str(a["id"]), str(b["id"])])


async def test_entity_models_are_logged_by_column(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts, entity=Account)
    row = await repo.create({"email": "m@example.com", "name": "M"})
    [entry] = await repo.get_audit_history(row.id)
    assert entry.new_values == row.model_dump()


async def test_capture_flags_leave_values_out(engine: AsyncEngine) -> None:
    repo = await audited(engine, capture_old_values=False, capture_new_values=False)
    row = await repo.create({"email": "f@example.com", "name": "F"})
    await repo.update(row["id"], {"name": "G"})
    history = await repo.get_audit_history(row["id"])
    assert [(e.old_values, e.new_values) for e in history] == [(None, None), (None, None)]
    assert history[0].changed_fields == ["name"]


async def test_tables_and_exclude_tables_choose_what_is_audited(engine: AsyncEngine) -> None:
    only_notes = await create_orm(
        engine, plugins=[AuditPlugin(table=AUDIT_TABLE, tables=["au_notes"])]
    )
    assert not hasattr(only_notes.repository(accounts), "get_audit_history")
    assert hasattr(only_notes.repository(notes), "get_audit_history")

    not_notes = await create_orm(
        engine, plugins=[AuditPlugin(table=AUDIT_TABLE, exclude_tables=["au_notes"])]
    )
    assert not hasattr(not_notes.repository(notes), "get_audit_history")
    repo: AuditedRepository = not_notes.repository(accounts)
    assert isinstance(repo, Repository)


async def test_the_actor_can_come_from_callables(engine: AsyncEngine) -> None:
    repo = await audited(
        engine, get_user_id=lambda: "system", get_metadata=lambda: {"source": "cron", "a": 1}
    )
    row = await repo.create({"email": "s@example.com", "name": "S"})
    with audit_context(user_id="alice", a=2):
        await repo.update(row["id"], {"name": "T"})
    history = await repo.get_audit_history(row["id"])
    assert [(e.changed_by, e.metadata) for e in history] == [
        ("alice", {"source": "cron", "a": 2}),
        ("system", {"source": "cron", "a": 1}),
    ]
    assert [e.id for e in await repo.get_user_changes("alice")] == [history[0].id]


async def test_a_key_made_in_python_is_kept_by_the_one_statement_create(
    kysera_engine: AsyncEngine,
) -> None:
    """A key with a Python-side default (``default=uuid.uuid4``) is sent, not NULL, whether
    the create is one statement (PostgreSQL) or not, and the log names the row."""
    import uuid

    import sqlalchemy as sa

    metadata = sa.MetaData()
    tokens = sa.Table(
        "au_tokens",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True, default=uuid.uuid4),
        sa.Column("label", sa.String(20), nullable=False),
        sa.Column("uses", sa.Integer, nullable=False, default=0),
    )
    log = audit_log_table(metadata, "au_tokens_log")
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
    try:
        orm = await create_orm(kysera_engine, plugins=[AuditPlugin(table="au_tokens_log")])
        repo: Any = orm.repository(tokens)
        made = [await repo.create({"label": f"t{i}"}) for i in range(2)]
        assert all(isinstance(row["id"], uuid.UUID) and row["uses"] == 0 for row in made)
        async with kysera_engine.connect() as connection:
            logged = (await connection.execute(sa.select(log.c.entity_id))).scalars().all()
        assert sorted(logged) == sorted(str(row["id"]) for row in made)
    finally:
        async with kysera_engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
