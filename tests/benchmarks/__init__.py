"""The benchmark suite (``nox -s bench``): never collected by pytest.

It is a package so that ``run.py`` can import its helpers as
``tests.benchmarks.*`` (the repository root on ``sys.path``), the same way the
tests import ``tests.servers``.
"""
