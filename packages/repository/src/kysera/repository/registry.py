"""The validated, ordered set of plugins an ORM runs, with a typed way to call their hooks.

Order. Plugins are ordered topologically by `requires` (a required plugin comes first, i.e.
it is *outer*: its interceptor sees the statement before the plugins that need it, and its
mixin's override runs first and reaches theirs through `super()`); plugins the requirements
leave unordered come by `priority` (higher first), then by `name`. The order therefore never
depends on registration order or on the order in which distributions were installed.

Calling. pluggy calls implementations last-registered-first and does not chain results, so
the registry does not call hooks through `pm.hook`: it reads each hook's implementations
from the plugin manager once, in plugin order, and calls them itself. pluggy still does the
rest of the work: it finds the `@hookimpl` methods, checks their parameters against the
specifications and, through `check_pending()`, reports implementations of unknown hooks.
"""

from __future__ import annotations

import graphlib
import heapq
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, final

import pluggy
from sqlalchemy import Table
from sqlalchemy.sql.base import Executable

from kysera.repository.context import QueryContext
from kysera.repository.errors import PluginError
from kysera.repository.hooks import PROJECT_NAME, KyseraHookSpecs

__all__ = ["ENTRY_POINT_GROUP", "PluginRegistry"]

ENTRY_POINT_GROUP = "kysera.plugins"
"""The entry point group that `PluginRegistry(..., discover=True)` loads plugins from."""

_Interceptor = Callable[[QueryContext], Any]


