"""The demo's endpoints: views.ENDPOINTS says what each one shows."""

from __future__ import annotations

from django.urls import path

from demo_project import views

urlpatterns = [
    path("", views.index, name="index"),
    path("async", views.async_view, name="async"),
    path("sync", views.sync_view, name="sync"),
    path("site-cache", views.site_cached, name="site-cache"),
    path("cache-page", views.cache_page_view, name="cache-page"),
    path("session", views.session_view, name="session"),
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
]
