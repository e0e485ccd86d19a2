"""tables.py spells every SQLAlchemy type so that evaluating it gives the same type back."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from kysera.schema.codegen import _render_type


def _instances() -> list[Any]:
    """Every type class of SQLAlchemy and its three dialects that builds without arguments,
    plus types whose arguments are types."""
    found: dict[str, Any] = {}
    for module in (sa, postgresql, mysql, sqlite):
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, sa.types.TypeEngine):
                try:
                    found[f"{module.__name__}.{name}"] = value()
                except Exception:  # needs arguments: covered below where it matters
                    continue
    return [
        *found.values(),
        postgresql.JSONB(astext_type=sa.Text()),
        postgresql.ARRAY(postgresql.JSONB()),
        postgresql.ENUM("G", "PG-13", "NC-17", name="mpaa_rating"),
        mysql.SET("Trailers", "Deleted Scenes"),
        mysql.ENUM("a", "b(c)"),
        sa.Numeric(5, 2),
        postgresql.INTERVAL(fields="DAY TO SECOND"),
    ]


@pytest.mark.parametrize("sql_type", _instances(), ids=lambda t: repr(t)[:60])
def test_a_rendered_type_evaluates_to_the_same_type(sql_type: Any) -> None:
    rendered = _render_type(sql_type)
    namespace = {"sa": sa, "postgresql": postgresql, "mysql": mysql, "sqlite": sqlite}
    try:
        again = eval(rendered, namespace)  # the generated text, as tables.py runs it
    except NameError as error:
        pytest.fail(f"{rendered}: {error}")
    assert repr(again) == repr(sql_type)
    assert type(again) is type(sql_type)
