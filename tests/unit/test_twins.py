"""The sync and asyncio twins have one API: the same public names, in order, same parameters.

Only the async-ness differs. Read from the classes and modules (``inspect``), nothing is run.
"""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path
from typing import Any, Callable, List, Tuple

import pytest

import rache
import rache.aio
import rache.scheduler
from rache.dispatch import AsyncDispatcher, Dispatcher
from rache.scheduler import AsyncScheduler, BaseScheduler, Scheduler

#: One parameter as compared: name, kind, default.
Shape = Tuple[str, Any, Any]


def public_names(cls: type) -> List[str]:
    """Public names in definition order, base classes' first (an override keeps its place)."""
    names: List[str] = []
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        names += [name for name in vars(klass) if not name.startswith("_") and name not in names]
    return names


def parameters(obj: Any) -> List[Shape]:
    """The parameters of a function (or a property's getter): name, kind, default."""
    if isinstance(obj, property):
        obj = obj.fget
    return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]


def kind_of(obj: Any) -> str:
    if isinstance(obj, property):
        return "property"
    if isinstance(obj, (staticmethod, classmethod)):
        return type(obj).__name__
    return "function" if inspect.isfunction(obj) else "attribute"


def differences(sync: type, aio: type) -> List[str]:
    """What differs between two twin classes' public APIs (async-ness aside)."""
    names = public_names(sync)
    if names != public_names(aio):
        return [f"public names: {names} != {public_names(aio)}"]
    found = []
    for name in ["__init__", *names]:
        a, b = inspect.getattr_static(sync, name), inspect.getattr_static(aio, name)
        if kind_of(a) != kind_of(b):
            found.append(f"{name}: a {kind_of(a)} and a {kind_of(b)}")
        elif kind_of(a) in ("function", "property") and parameters(a) != parameters(b):
            found.append(f"{name}: {parameters(a)} != {parameters(b)}")
        elif kind_of(a) == "attribute" and a != b:
            found.append(f"{name}: {a!r} != {b!r}")
    return found


def function_differences(
    sync: types.ModuleType, aio: types.ModuleType, names: List[str]
) -> List[str]:
    found = []
    for name in names:
        a, b = getattr(sync, name), getattr(aio, name)
        if parameters(a) != parameters(b):
            found.append(f"{name}: {parameters(a)} != {parameters(b)}")
    return found


# -- the comparison itself: it sees a rename, a default, a kind, an order --------------------


class Base:
    def f(self, x: int, *, y: int = 1) -> None: ...

    def g(self) -> None: ...


class Same:  # no subclass: the async twin of Base
    async def f(self, x: int, *, y: int = 1) -> None: ...  # async-ness does not count

    async def g(self) -> None: ...


class Renamed(Base):
    def f(self, z: int, *, y: int = 1) -> None: ...  # x renamed


class OtherDefault(Base):
    def f(self, x: int, *, y: int = 2) -> None: ...


class OtherKind(Base):
    def f(self, x: int, y: int = 1) -> None: ...  # y no longer keyword-only


class Extra(Base):
    def f(self, x: int, *, y: int = 1, w: int = 0) -> None: ...


class NowProperty(Base):
    @property
    def g(self) -> None: ...  # type: ignore[override]


class Reordered:
    def g(self) -> None: ...

    def f(self, x: int, *, y: int = 1) -> None: ...


class More(Base):
    def h(self) -> None: ...


@pytest.mark.parametrize(
    ("twin", "expected"),
    [
        (Same, ""),
        (Renamed, "f:"),
        (OtherDefault, "f:"),
        (OtherKind, "f:"),
        (Extra, "f:"),
        (NowProperty, "g: a function and a property"),
        (Reordered, "public names"),
        (More, "public names"),
    ],
)
def test_the_comparison_sees_each_kind_of_difference(twin: type, expected: str) -> None:
    found = differences(Base, twin)
    if expected:
        assert len(found) == 1 and found[0].startswith(expected), found
    else:
        assert found == []


def test_the_comparison_sees_a_renamed_parameter_of_a_real_method() -> None:
    # As if AsyncScheduler.stats's interval were renamed: a subclass overriding it differs.
    class Renamed(AsyncScheduler):
        async def stats(self, intervals: int = 60, length: Any = 60) -> Any: ...

    (found,) = differences(Scheduler, Renamed)
    assert found.startswith("stats: ") and "'interval'" in found and "'length'" in found


def test_the_module_comparison_sees_a_renamed_parameter() -> None:
    sync = types.ModuleType("sync")
    aio = types.ModuleType("aio")

    def run(job_id: str, connection: Any = None) -> None: ...

    def run_renamed(job: str, connection: Any = None) -> None: ...

    sync.run, aio.run = run, run_renamed  # type: ignore[attr-defined]
    assert function_differences(sync, aio, ["run"]) != []
    aio.run = run  # type: ignore[attr-defined]
    assert function_differences(sync, aio, ["run"]) == []


# -- the twins -------------------------------------------------------------------------------

SCHEDULER_API = [
    "recurring_lease",
    "call_record_ttl",
    "name",
    "claim",
    "check_layout",
    "recorded_shards",
    "server_time",
    "schedule_job",
    "schedule_job_at",
    "schedule_recurring",
    "schedule_jobs",
    "delete_job",
    "job_details",
    "finish_run",
    "runs",
    "failures",
    "stats",
    "announce",
    "withdraw",
    "pollers",
    "health",
    "bad_rules",
    "claim_batch",
    "put_back",
    "forget_jobs",
    "pending_jobs",
    "scheduled_jobs",
    "recurring_jobs",
    "export_jobs",
    "orphaned_jobs",
    "reshard",
]


