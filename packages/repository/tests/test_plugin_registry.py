"""PluginRegistry: validation of the plugin set, its order, and calls to the hooks."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.sql import Select

from kysera.repository import (
    KyseraHookSpecs,
    PluginError,
    PluginRegistry,
    QueryContext,
    hookimpl,
    hookspec,
)

metadata = sa.MetaData()
items = sa.Table(
    "plugin_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer),
    sa.Column("deleted_at", sa.DateTime),
)


class Named:
    """A plugin with no hooks; the attributes are what ordering and validation look at."""

    def __init__(
        self,
        name: str,
        *,
        priority: int = 0,
        requires: tuple[str, ...] = (),
        conflicts: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.priority = priority
        self.requires = requires
        self.conflicts = conflicts

    def __repr__(self) -> str:
        return f"Named({self.name!r})"


def names_of(*plugins: object) -> tuple[str, ...]:
    return PluginRegistry(plugins).names


# --- validation -----------------------------------------------------------------------------


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(PluginError, match="two plugins are named 'audit'") as caught:
        PluginRegistry([Named("audit"), Named("timestamps"), Named("audit")])
    assert caught.value.plugins == ("audit",)
    assert caught.value.code == "PLUGIN_ERROR"
    assert caught.value.to_dict()["plugins"] == ["audit"]


def test_a_missing_requirement_names_both_plugins() -> None:
    with pytest.raises(PluginError, match="'audit' requires 'soft_delete', which is not") as caught:
        PluginRegistry([Named("audit", requires=("soft_delete",)), Named("timestamps")])
    assert caught.value.plugins == ("audit", "soft_delete")
    assert "registered: 'audit', 'timestamps'" in str(caught.value)


def test_conflicting_plugins_are_refused_whichever_declares_it() -> None:
    with pytest.raises(PluginError, match="'hard' and 'soft' conflict") as caught:
        PluginRegistry([Named("soft"), Named("hard", conflicts=("soft",))])
    assert caught.value.plugins == ("hard", "soft")
    with pytest.raises(PluginError, match="'hard' and 'soft' conflict"):
        PluginRegistry([Named("soft"), Named("hard", conflicts=("soft",))][::-1])


def test_a_conflict_with_an_absent_plugin_is_fine() -> None:
    assert names_of(Named("hard", conflicts=("soft",))) == ("hard",)


def test_a_requirement_cycle_names_the_plugins_in_it() -> None:
    plugins = [
        Named("a", requires=("c",)),
        Named("b", requires=("a",)),
        Named("c", requires=("b",)),
        Named("d", requires=("a",)),  # depends on the cycle, but is not part of it
    ]
    for permutation in itertools.permutations(plugins):
        with pytest.raises(PluginError, match="cycle") as caught:
            PluginRegistry(permutation)
        assert caught.value.plugins == ("a", "b", "c")
        assert "'a' -> 'c' -> 'b' -> 'a'" in str(caught.value)


def test_a_plugin_requiring_itself_is_a_cycle() -> None:
    with pytest.raises(PluginError, match="cycle") as caught:
        PluginRegistry([Named("selfish", requires=("selfish",))])
    assert caught.value.plugins == ("selfish",)


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (object(), "has no name"),
        (Named(""), "has no name"),
        (Named("p", priority="high"), "priority must be an int"),  # type: ignore[arg-type]
        (Named("p", priority=True), "priority must be an int"),
        (Named("p", requires="audit"), "requires must be a tuple of plugin names"),  # type: ignore[arg-type]
        (Named("p", conflicts=(1,)), "conflicts must be a tuple of plugin names"),  # type: ignore[arg-type]
    ],
)
def test_malformed_plugin_attributes_are_refused(plugin: object, message: str) -> None:
    with pytest.raises(PluginError, match=message):
        PluginRegistry([plugin])


# --- order ----------------------------------------------------------------------------------


def test_a_plugin_class_instead_of_an_instance_is_refused() -> None:
    with pytest.raises(PluginError, match=r"TenantScope is a class; pass a plugin instance"):
        PluginRegistry([TenantScope])


def test_higher_priority_runs_first_and_ties_go_by_name() -> None:
    assert names_of(Named("b"), Named("a"), Named("z", priority=10), Named("m", priority=-5)) == (
        "z",
        "a",
        "b",
        "m",
    )


def test_required_plugins_come_before_the_plugins_that_need_them() -> None:
    # "audit" has the highest priority but needs "soft_delete", which must come first.
    registry = PluginRegistry(
        [
            Named("audit", priority=100, requires=("soft_delete",)),
            Named("soft_delete", priority=-100),
            Named("timestamps"),
        ]
    )
    assert registry.names == ("timestamps", "soft_delete", "audit")
    assert [plugin.name for plugin in registry.plugins] == list(registry.names)  # type: ignore[attr-defined]
    assert list(registry) == list(registry.plugins)
    assert len(registry) == 3
    assert "audit" in registry
    assert "missing" not in registry


SAMPLE = [
    Named("audit", priority=5, requires=("soft_delete",)),
    Named("soft_delete"),
    Named("timestamps", priority=5),
    Named("tenant", priority=50),
    Named("cache", requires=("tenant", "timestamps")),
    Named("metrics", priority=-1),
]


def test_the_order_is_the_same_for_every_registration_order() -> None:
    expected = ("tenant", "timestamps", "cache", "soft_delete", "audit", "metrics")
    for permutation in itertools.permutations(SAMPLE):
        assert PluginRegistry(permutation).names == expected


@st.composite
def plugin_sets(draw: st.DrawFn) -> list[Named]:
    """Acyclic plugin sets: a plugin may only require plugins that precede it in creation."""
    count = draw(st.integers(min_value=0, max_value=7))
    plugins: list[Named] = []
    for index in range(count):
        earlier = [plugin.name for plugin in plugins]
        requires = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        priority = draw(st.integers(min_value=-2, max_value=2))
        plugins.append(Named(f"p{index}", priority=priority, requires=tuple(requires)))
    return plugins


@settings(deadline=None, max_examples=150)
@given(plugins=plugin_sets(), data=st.data())
def test_order_respects_requirements_then_priority_then_name(
    plugins: list[Named], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(plugins))
    order = PluginRegistry(shuffled).names
    assert order == PluginRegistry(plugins).names
    assert sorted(order) == sorted(plugin.name for plugin in plugins)

    position = {name: index for index, name in enumerate(order)}
    by_name = {plugin.name: plugin for plugin in plugins}
    for plugin in plugins:
        for required in plugin.requires:
            assert position[required] < position[plugin.name]
    # Greedy rule: at each step, the chosen plugin is the best (priority, then name) among
    # those whose requirements are already placed.
    placed: set[str] = set()
    for name in order:
        candidates = [
            plugin
            for plugin in plugins
            if plugin.name not in placed and set(plugin.requires) <= placed
        ]
        best = min(candidates, key=lambda plugin: (-plugin.priority, plugin.name))
        assert by_name[name] is best
        placed.add(name)


# --- hooks ----------------------------------------------------------------------------------


class TenantScope:
    """Adds `tenant_id = :tenant` to reads, taken from the call's options."""

    name = "tenant"
    priority = 10

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        context.metadata.setdefault("seen", []).append(self.name)
        tenant = context.options.get("tenant")
        if tenant is None or not isinstance(context.statement, Select):
            return None
        assert context.table is not None
        return context.statement.where(context.table.c.tenant_id == tenant)


