"""Three endpoints: an async view, a sync view, and a health check."""

from __future__ import annotations

from django.urls import path

from demo_project import views

urlpatterns = [
    path("", views.async_view, name="async"),
    path("sync", views.sync_view, name="sync"),
    path("health", views.health, name="health"),
]
