"""kysera.rls re-exports every public name of its modules, in a sorted `__all__`."""

import importlib
import pkgutil

import kysera.rls as package


def test_all_is_sorted_and_complete() -> None:
    public: set[str] = set()
    for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        if not module.ispkg and not module.name.rpartition(".")[2].startswith("_"):
            public.update(getattr(importlib.import_module(module.name), "__all__", ()))

    assert package.__all__ == sorted(package.__all__)
    assert set(package.__all__) == public
    assert all(hasattr(package, name) for name in package.__all__)