@final
class PluginRegistry:
    """A validated, ordered set of plugins, with typed calls to their hooks.

    ```python
    registry = PluginRegistry([TimestampsPlugin(), TenantPlugin(), AuditPlugin()])
    registry.names  # ordered by requirements, then priority, then name
    statement = registry.intercept(QueryContext("select", users, select(users)))
    ```

    Args:
        plugins: Plugin objects (see `Plugin`). Their order here does not matter.
        discover: Also load the plugins of the `kysera.plugins` entry point group. An
            entry point names a plugin object, or a class that is instantiated without
            arguments. A plugin given in `plugins` wins over a discovered plugin of the
            same name, so an installed plugin can be configured explicitly.
        hookspecs: Further hook specification classes or modules (for plugin objects that
            also implement hooks of other Kysera packages, such as migrations), so that
            their implementations are not reported as unknown hooks. Implementations
            marked `@hookimpl(optionalhook=True)` are never reported.

    Raises:
        PluginError: Two plugins share a name; a required plugin is missing; two
            conflicting plugins are both present; requirements form a cycle; a plugin
            implements a hook that does not exist, with parameters the hook does not have,
            asynchronously, or as a pluggy wrapper / `tryfirst` / `trylast` (order comes
            from `requires` and `priority` instead); or a discovered plugin cannot be loaded.
            The error's `plugins` names the plugins involved.

    Attributes:
        plugins: The plugins in order, outermost first.
        names: Their names, in the same order.
        intercepts: Whether any plugin implements `kysera_intercept_query`; when it is
            `False` a repository can skip building a `QueryContext` altogether.
        plugin_manager: The underlying `pluggy.PluginManager`, for hooks of other packages.
    """

    __slots__ = (
        "_change_feeds",
        "_configurers",
        "_interceptors",
        "_mixin_factories",
        "intercepts",
        "names",
        "plugin_manager",
        "plugins",
    )

    plugins: tuple[object, ...]
    names: tuple[str, ...]
    intercepts: bool
    plugin_manager: pluggy.PluginManager

    def __init__(
        self,
        plugins: Sequence[object] = (),
        *,
        discover: bool = False,
        hookspecs: Sequence[type | ModuleType] = (),
    ) -> None:
        candidates = list(plugins)
        if discover:
            explicit = {_name_of(plugin) for plugin in candidates}
            candidates += [
                plugin for plugin in _discover_plugins() if _name_of(plugin) not in explicit
            ]
        self.plugins = _order(candidates)
        self.names = tuple(_name_of(plugin) for plugin in self.plugins)
        self.plugin_manager = _plugin_manager(self.plugins, self.names, hookspecs)

        hook = self.plugin_manager.hook
        self._configurers = _implementations(hook.kysera_configure, self.names, ("orm",))
        self._mixin_factories = _implementations(
            hook.kysera_repository_mixin, self.names, ("table", "orm")
        )
        self._interceptors: tuple[tuple[str, _Interceptor], ...] = tuple(
            (name, _as_interceptor(function, arguments))
            for name, function, arguments in _implementations(
                hook.kysera_intercept_query, self.names, ("context",)
            )
        )
        self.intercepts = bool(self._interceptors)
        self._change_feeds = _implementations(
            hook.kysera_follow_changes,
            self.names,
            ("orm", "tables", "after", "poll_interval", "batch_size"),
        )

    def configure(self, orm: Any) -> None:
        """Call every plugin's `kysera_configure(orm)`, in plugin order.

        Args:
            orm: The ORM object being created.
        """
        for _name, function, arguments in self._configurers:
            function(**_select(arguments, orm=orm))

    def intercept(self, context: QueryContext) -> Executable:
        """Fold `context.statement` through every `kysera_intercept_query`, in plugin order.

        Each implementation sees the statement as the plugins before it left it.

        Args:
            context: The statement and the call's options; updated in place.

        Returns:
            The final statement (also left in `context.statement`).

        Raises:
            PluginError: An implementation returned something that is not a statement.
        """
        for name, interceptor in self._interceptors:
            replacement = interceptor(context)
            if replacement is not None:
                if not isinstance(replacement, Executable):
                    raise PluginError(
                        f"plugin {name!r}: kysera_intercept_query returned {replacement!r}, "
                        "not a SQLAlchemy statement (return a statement, or None to keep "
                        "context.statement)",
                        plugins=[name],
                    )
                context.statement = replacement
        return context.statement

    def mixins(self, table: Table, orm: Any) -> list[type]:
        """Collect the plugins' repository mixins for `table`, in plugin order.

        Compose them as `type(name, (*mixins, BaseRepository), {})`: the first plugin's
        override runs first.

        Args:
            table: The table the repository is for.
            orm: The ORM object the repository belongs to.

        Returns:
            The mixin classes; plugins that returned `None` are left out.

        Raises:
            PluginError: An implementation returned something that is not a class.
        """
        found: list[type] = []
        for name, function, arguments in self._mixin_factories:
            mixin = function(**_select(arguments, table=table, orm=orm))
            if mixin is None:
                continue
            if not isinstance(mixin, type):
                raise PluginError(
                    f"plugin {name!r}: kysera_repository_mixin returned {mixin!r}, "
                    "not a class (return a mixin class, or None)",
                    plugins=[name],
                )
            found.append(mixin)
        return found

    def follow_changes(
        self,
        orm: Any,
        *,
        tables: tuple[str, ...] | None,
        after: int,
        poll_interval: float,
        batch_size: int,
    ) -> AsyncIterator[Any] | None:
        """The first stream a plugin's `kysera_follow_changes` gives, in plugin order.

        Returns:
            The stream, or `None` when no plugin keeps a change feed.

        Raises:
            PluginError: An implementation returned something that is not an async iterator.
        """
        for name, function, arguments in self._change_feeds:
            stream = function(
                **_select(
                    arguments,
                    orm=orm,
                    tables=tables,
                    after=after,
                    poll_interval=poll_interval,
                    batch_size=batch_size,
                )
            )
            if stream is None:
                continue
            if not isinstance(stream, AsyncIterator):
                raise PluginError(
                    f"plugin {name!r}: kysera_follow_changes returned {stream!r}, "
                    "not an async iterator (return one, or None)",
                    plugins=[name],
                )
            return stream
        return None

    def __iter__(self) -> Iterator[object]:
        return iter(self.plugins)

    def __len__(self) -> int:
        return len(self.plugins)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __repr__(self) -> str:
        return f"PluginRegistry({list(self.names)!r})"


