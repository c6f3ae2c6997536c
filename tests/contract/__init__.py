"""Django's own cache contract, run against django_asyncredis: see ``run.py`` and docs/contract.md.

A package so the runner's pieces import as ``tests.contract.*``; pytest ignores
this directory (the contract run needs its own Django settings and app).
"""
