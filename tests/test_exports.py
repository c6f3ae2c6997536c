"""The public surface: what users import, pinned so a change is deliberate."""

import django_asyncredis
import django_asyncredis.cache


def test_public_names() -> None:
    assert sorted(django_asyncredis.__all__) == [
        "AsyncLock",
        "CacheError",
        "ConnectionInterrupted",
        "CorruptValueError",
        "Lock",
        "LockError",
        "LockNotOwnedError",
        "PipelineError",
        "PoolTimeoutError",
        "RedisCache",
        "ServerTimeoutError",
        "__version__",
        "aclose_all",
        "aget_redis_connection",
        "get_redis_connection",
    ]


def test_backend_is_importable_from_both_paths() -> None:
    """settings.py may say django_asyncredis.RedisCache or django_asyncredis.cache.RedisCache."""
    assert django_asyncredis.RedisCache is django_asyncredis.cache.RedisCache


def test_middleware_names() -> None:
    """MIDDLEWARE entries name these: the page cache's three and the session middleware."""
    import django_asyncredis.middleware
    from django_asyncredis._session_middleware import SessionMiddleware

    assert sorted(django_asyncredis.middleware.__all__) == [
        "CacheMiddleware",
        "FetchFromCacheMiddleware",
        "SessionMiddleware",
        "UpdateCacheMiddleware",
    ]
    assert django_asyncredis.middleware.SessionMiddleware is SessionMiddleware


def test_decorator_names() -> None:
    """``from django_asyncredis.decorators import ...``: the page cache, Vary, and ``cached``."""
    import django_asyncredis.decorators

    assert sorted(django_asyncredis.decorators.__all__) == [
        "cache_page",
        "cached",
        "vary_on_cookie",
        "vary_on_headers",
    ]
