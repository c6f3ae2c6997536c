"""The Django app: add ``"django_asyncredis"`` to INSTALLED_APPS for the system
checks (``checks``) and the ``manage.py asyncredis`` command.

The cache backend works without it; the app only adds those two.
"""

from __future__ import annotations

from django.apps import AppConfig


class AsyncRedisConfig(AppConfig):
    name = "django_asyncredis"
    verbose_name = "django-asyncredis"

    def ready(self) -> None:
        from django_asyncredis import checks  # noqa: F401  # registers the checks
