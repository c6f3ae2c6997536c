"""Hash, set and sorted-set helpers (django-redis 7.0's), sync and async."""

from __future__ import annotations


class StructuresMixin:
    """Filled in by the data-structure helpers."""
