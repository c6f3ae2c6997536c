"""docs/configuration.md names every option the parser accepts.

The list of options is read from ``_config.py`` itself (its option tables, and the
names ``parse`` compares each option with), so an option added to the code but not
to the page fails here.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from django_asyncredis import _config

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def accepted_options() -> set[str]:
    """Every OPTIONS name ``parse`` accepts (or refuses by name), lower-cased."""
    names = set(_config.CONNECTION_OPTIONS) | set(_config.POOL_OPTIONS)
    for node in ast.walk(ast.parse(inspect.getsource(_config.parse))):
        if not (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)):
            continue
        if node.left.id != "key":
            continue
        for compared in node.comparators:
            if isinstance(compared, ast.Constant) and isinstance(compared.value, str):
                names.add(compared.value)
            elif isinstance(compared, ast.Tuple | ast.Set):
                names |= {e.value for e in compared.elts if isinstance(e, ast.Constant)}
            elif isinstance(compared, ast.Name):
                names |= set(getattr(_config, compared.id))  # one of the module's tables
    return names


def documented(name: str) -> bool:
    return re.search(rf"`{re.escape(name)}`", PAGE.read_text(), re.IGNORECASE) is not None


def test_the_option_list_is_really_derived_from_the_parser() -> None:
    """The derivation finds options of each kind: a table's, a compared name, a refused one."""
    assert {"socket_timeout", "max_connections", "signing_key", "connection_factory"} <= (
        accepted_options()
    )


def test_every_accepted_option_is_documented() -> None:
    """Each option ``_config.py`` accepts appears, in backticks, in configuration.md."""
    missing = sorted(name for name in accepted_options() if not documented(name))
    assert missing == []


def test_every_location_scheme_is_documented() -> None:
    """Each LOCATION scheme ``_config.py`` accepts appears as ``scheme://`` on the page."""
    missing = sorted(s for s in _config._SCHEMES if f"`{s}://" not in PAGE.read_text())
    assert missing == []


def test_every_global_setting_is_documented() -> None:
    """Each global setting ``_config.py`` reads appears as ``DJANGO_ASYNCREDIS_<name>``."""
    missing = sorted(
        name for name in _config._GLOBAL_SETTINGS if not documented(f"DJANGO_ASYNCREDIS_{name}")
    )
    assert missing == []
