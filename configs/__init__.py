"""The shipped defaults (``default.yaml``) and scenarios, installed as ``distillguard.configs``.

A package only so that an installed distillguard carries its configs with it and finds
them with ``importlib.resources``, whatever the working directory.
"""
