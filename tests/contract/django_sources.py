"""Fetch Django's cache test package (``tests/cache/``) for the installed Django.

Django's wheels do not ship its test suite, so the sdist of exactly the installed
version is downloaded with pip (the contract is the one *that* Django states)
and only ``tests/cache/`` is taken out of it. Both the archive and the
extracted package are kept under ``tests/contract/_django/`` (git-ignored), so
a re-run needs no network.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

#: Where Django's test package lives inside the sdist, below its top directory.
_CACHE_TESTS = ("tests", "cache")


def cache_test_root(version: str, work_dir: Path) -> Path:
    """A directory holding Django's ``cache`` test package for ``version``.

    Put it on ``sys.path`` and ``import cache.tests``: the package must be
    importable as ``cache`` because Django's suite names it so (its models' app
    label, and dotted paths such as ``"cache.tests.custom_key_func"`` in the
    settings the tests use).
    """
    root = work_dir / f"django-{version}"
    if (root / "cache" / "tests.py").is_file():
        return root
    work_dir.mkdir(parents=True, exist_ok=True)
    archive = _find_archive(work_dir, version) or _download(work_dir, version)
    # Extract next to the target and rename it into place, so an interrupted
    # run never leaves a half-extracted package that a later run would trust.
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=work_dir))
    try:
        _extract_cache_tests(archive, staging / "cache")
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _find_archive(work_dir: Path, version: str) -> Path | None:
    """The sdist already downloaded, whatever the case of its name (``Django-`` before 2024)."""
    wanted = f"django-{version}.tar.gz"
    for candidate in work_dir.glob("*.tar.gz"):
        if candidate.name.lower() == wanted:
            return candidate
    return None


def _download(work_dir: Path, version: str) -> Path:
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-binary", ":all:", "--no-deps", "--disable-pip-version-check",
        "--quiet", f"django=={version}", "-d", str(work_dir),
    ]  # fmt: skip
    print(f"Downloading the Django {version} sdist for its cache tests...", flush=True)
    subprocess.run(command, check=True)
    archive = _find_archive(work_dir, version)
    if archive is None:
        raise RuntimeError(f"pip download left no django-{version}.tar.gz in {work_dir}")
    return archive


def _extract_cache_tests(archive: Path, destination: Path) -> None:
    """Copy the files of ``<top>/tests/cache/`` (not deeper) into ``destination``.

    Reading member contents rather than calling ``extract`` means no path from
    the archive is ever used on disk, only the bare file names.
    """
    destination.mkdir(parents=True)
    found = False
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) != 4 or parts[1:3] != _CACHE_TESTS:
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            (destination / parts[3]).write_bytes(source.read())
            found = found or parts[3] == "tests.py"
    if not found:
        raise RuntimeError(f"{archive.name} has no tests/cache/tests.py")
