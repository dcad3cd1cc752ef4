"""Offline replay, metrics and baselines: how good is a detector, measured."""
