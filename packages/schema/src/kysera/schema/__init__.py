"""Discover a database's tables, pydantic models and relations: zero-config repositories.

```python
from kysera.schema import discover

schema = await discover(engine)
orm = await schema.create_orm(engine)
repos = schema.repositories(orm)
films = await repos.film.find({"rating": "PG"}, include="actor", limit=10)
```
"""

from kysera.schema.codegen import generate_package
from kysera.schema.commands import describe, gen_command, inspect_command
from kysera.schema.discovery import discover
from kysera.schema.errors import ReadOnlyError, UnknownTableError
from kysera.schema.models import (
    Related,
    TableModels,
    column_python_type,
    schema_models,
    table_models,
)
from kysera.schema.relations import join_table_ends, schema_relations
from kysera.schema.schema import Repositories, Schema
from kysera.schema.views import ViewRepository

__all__ = [
    "ReadOnlyError",
    "Related",
    "Repositories",
    "Schema",
    "TableModels",
    "UnknownTableError",
    "ViewRepository",
    "column_python_type",
    "describe",
    "discover",
    "gen_command",
    "generate_package",
    "inspect_command",
    "join_table_ends",
    "schema_models",
    "schema_relations",
    "table_models",
]
