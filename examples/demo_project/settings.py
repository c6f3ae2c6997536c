"""Settings of the demo project: the smallest Django that serves a cache over ASGI.

Everything here is ordinary Django; what this package adds is named in CACHES,
MIDDLEWARE and SESSION_ENGINE.
"""

from __future__ import annotations

import os

# A demo key, public on purpose: never use it, or DEBUG, in production.
SECRET_KEY = "django-asyncredis-demo-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"

# No models, auth or admin, so no database. Sessions live in the cache, which
# needs no table: "django.contrib.sessions" need not be installed either.
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}

USE_TZ = True

# run_demo.py sets REDIS_URL (to an embedded server when you have none).
# redis://[user:password@]host:port/db, rediss:// for TLS, unix:///path.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        # The one line that matters: switching from Django's own RedisCache or from
        # django-redis is a change of BACKEND (the LOCATION and OPTIONS stay).
        "BACKEND": "django_asyncredis.RedisCache",
        "LOCATION": REDIS_URL,
        # Every key this project writes starts with "demo:", so it can share a server.
        "KEY_PREFIX": "demo",
        "TIMEOUT": 300,
    },
    # The page cache, on the same server. Its own alias for one option: a page
    # cache that cannot reach its server serves pages uncached instead of failing
    # every request (/health then still answers, with a 503 that says why).
    "pages": {
        "BACKEND": "django_asyncredis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "demo",
        "OPTIONS": {"ignore_exceptions": True},
    },
}

# The site-wide page cache, in Django's documented order: UpdateCacheMiddleware
# first (its response phase runs last, so it stores the page as the client gets
# it, Vary: Cookie from the session middleware included) and
# FetchFromCacheMiddleware last (it looks up the page as the view would see the
# request). Between them, the session middleware: Django's, with the async
# session save (asave) on the event loop. Django's own classes would run in a
# thread under ASGI; these await the cache on the event loop, so a request
# through all three makes no thread hop.
#
# Every GET page is then stored for CACHE_MIDDLEWARE_SECONDS unless the view says
# otherwise: the live endpoints (counters, health) send never-cache headers, and
# /cache-page sets its own timeout with cache_page. See views.py.
MIDDLEWARE = [
    "django_asyncredis.middleware.UpdateCacheMiddleware",
    "django_asyncredis.middleware.SessionMiddleware",
    "django_asyncredis.middleware.FetchFromCacheMiddleware",
]
CACHE_MIDDLEWARE_ALIAS = "pages"
CACHE_MIDDLEWARE_SECONDS = 30

# Sessions in the cache: Django's cache session engine, with its async API
# (await request.session.aget(...)) running natively on the cache's async API.
# A production site gives sessions an alias of their own, on a database of their
# own: cache.clear() on a shared one logs everyone out (see docs/sessions.md).
SESSION_ENGINE = "django_asyncredis.sessions"
SESSION_CACHE_ALIAS = "default"
