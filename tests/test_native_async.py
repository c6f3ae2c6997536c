"""Every async method of Django's BaseCache is our own, and none of them calls the sync API.

Django 6.1's ``BaseCacheTests`` gained ``test_*_async_uses_specialized_implementation``:
a backend that overrides a sync method but keeps ``BaseCache``'s async default
must have that default call its sync override (in a thread). Ours overrides
both, so those tests have nothing to check; these tests check what makes that
true, on every Django version: each ``aX`` is ours and never reaches ``X``.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from django.core.cache.backends.base import BaseCache

from django_asyncredis import RedisCache

#: BaseCache's async methods with a sync twin: aget, aset, ..., aclose.
ASYNC_TWINS = sorted(
    name
    for name, method in vars(BaseCache).items()
    if name.startswith("a")
    and inspect.iscoroutinefunction(method)
    and callable(vars(BaseCache).get(name[1:]))
)

#: The async calls of Django 6.1's ``*_async_uses_specialized_implementation`` tests.
SPECIALIZED_CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "aget_many": (([],), {}),
    "aset_many": (({},), {}),
    "adelete_many": (([],), {}),
    "aget_or_set": (("key", "value"), {}),
    "ahas_key": (("key",), {}),
    "aincr": (("counter",), {}),
    "aincr_version": (("key",), {}),
    "aclose": ((), {}),
}


def test_basecache_has_the_async_twins_we_expect() -> None:
    """The list the next test walks is BaseCache's, not empty and not stale."""
    assert set(SPECIALIZED_CALLS) <= set(ASYNC_TWINS)
    assert {"aget", "aset", "adelete", "aclear", "atouch"} <= set(ASYNC_TWINS)


@pytest.mark.parametrize("name", ASYNC_TWINS)
def test_async_method_is_not_basecaches_default(name: str) -> None:
    """RedisCache overrides every async method BaseCache defines (so none hops to a thread)."""
    assert getattr(RedisCache, name) is not getattr(BaseCache, name)


@pytest.mark.parametrize("name", sorted(SPECIALIZED_CALLS))
async def test_async_method_never_calls_its_sync_twin(
    cache: Any, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The async method completes with its sync twin made to raise: it is a separate path."""
    await cache.aset("key", "value")
    await cache.aset("counter", 1)

    def sync_twin_called(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{name} called {name[1:]}")

    monkeypatch.setattr(cache, name[1:], sync_twin_called)
    args, kwargs = SPECIALIZED_CALLS[name]
    await getattr(cache, name)(*args, **kwargs)