class HideDeleted:
    """Hides soft-deleted rows unless `include_deleted=True`; mutates the context in place."""

    name = "soft_delete"

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> None:
        context.metadata.setdefault("seen", []).append(self.name)
        if context.options.get("include_deleted") or not isinstance(context.statement, Select):
            return
        assert context.table is not None
        context.statement = context.statement.where(context.table.c.deleted_at.is_(None))


class Recorder:
    def __init__(self, name: str, log: list[str], priority: int = 0) -> None:
        self.name = name
        self.priority = priority
        self.log = log

    @hookimpl
    def kysera_configure(self, orm: Any) -> None:
        self.log.append(f"{self.name}:configure:{orm}")

    @hookimpl
    def kysera_intercept_query(self) -> None:  # pluggy allows leaving parameters out
        self.log.append(f"{self.name}:intercept")

    @hookimpl
    def kysera_repository_mixin(self, table: sa.Table) -> type:
        return type(f"{self.name.title()}Mixin", (), {"table_name": table.name})


def test_intercept_folds_the_statement_through_plugins_in_order() -> None:
    for plugins in itertools.permutations([HideDeleted(), TenantScope()]):
        registry = PluginRegistry(plugins)
        assert registry.names == ("tenant", "soft_delete")
        assert registry.intercepts

        context = QueryContext("select", items, sa.select(items), {"tenant": 7})
        statement = registry.intercept(context)

        assert statement is context.statement
        assert context.metadata == {"seen": ["tenant", "soft_delete"]}
        where = str(statement.compile(compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
        assert where.endswith(
            "WHERE plugin_items.tenant_id = 7 AND plugin_items.deleted_at IS NULL"
        )


def test_intercept_sees_the_call_options() -> None:
    registry = PluginRegistry([HideDeleted(), TenantScope()])
    original = sa.select(items)
    context = QueryContext("select", items, original, {"include_deleted": True})
    assert registry.intercept(context) is original
    assert context.metadata["seen"] == ["tenant", "soft_delete"]

    # Writes pass through unchanged; both plugins still saw them.
    insert = sa.insert(items)
    assert registry.intercept(QueryContext("insert", items, insert)) is insert


def test_intercept_refuses_a_result_that_is_not_a_statement() -> None:
    class Broken:
        name = "broken"

        @hookimpl
        def kysera_intercept_query(self, context: QueryContext) -> Any:
            return "SELECT 1"

    registry = PluginRegistry([Broken()])
    with pytest.raises(PluginError, match="'broken': kysera_intercept_query returned 'SELECT 1'"):
        registry.intercept(QueryContext("select", items, sa.select(items)))


def test_a_registry_without_interceptors_says_so() -> None:
    registry = PluginRegistry([Named("plain")])
    assert not registry.intercepts
    statement = sa.select(items)
    assert registry.intercept(QueryContext("select", items, statement)) is statement
    assert not PluginRegistry([]).intercepts


def test_configure_and_mixins_follow_plugin_order() -> None:
    log: list[str] = []
    registry = PluginRegistry([Recorder("b", log), Recorder("a", log), Recorder("c", log, 1)])
    assert registry.names == ("c", "a", "b")

    registry.configure("orm")
    registry.intercept(QueryContext("count", items, sa.select(sa.func.count())))
    assert log == [
        "c:configure:orm",
        "a:configure:orm",
        "b:configure:orm",
        "c:intercept",
        "a:intercept",
        "b:intercept",
    ]

    mixins = registry.mixins(items, "orm")
    assert [mixin.__name__ for mixin in mixins] == ["CMixin", "AMixin", "BMixin"]
    assert {mixin.table_name for mixin in mixins} == {"plugin_items"}  # type: ignore[attr-defined]


def test_mixins_compose_through_super_in_plugin_order() -> None:
    class Base:
        def describe(self) -> list[str]:
            return ["base"]

    def layer(label: str, priority: int) -> object:
        class Layer:
            name = label

            def __init__(self) -> None:
                self.priority = priority

            @hookimpl
            def kysera_repository_mixin(self, table: sa.Table, orm: Any) -> type | None:
                if table.name != "plugin_items":
                    return None

                class Mixin:
                    def describe(self) -> list[str]:
                        return [label, *super().describe()]  # type: ignore[misc]

                return Mixin

        return Layer()

    registry = PluginRegistry([layer("inner", 0), layer("outer", 5)])
    repository_class = type("ItemsRepository", (*registry.mixins(items, None), Base), {})
    assert repository_class().describe() == ["outer", "inner", "base"]

    other = sa.Table("plugin_other", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    assert registry.mixins(other, None) == []


def test_a_mixin_hook_must_return_a_class() -> None:
    class Broken:
        name = "broken"

        @hookimpl
        def kysera_repository_mixin(self, table: sa.Table, orm: Any) -> Any:
            return object()

    with pytest.raises(PluginError, match="'broken': kysera_repository_mixin returned"):
        PluginRegistry([Broken()]).mixins(items, None)


# --- hook implementations checked by pluggy -------------------------------------------------


def test_a_misspelled_hook_is_reported_with_the_known_hooks() -> None:
    class Typo:
        name = "typo"

        @hookimpl
        def kysera_intercept_querry(self, context: QueryContext) -> None: ...

    with pytest.raises(PluginError, match="'typo' implements unknown hook") as caught:
        PluginRegistry([Named("fine"), Typo()])
    message = str(caught.value)
    assert "'kysera_intercept_querry'" in message
    assert (
        "'kysera_configure', 'kysera_follow_changes', 'kysera_intercept_query', "
        "'kysera_repository_mixin'" in message
    )
    assert caught.value.plugins == ("typo",)


def test_a_hook_parameter_that_does_not_exist_is_refused() -> None:
    class WrongArgument:
        name = "wrong"

        @hookimpl
        def kysera_intercept_query(self, ctx: QueryContext) -> None: ...

    with pytest.raises(
        PluginError, match=r"'wrong' has an invalid hook implementation.*'ctx'"
    ) as caught:
        PluginRegistry([WrongArgument()])
    assert caught.value.plugins == ("wrong",)


def test_async_hooks_are_refused() -> None:
    class Async:
        name = "async"

        @hookimpl
        async def kysera_intercept_query(self, context: QueryContext) -> None: ...

    with pytest.raises(PluginError, match="'async': kysera_intercept_query is async"):
        PluginRegistry([Async()])


@pytest.mark.parametrize(
    "marker",
    [
        hookimpl(tryfirst=True),
        hookimpl(trylast=True),
        hookimpl(wrapper=True),
        hookimpl(hookwrapper=True),
    ],
)
def test_pluggy_ordering_options_are_refused(marker: Any) -> None:
    class Ordered:
        name = "ordered"

        @marker
        def kysera_configure(self, orm: Any) -> Any:
            yield

    with pytest.raises(PluginError, match="set the plugin's `priority` or `requires` instead"):
        PluginRegistry([Ordered()])


class MigrationSpecs:
    @hookspec
    def kysera_before_migration(self, name: str) -> None: ...


def test_hooks_of_other_kysera_packages_are_accepted_with_their_specs() -> None:
    class Both:
        name = "both"

        @hookimpl
        def kysera_before_migration(self, name: str) -> None: ...

    with pytest.raises(PluginError, match="unknown hook"):
        PluginRegistry([Both()])
    registry = PluginRegistry([Both()], hookspecs=[MigrationSpecs])
    assert registry.names == ("both",)
    assert registry.plugin_manager.hook.kysera_before_migration.has_spec()

    class Optional:
        name = "optional"

        @hookimpl(optionalhook=True)
        def kysera_before_migration(self, name: str) -> None: ...

    assert PluginRegistry([Optional()]).names == ("optional",)


def test_each_registry_has_its_own_plugin_manager() -> None:
    first = PluginRegistry([TenantScope()])
    second = PluginRegistry([HideDeleted()])
    assert first.plugin_manager is not second.plugin_manager
    assert first.plugin_manager.get_plugins() != second.plugin_manager.get_plugins()
    assert repr(first) == "PluginRegistry(['tenant'])"


def test_the_hook_specifications_are_public() -> None:
    assert {name for name in vars(KyseraHookSpecs) if name.startswith("kysera_")} == {
        "kysera_configure",
        "kysera_follow_changes",
        "kysera_intercept_query",
        "kysera_repository_mixin",
    }
