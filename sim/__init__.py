"""Labelled traffic simulator: benign archetypes and distillation campaigns."""