def test_the_schedulers_are_twins() -> None:
    assert public_names(Scheduler) == SCHEDULER_API
    assert differences(Scheduler, AsyncScheduler) == []


def test_the_schedulers_define_their_own_methods_in_one_order() -> None:
    def own(cls: type) -> List[str]:
        return [name for name in vars(cls) if not name.startswith("_")]

    assert own(Scheduler) == own(AsyncScheduler) == SCHEDULER_API[4:]
    assert own(BaseScheduler) == SCHEDULER_API[:4]


#: What an AsyncScheduler awaits; its other methods return at once (a Claim, async generators).
AWAITED = {
    "check_layout",
    "recorded_shards",
    "server_time",
    "schedule_job",
    "schedule_job_at",
    "schedule_recurring",
    "schedule_jobs",
    "delete_job",
    "job_details",
    "finish_run",
    "runs",
    "failures",
    "stats",
    "announce",
    "withdraw",
    "pollers",
    "health",
    "bad_rules",
    "claim_batch",
    "put_back",
    "forget_jobs",
    "reshard",
}


def test_only_the_asyncio_twin_is_awaited() -> None:
    def awaited(cls: type) -> set[str]:
        return {
            name
            for name in public_names(cls)
            if inspect.iscoroutinefunction(inspect.getattr_static(cls, name))
        }

    assert awaited(Scheduler) == set()
    assert awaited(AsyncScheduler) == AWAITED


def test_the_dispatchers_are_twins() -> None:
    assert public_names(Dispatcher) == [
        "claimed",
        "handled",
        "failed",
        "retried",
        "pending_retries",
        "lag",
        "max_lag",
        "put_back",
        "stop",
        "stopping",
        "run",
        "run_once",
        "abandon_retries",
        "withdraw",
    ]
    assert differences(Dispatcher, AsyncDispatcher) == []
    assert not inspect.iscoroutinefunction(Dispatcher.run)
    assert inspect.iscoroutinefunction(AsyncDispatcher.run)
    assert not inspect.iscoroutinefunction(Dispatcher.run_once)
    assert inspect.iscoroutinefunction(AsyncDispatcher.run_once)
    assert not inspect.iscoroutinefunction(Dispatcher.abandon_retries)
    assert inspect.iscoroutinefunction(AsyncDispatcher.abandon_retries)
    assert not inspect.iscoroutinefunction(AsyncDispatcher.stop)  # safe from a signal handler


MODULE_API = [
    "schedule_job",
    "schedule_job_at",
    "schedule_recurring",
    "schedule_jobs",
    "export_jobs",
    "stats",
    "pending_jobs",
    "delete_job",
    "job_details",
    "finish_run",
    "scheduled_jobs",
    "recurring_jobs",
    "server_time",
]


def test_the_module_functions_are_twins() -> None:
    assert set(MODULE_API) <= set(rache.__all__)
    assert set(MODULE_API) <= set(rache.aio.__all__)
    assert function_differences(rache, rache.aio, [*MODULE_API, "job_runs"]) == []


def test_job_runs_is_the_runs_method_with_a_connection() -> None:
    method = [p for p in parameters(Scheduler.runs) if p[0] != "self"]
    assert [p for p in parameters(rache.job_runs) if p[0] != "connection"] == method
    assert inspect.iscoroutinefunction(rache.aio.job_runs)
    assert not inspect.iscoroutinefunction(rache.job_runs)


@pytest.mark.parametrize("name", MODULE_API)
def test_each_module_function_awaits_as_its_scheduler_method(name: str) -> None:
    method: Callable[..., Any] = getattr(AsyncScheduler, name)
    assert inspect.iscoroutinefunction(getattr(rache.aio, name)) == (name in AWAITED)
    assert inspect.iscoroutinefunction(method) == (name in AWAITED)
    assert not inspect.iscoroutinefunction(getattr(rache, name))


@pytest.mark.parametrize("name", MODULE_API)
def test_each_module_function_takes_its_method_parameters_and_a_connection(name: str) -> None:
    # the method's parameters (less self), a ``connection`` among them
    method = [p for p in parameters(getattr(Scheduler, name)) if p[0] != "self"]
    function = parameters(getattr(rache, name))
    assert [p for p in function if p[0] != "connection"] == method
    assert ("connection", inspect.Parameter.POSITIONAL_OR_KEYWORD, None) in function


def test_rache_scheduler_still_names_the_types_of_the_shells_methods() -> None:
    """``from rache.scheduler import Exported`` worked before the shells were split."""
    assert rache.scheduler.Exported is rache.Exported
    assert rache.scheduler.Job is rache.Job and rache.scheduler.Stats is rache.Stats
    assert {"Exported", "Job", "Stats"} <= set(rache.scheduler.__all__)


def test_the_reference_names_exactly_the_methods_without_a_module_function() -> None:
    """docs/reference/functions.rst lists the shells' methods that no module function mirrors."""
    missing = {  # (rache.claim is a module; rache.reshard a function, not rache.aio's)
        name
        for name in public_names(Scheduler)
        if callable(getattr(Scheduler, name)) and not inspect.isfunction(getattr(rache, name, None))
    }
    page = Path(__file__).resolve().parents[2] / "docs" / "reference" / "functions.rst"
    text = " ".join(page.read_text().split())
    paragraph = text[text.index("methods have no module function") : text.index("``reshard()``")]
    assert set(re.findall(r"``(\w+)\(\)``", paragraph)) == missing
    assert text[: text.index(" methods have no module function")].split()[-1] == "Fourteen"
    assert len(missing) == 14
