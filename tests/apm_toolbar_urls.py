"""URLs of the debug-toolbar probe (tests/apm_probe.py): one async view and the toolbar's."""

from __future__ import annotations

from debug_toolbar.toolbar import debug_toolbar_urls
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.urls import path


async def view(request: HttpRequest) -> HttpResponse:
    """One async miss and one sync miss, in an async view under ASGI."""
    cache = caches["default"]
    await cache.aget("probe:async")
    cache.get("probe:sync")
    return HttpResponse("<html><body>probe</body></html>")


urlpatterns = [path("probe", view), *debug_toolbar_urls()]
