"""The codec's hot path now against the one at a git revision (default: HEAD~1).

Run ``python tests/benchmarks/codec_hot_path.py [REVISION]``: the pickle codec's
``dumps``/``loads`` of a small dict and an int, best of 6 x 15 x 100,000 calls,
interleaved. Not a test: it reports and asserts nothing.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.conftest import pytest_configure

pytest_configure(None)  # type: ignore[arg-type]  # Django settings as the tests have them

from django_asyncredis import _codec  # noqa: E402
from django_asyncredis.serializers.pickle import PickleSerializer  # noqa: E402


def codec_at(revision: str) -> Any:
    source = subprocess.run(
        ["git", "show", f"{revision}:src/django_asyncredis/_codec.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "codec_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("codec_then", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_ns(statement: str, names: dict[str, Any]) -> float:
    return min(timeit.repeat(statement, globals=names, number=100_000, repeat=15)) * 10_000


def main() -> None:
    revision = sys.argv[1] if len(sys.argv) > 1 else "HEAD~1"
    then = codec_at(revision).Codec(PickleSerializer())
    now = _codec.Codec(PickleSerializer())
    value = {"user": 42, "name": "x" * 80}
    data = now.dumps(value, "k")
    then_takes_key = "key" in then.dumps.__code__.co_varnames
    cases = {
        "dumps dict": ("c.dumps(v, 'k')", "c.dumps(v, 'k')" if then_takes_key else "c.dumps(v)"),
        "dumps int": ("c.dumps(5, 'k')", "c.dumps(5, 'k')" if then_takes_key else "c.dumps(5)"),
        "loads dict": ("c.loads(d, 'k')", "c.loads(d, 'k')"),
        "loads int": ("c.loads(b'5', 'k')", "c.loads(b'5', 'k')"),
    }
    best: dict[str, tuple[float, float]] = {}
    for _ in range(6):
        for label, (statement_now, statement_then) in cases.items():
            old = best_ns(statement_then, {"c": then, "v": value, "d": data})
            new = best_ns(statement_now, {"c": now, "v": value, "d": data})
            was_old, was_new = best.get(label, (float("inf"), float("inf")))
            best[label] = (min(was_old, old), min(was_new, new))
    print(f"pickle codec, now against {revision} (best of 6 x 15 x 100,000)")
    for label, (old, new) in best.items():
        ratio = new / old
        print(f"  {label:11} then {old:6.0f} ns   now {new:6.0f} ns   now/then {ratio:.3f}")


if __name__ == "__main__":
    main()
