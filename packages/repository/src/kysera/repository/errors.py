"""Errors raised by kysera.repository.

```
KyseraError (kysera.core)
└── PluginError        PLUGIN_ERROR    .plugins
```

Database, validation and lookup failures use kysera.core's errors (`DatabaseError`,
`ValidationError`, `NotFoundError`, `InvalidQueryError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from kysera.core import KyseraError

__all__ = ["PluginError"]


class PluginError(KyseraError):
    """The plugin set is invalid: duplicate name, missing requirement, conflict or cycle.

    Attributes:
        plugins: The names of the plugins involved.
    """

    code: ClassVar[str] = "PLUGIN_ERROR"

    def __init__(self, message: str = "", *, plugins: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.plugins = tuple(plugins)

    def _details(self) -> dict[str, Any]:
        return {"plugins": list(self.plugins)}
