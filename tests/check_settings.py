"""Settings for ``python -m django check --settings=tests.check_settings`` in a child
process (tests/test_checks.py): a project with the app installed and one cache.

``CHECK_CACHE`` (JSON) holds the cache's LOCATION and OPTIONS; ``CHECK_MISSING``
names modules to make unimportable (comma-separated), as if an extra were not
installed.
"""

from __future__ import annotations

import json
import os
import sys

for _module in filter(None, os.environ.get("CHECK_MISSING", "").split(",")):
    sys.modules[_module] = None  # type: ignore[assignment]  # "import _module" now fails

SECRET_KEY = "tests-only-secret-key"
INSTALLED_APPS = ["django_asyncredis"]
CACHES = {
    "default": {
        "BACKEND": "django_asyncredis.RedisCache",
        **json.loads(os.environ.get("CHECK_CACHE", "{}")),
    }
}
USE_TZ = True
