"""``python -m distillguard`` is the ``distillguard`` command."""

from distillguard.cli import app

app()
