"""The example ASGI project of django-asyncredis: see examples/README.md."""
