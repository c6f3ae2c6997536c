"""A model, so tests can cache QuerySets as Django's contract tests do."""

from django.db import models


class Poll(models.Model):
    question = models.CharField(max_length=200)

    class Meta:
        app_label = "tests"
