"""Settings of the demo project: the smallest Django that serves a cache over ASGI.

Everything here is ordinary Django except CACHES, which is the whole point.
"""

from __future__ import annotations

import os

# A demo key, public on purpose: never use it, or DEBUG, in production.
SECRET_KEY = "django-asyncredis-demo-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"

# No models, sessions, auth or admin: the demo needs none, so no database either.
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}

USE_TZ = True

CACHES = {
    "default": {
        # The one line that matters: switching from Django's own RedisCache or from
        # django-redis is a change of BACKEND (the LOCATION and OPTIONS stay).
        "BACKEND": "django_asyncredis.RedisCache",
        # run_demo.py sets REDIS_URL (to an embedded server when you have none).
        # redis://[user:password@]host:port/db, rediss:// for TLS, unix:///path.
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        # Every key this project writes starts with "demo:", so it can share a server.
        "KEY_PREFIX": "demo",
        "TIMEOUT": 300,
    }
}
