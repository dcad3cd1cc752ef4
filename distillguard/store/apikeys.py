"""API keys: ``dg_<key_id>_<secret>``, stored as the SHA-256 of the secret.

Why a plain SHA-256 and not bcrypt/argon2: the secret is 256 random bits, not a
password a person chose, so there is no dictionary to try and brute force of the
hash is infeasible; a deliberately slow hash would only add milliseconds to every
request on the platform services' hot path. The public ``key_id`` finds the record
in one GET, and the digests are compared with ``hmac.compare_digest`` so the
comparison time does not leak how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import msgspec
import redis.asyncio as aredis

from distillguard.records import dumps, loads
from distillguard.store import schema
from distillguard.store.audit import entry, queue_audit
from distillguard.store.connection import text
from distillguard.store.models import ApiKeyRecord, Role, now_iso

KEY_PREFIX = "dg"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(role: Role, name: str) -> tuple[ApiKeyRecord, str]:
    """A fresh record and the plaintext key, which exists only in the return value.

    >>> record, key = new_key("analyst", "ana")
    >>> key.startswith(f"dg_{record.key_id}_"), verify(record, parse(key)[1])
    (True, True)
    """
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        key_id=key_id, name=name, role=role, secret_sha256=digest(secret), created_at=now_iso()
    )
    return record, f"{KEY_PREFIX}_{key_id}_{secret}"


def parse(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None.

    >>> parse("dg_0123456789ab_s3cr-et_x"), parse("nonsense")
    (('0123456789ab', 's3cr-et_x'), None)
    """
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1], parts[2]


def verify(record: ApiKeyRecord, secret: str) -> bool:
    return record.revoked_at is None and hmac.compare_digest(record.secret_sha256, digest(secret))


async def create_key(
    client: aredis.Redis, role: Role, name: str, actor: str
) -> tuple[ApiKeyRecord, str]:
    record, key = new_key(role, name)
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(schema.api_key(record.key_id), dumps(record))
        pipe.sadd(schema.API_KEYS, record.key_id)
        queue_audit(pipe, entry(actor, "key.create", record.key_id, role=role, name=name))
        await pipe.execute()
    return record, key


async def get_key(client: aredis.Redis, key_id: str) -> ApiKeyRecord | None:
    raw = await client.get(schema.api_key(key_id))
    if raw is None:
        return None
    try:
        return loads(raw, ApiKeyRecord)
    except msgspec.DecodeError:
        return None


async def list_keys(client: aredis.Redis) -> list[ApiKeyRecord]:
    ids = sorted(text(i) for i in await client.smembers(schema.API_KEYS))
    if not ids:
        return []
    raws = await client.mget([schema.api_key(i) for i in ids])
    return sorted(
        (loads(r, ApiKeyRecord) for r in raws if r is not None), key=lambda r: r.created_at
    )


async def revoke_key(client: aredis.Redis, key_id: str, actor: str) -> ApiKeyRecord | None:
    """Mark the key revoked (kept for the audit trail); None if there is no such key."""
    record = await get_key(client, key_id)
    if record is None:
        return None
    if record.revoked_at is None:
        record = msgspec.structs.replace(record, revoked_at=now_iso())
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(schema.api_key(key_id), dumps(record))
            queue_audit(pipe, entry(actor, "key.revoke", key_id))
            await pipe.execute()
    return record
