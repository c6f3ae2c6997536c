"""JSON, with Django's encoder: datetimes, dates, times, decimals and UUIDs are
written as strings and read back as strings (JSON has no such types); tuples
come back as lists."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


class JSONSerializer:
    encoder_class: type[json.JSONEncoder] = DjangoJSONEncoder

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, cls=self.encoder_class, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)
