"""Per-account behaviour features: pure functions of an account's events, no I/O."""

from distillguard.detectors.features.account import AccountState
from distillguard.detectors.features.signals import BY_NAME, SIGNAL_NAMES, SIGNALS, Signal

__all__ = ["BY_NAME", "SIGNALS", "SIGNAL_NAMES", "AccountState", "Signal"]
