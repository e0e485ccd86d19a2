"""Order specs on real databases: "col", "-col", (col, direction), expressions, and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import InvalidQueryError
from kysera.repository import OrderSpec, compile_order_by

METADATA = sa.MetaData()
SCORES = sa.Table(
    "wh_scores",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("team", sa.String(10), nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
)
ROWS = [
    {"id": 1, "team": "red", "points": 10},
    {"id": 2, "team": "blue", "points": 30},
    {"id": 3, "team": "red", "points": 30},
    {"id": 4, "team": "green", "points": 20},
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scores(kysera_engine: AsyncEngine) -> AsyncIterator[sa.Table]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(METADATA.drop_all)
        await connection.run_sync(METADATA.create_all)
        await connection.execute(SCORES.insert(), ROWS)
    yield SCORES
    async with kysera_engine.begin() as connection:
        await connection.run_sync(METADATA.drop_all)


async def ordered_ids(engine: AsyncEngine, order_by: Any) -> list[int]:
    statement = sa.select(SCORES.c.id).order_by(*compile_order_by(SCORES, order_by))
    async with engine.connect() as connection:
        return list((await connection.execute(statement)).scalars())


ORDERS: list[tuple[str, Any, list[int]]] = [
    ("a column name sorts ascending", "points", [1, 4, 2, 3]),
    ("a leading minus sorts descending", "-id", [4, 3, 2, 1]),
    ("a (column, direction) pair", ("id", "desc"), [4, 3, 2, 1]),
    ("directions ignore case", ("id", "Asc"), [1, 2, 3, 4]),
    ("a list of keys breaks ties in order", ["-points", "-id"], [3, 2, 4, 1]),
    ("pairs in a list", [("points", "desc"), ("id", "asc")], [2, 3, 4, 1]),
    ("a tuple of names is several keys", ("team", "id"), [2, 4, 1, 3]),
    ("a SQLAlchemy expression", SCORES.c.id.desc(), [4, 3, 2, 1]),
    ("expressions mix with specs", [SCORES.c.team.asc(), "-points"], [2, 4, 3, 1]),
    ("a computed expression", [(SCORES.c.points % 20).desc(), "id"], [1, 2, 3, 4]),
]


@pytest.mark.parametrize(
    ("order_by", "expected"), [case[1:] for case in ORDERS], ids=[case[0] for case in ORDERS]
)
async def test_order_specs(
    kysera_engine: AsyncEngine, scores: sa.Table, order_by: Any, expected: list[int]
) -> None:
    assert await ordered_ids(kysera_engine, order_by) == expected


@pytest.mark.parametrize("order_by", [None, []])
def test_no_ordering(order_by: Any) -> None:
    assert compile_order_by(SCORES, order_by) == []


def test_an_expression_passes_through_unchanged() -> None:
    expression = SCORES.c.points.desc()
    assert compile_order_by(SCORES, expression) == [expression]


def test_order_spec_is_a_public_type() -> None:
    spec: OrderSpec = ("points", "desc")
    assert [str(clause) for clause in compile_order_by(SCORES, [spec, "-id"])] == [
        "wh_scores.points DESC",
        "wh_scores.id DESC",
    ]


ERRORS: list[tuple[Any, str]] = [
    ("pionts", "unknown column 'pionts' for table wh_scores; valid columns: id, points, team"),
    ("pionts", "(did you mean 'points'?)"),
    ("-nope", "order_by: unknown column 'nope'"),
    (["id", "score"], "order_by[1]: unknown column 'score'"),
    (["points", "desc"], "order_by[1]: unknown column 'desc'"),
    (["points", "desc"], "write ('col', 'desc') as a tuple, or '-col'"),
    ([("points", "down")], "unknown direction 'down'; valid directions: asc, desc"),
    ([("points", 1)], "unknown direction 1; valid directions: asc, desc"),
    ([(1, "asc")], "a column name must be a string, not int 1"),
    ([("points", "desc", "x")], "expected 'col', '-col', ('col', 'asc'|'desc')"),
    ("", "unknown column ''"),
    ("-", "unknown column ''"),
    (5, "order_by must be a column name, a (column, direction) pair"),
    ({"points": "desc"}, "not dict"),
    ([["id"]], "order_by[0]: expected 'col', '-col'"),
    ([None], "order_by[0]: expected 'col', '-col'"),
    ("points; DROP TABLE wh_scores", "unknown column 'points; DROP TABLE wh_scores'"),
]


@pytest.mark.parametrize(("order_by", "message"), ERRORS, ids=[message for _, message in ERRORS])
def test_invalid_order_raises_invalid_query_error(order_by: Any, message: str) -> None:
    with pytest.raises(InvalidQueryError) as raised:
        compile_order_by(SCORES, order_by)
    assert message in str(raised.value)
