"""Cluster hash slots, computed by our own CRC16 (no redis-py internals), per the Cluster spec."""

from __future__ import annotations

import pytest

from django_asyncredis._topology import SLOTS, _slot


def test_slot_is_crc16_xmodem_mod_16384() -> None:
    """The spec's check value: CRC16 of "123456789" is 0x31C3."""
    assert _slot("123456789") == 0x31C3 % SLOTS == 12739


def test_str_and_bytes_keys_hash_alike() -> None:
    """A key given as str hashes as its UTF-8 bytes."""
    assert _slot("clé") == _slot("clé".encode())


@pytest.mark.parametrize(
    ("key", "hashed"),
    [
        ("{user1000}.following", "user1000"),
        ("foo{bar}{zap}", "bar"),  # the first tag only
        ("foo{{bar}}zap", "{bar"),  # from the first "{" to the first "}" after it
        ("foo{}{bar}", "foo{}{bar}"),  # an empty tag: the whole key
        ("foo{bar", "foo{bar"),  # no closing brace: the whole key
    ],
)
def test_hash_tag_rules(key: str, hashed: str) -> None:
    """Only a non-empty {hash tag} is hashed, as the Cluster spec says."""
    assert _slot(key) == _slot(hashed)


def test_keys_sharing_a_tag_share_a_slot_and_others_spread() -> None:
    """A site's tagged keys land on one slot; untagged keys cover many slots."""
    assert len({_slot(f"{{site}}:{n}") for n in range(100)}) == 1
    assert len({_slot(f"key:{n}") for n in range(100)}) == 100