def _name_of(plugin: object) -> str:
    if isinstance(plugin, type):
        # Its hooks would be unbound functions; the class attribute `name` hides the slip.
        raise PluginError(
            f"{plugin.__qualname__} is a class; pass a plugin instance: {plugin.__qualname__}()",
            plugins=[str(getattr(plugin, "name", plugin.__qualname__))],
        )
    name = getattr(plugin, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(
            f"plugin {plugin!r} has no name: give it a `name` attribute (a non-empty str)",
            plugins=[repr(plugin)],
        )
    return name


def _priority_of(plugin: object, name: str) -> int:
    priority = getattr(plugin, "priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise PluginError(
            f"plugin {name!r}: priority must be an int, got {priority!r}", plugins=[name]
        )
    return priority


def _names_in(plugin: object, name: str, attribute: str) -> tuple[str, ...]:
    value = getattr(plugin, attribute, ())
    # A bare string is a common slip for a one-element tuple; iterating it would give letters.
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise PluginError(
            f"plugin {name!r}: {attribute} must be a tuple of plugin names, got {value!r}",
            plugins=[name],
        )
    return tuple(value)


def _order(plugins: Sequence[object]) -> tuple[object, ...]:
    """Validate the set and order it: requirements first, then priority, then name."""
    by_name: dict[str, object] = {}
    for plugin in plugins:
        name = _name_of(plugin)
        if name in by_name:
            raise PluginError(
                f"two plugins are named {name!r} ({by_name[name]!r} and {plugin!r}); "
                "plugin names must be unique",
                plugins=[name],
            )
        by_name[name] = plugin

    # Sorted, so that every error below is the same whatever the registration order.
    names = sorted(by_name)
    priority = {name: _priority_of(by_name[name], name) for name in names}
    requires = {name: _names_in(by_name[name], name, "requires") for name in names}
    conflicts = {name: _names_in(by_name[name], name, "conflicts") for name in names}

    for name in names:
        missing = [required for required in requires[name] if required not in by_name]
        if missing:
            raise PluginError(
                f"plugin {name!r} requires {_quoted(missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not registered "
                f"(registered: {_quoted(names) or 'none'})",
                plugins=[name, *missing],
            )
    for name in names:
        for other in sorted(conflicts[name]):
            if other in by_name and other != name:
                raise PluginError(
                    f"plugins {name!r} and {other!r} conflict: {name!r} declares "
                    f"conflicts=({other!r},); register only one of them",
                    plugins=[name, other],
                )

    sorter = graphlib.TopologicalSorter({name: requires[name] for name in names})
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        # graphlib lists each node before the nodes that require it; reversed, each entry
        # requires the next one.
        cycle: list[str] = list(reversed(error.args[1]))
        raise PluginError(
            "plugins require each other in a cycle: "
            + " -> ".join(repr(name) for name in cycle)
            + " (each requires the next)",
            plugins=sorted(set(cycle)),
        ) from None

    ready: list[tuple[int, str]] = []
    ordered: list[object] = []
    while sorter.is_active():
        for name in sorter.get_ready():
            heapq.heappush(ready, (-priority[name], name))
        _, name = heapq.heappop(ready)
        ordered.append(by_name[name])
        sorter.done(name)
    return tuple(ordered)


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _plugin_manager(
    plugins: Sequence[object], names: Sequence[str], hookspecs: Sequence[type | ModuleType]
) -> pluggy.PluginManager:
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(KyseraHookSpecs)
    for specification in hookspecs:
        manager.add_hookspecs(specification)
    for plugin, name in zip(plugins, names, strict=True):
        try:
            manager.register(plugin, name=name)
        except pluggy.PluginValidationError as error:
            detail = " ".join(str(error).split())
            raise PluginError(
                f"plugin {name!r} has an invalid hook implementation: {detail}", plugins=[name]
            ) from error
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        name = manager.get_name(error.plugin) or repr(error.plugin)
        unknown = sorted(
            caller.name
            for caller in manager.get_hookcallers(error.plugin) or ()
            if not caller.has_spec()
        )
        known = sorted(
            caller.name
            for caller in manager.hook.__dict__.values()
            if isinstance(caller, pluggy.HookCaller) and caller.has_spec()
        )
        raise PluginError(
            f"plugin {name!r} implements unknown hook(s) {_quoted(unknown)} "
            f"(misspelled?); known hooks: {_quoted(known)}",
            plugins=[name],
        ) from error

    hook = manager.hook
    for caller in (
        hook.kysera_configure,
        hook.kysera_follow_changes,
        hook.kysera_intercept_query,
        hook.kysera_repository_mixin,
    ):
        for implementation in caller.get_hookimpls():
            _check_implementation(caller.name, implementation)
    return manager


def _check_implementation(hook: str, implementation: pluggy.HookImpl) -> None:
    name = implementation.plugin_name
    if implementation.wrapper or implementation.hookwrapper:
        problem = "is a pluggy wrapper"
    elif implementation.tryfirst or implementation.trylast:
        problem = "uses tryfirst/trylast"
    elif inspect.iscoroutinefunction(implementation.function):
        raise PluginError(
            f"plugin {name!r}: {hook} is async; Kysera hooks are synchronous (they build "
            "statements, the repository does the I/O)",
            plugins=[name],
        )
    else:
        return
    raise PluginError(
        f"plugin {name!r}: {hook} {problem}; Kysera calls hooks in plugin order, so set the "
        "plugin's `priority` or `requires` instead",
        plugins=[name],
    )


def _implementations(
    caller: pluggy.HookCaller, names: Sequence[str], parameters: tuple[str, ...]
) -> tuple[tuple[str, Callable[..., Any], tuple[str, ...]], ...]:
    """The hook's implementations in plugin order, each with the parameters it takes."""
    rank = {name: index for index, name in enumerate(names)}
    # get_hookimpls() lists a plugin's own implementations in a fixed order (attribute
    # order); the stable sort keeps it.
    found = sorted(caller.get_hookimpls(), key=lambda impl: rank[impl.plugin_name])
    return tuple(
        (
            implementation.plugin_name,
            implementation.function,
            tuple(argument for argument in parameters if argument in implementation.argnames),
        )
        for implementation in found
    )


def _select(arguments: tuple[str, ...], **values: Any) -> dict[str, Any]:
    return {argument: values[argument] for argument in arguments}


def _as_interceptor(function: Callable[..., Any], arguments: tuple[str, ...]) -> _Interceptor:
    if arguments:
        return function

    # pluggy lets an implementation leave out parameters it does not use.
    def without_context(context: QueryContext) -> Any:
        return function()

    return without_context


def _discover_plugins() -> list[object]:
    """Load the `kysera.plugins` entry points, sorted by name for a stable error order."""
    found: list[object] = []
    for entry_point in sorted(
        entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value)
    ):
        label = f"{entry_point.name} = {entry_point.value}"
        try:
            loaded = entry_point.load()
            plugin = loaded() if isinstance(loaded, type) else loaded
        except Exception as error:
            raise PluginError(
                f"cannot load plugin entry point {label!r} of group {ENTRY_POINT_GROUP!r}: "
                f"{type(error).__name__}: {error}",
                plugins=[entry_point.name],
            ) from error
        if not isinstance(getattr(plugin, "name", None), str):
            raise PluginError(
                f"plugin entry point {label!r} of group {ENTRY_POINT_GROUP!r} gave "
                f"{plugin!r}, which has no `name`",
                plugins=[entry_point.name],
            )
        found.append(plugin)
    return found
