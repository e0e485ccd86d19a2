"""`PluginRegistry(..., discover=True)` loads installed plugins from the `kysera.plugins` group.

Each test installs tiny plugin distributions the way an installer leaves them on disk: a
module plus a `*.dist-info` directory with `METADATA` and `entry_points.txt`, in a directory
put on `sys.path`. `importlib.metadata` finds them exactly as it finds pip-installed ones.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.repository import ENTRY_POINT_GROUP, PluginError, PluginRegistry, create_orm

PLUGIN_MODULE = """
from kysera.repository import hookimpl

calls = []


class DemoPlugin:
    name = "{name}"
    priority = {priority}

    def __init__(self, label="discovered"):
        self.label = label

    @hookimpl
    def kysera_configure(self, orm):
        calls.append(("configure", self.name, self.label))

    @hookimpl
    def kysera_intercept_query(self, context):
        calls.append((context.operation, self.name, self.label))


instance = DemoPlugin(label="instance")
"""

Install = Callable[..., Path]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Install a one-module plugin distribution; everything is removed after the test."""
    modules: list[str] = []

    def install_distribution(
        distribution: str,
        entry_points: dict[str, str],
        *,
        plugin_name: str = "demo",
        priority: int = 0,
        group: str = ENTRY_POINT_GROUP,
    ) -> Path:
        module = distribution.replace("-", "_")
        site = tmp_path / distribution
        (site / f"{module}-1.0.dist-info").mkdir(parents=True)
        (site / f"{module}.py").write_text(
            PLUGIN_MODULE.format(name=plugin_name, priority=priority)
        )
        (site / f"{module}-1.0.dist-info" / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n"
        )
        lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
        (site / f"{module}-1.0.dist-info" / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")
        monkeypatch.syspath_prepend(str(site))
        modules.append(module)
        return site

    yield install_distribution
    for module in modules:
        sys.modules.pop(module, None)


def test_discover_loads_entry_point_classes_and_instances(install: Install) -> None:
    install("kysera-demo-tenant", {"tenant": "kysera_demo_tenant:DemoPlugin"}, plugin_name="tenant")
    install("kysera-demo-audit", {"audit": "kysera_demo_audit:instance"}, plugin_name="audit")

    registry = PluginRegistry([], discover=True)
    registry.configure(orm=None)

    assert registry.names == ("audit", "tenant")
    assert sys.modules["kysera_demo_audit"].calls == [("configure", "audit", "instance")]
    assert sys.modules["kysera_demo_tenant"].calls == [("configure", "tenant", "discovered")]


async def test_create_orm_discovers_installed_plugins(
    install: Install, kysera_engine: AsyncEngine
) -> None:
    install("kysera-demo-tenant", {"tenant": "kysera_demo_tenant:DemoPlugin"}, plugin_name="tenant")

    orm = await create_orm(kysera_engine, discover=True)
    result = await orm.execute(sa.select(sa.literal(1).label("one")))

    assert result.scalar_one() == 1
    assert orm.registry.names == ("tenant",)
    assert sys.modules["kysera_demo_tenant"].calls == [
        ("configure", "tenant", "discovered"),
        ("select", "tenant", "discovered"),
    ]
    assert (await create_orm(kysera_engine)).registry.names == ()


def test_without_discover_installed_plugins_are_ignored(install: Install) -> None:
    install("kysera-demo-tenant", {"tenant": "kysera_demo_tenant:DemoPlugin"}, plugin_name="tenant")
    assert PluginRegistry([]).names == ()


@pytest.mark.parametrize("reverse", [False, True], ids=["installed-a-then-b", "b-then-a"])
def test_the_order_does_not_depend_on_installation_order(install: Install, reverse: bool) -> None:
    distributions = [
        ("kysera-demo-low", "zeta", 0),
        ("kysera-demo-high", "omega", 9),
        ("kysera-demo-mid", "alpha", 0),
    ]
    for distribution, name, priority in distributions[::-1] if reverse else distributions:
        module = distribution.replace("-", "_")
        install(distribution, {name: f"{module}:DemoPlugin"}, plugin_name=name, priority=priority)

    assert PluginRegistry([], discover=True).names == ("omega", "alpha", "zeta")


def test_a_plugin_given_explicitly_wins_over_the_installed_one(install: Install) -> None:
    install("kysera-demo-tenant", {"tenant": "kysera_demo_tenant:DemoPlugin"}, plugin_name="tenant")
    from kysera_demo_tenant import DemoPlugin  # type: ignore[import-not-found]

    configured = DemoPlugin(label="explicit")
    registry = PluginRegistry([configured], discover=True)
    assert registry.plugins == (configured,)


def test_two_installed_plugins_with_one_name_are_refused(install: Install) -> None:
    install("kysera-demo-one", {"one": "kysera_demo_one:DemoPlugin"}, plugin_name="same")
    install("kysera-demo-two", {"two": "kysera_demo_two:DemoPlugin"}, plugin_name="same")
    with pytest.raises(PluginError, match="two plugins are named 'same'"):
        PluginRegistry([], discover=True)


def test_an_entry_point_that_cannot_be_loaded_is_named(install: Install) -> None:
    install("kysera-demo-broken", {"broken": "kysera_demo_missing_module:Plugin"})
    with pytest.raises(PluginError, match="'broken = kysera_demo_missing_module:Plugin'") as caught:
        PluginRegistry([], discover=True)
    assert caught.value.plugins == ("broken",)
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_an_entry_point_without_a_name_is_refused(install: Install) -> None:
    install("kysera-demo-nameless", {"nameless": "textwrap:dedent"})
    with pytest.raises(PluginError, match=r"'nameless = textwrap:dedent'.*has no `name`"):
        PluginRegistry([], discover=True)


def test_other_entry_point_groups_are_not_loaded(install: Install) -> None:
    install(
        "kysera-demo-elsewhere",
        {"elsewhere": "kysera_demo_elsewhere:DemoPlugin"},
        group="pytest11",
    )
    assert PluginRegistry([], discover=True).names == ()
