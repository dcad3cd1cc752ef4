"""Records only the store and the API share (the detectors' shapes are in ``records``)."""

from __future__ import annotations

import time
from typing import Any, Literal

import msgspec

from distillguard.records import iso

Role = Literal["service", "analyst", "admin"]
SuppressionScope = Literal["account", "org", "cluster"]
ROLES: tuple[Role, ...] = ("service", "analyst", "admin")


class Suppression(msgspec.Struct, kw_only=True):
    """A rule that stops new alerts about a subject (scoring goes on).

    ``expires_at`` None means until deleted; an expired rule is ignored, not an error.
    """

    suppression_id: str
    scope: SuppressionScope
    value: str
    reason: str
    created_by: str
    created_at: str
    expires_at: str | None = None

    def active(self, now: float | None = None) -> bool:
        if self.expires_at is None:
            return True
        from distillguard.store.schema import epoch_ms

        return epoch_ms(self.expires_at) > (time.time() if now is None else now) * 1000


class ApiKeyRecord(msgspec.Struct, kw_only=True):
    """One API key as stored: the SHA-256 of its secret, never the secret."""

    key_id: str
    name: str
    role: Role
    secret_sha256: str
    created_at: str
    revoked_at: str | None = None


class AuditEntry(msgspec.Struct, kw_only=True):
    """One analyst or admin action, appended to ``dg:audit`` and never rewritten."""

    at: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


def now_iso() -> str:
    return iso(time.time())
