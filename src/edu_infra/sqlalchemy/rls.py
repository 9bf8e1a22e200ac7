"""Signed tenant settings for PostgreSQL row-level security.

The application role can write any setting (`set_config` is open to every role), so the
policies do not trust `app.tenant_id` / `app.unscoped` alone: `edu_tenant()` and
`edu_unscoped()` (SECURITY DEFINER, migration 0002) accept them only with a valid
`app.tenant_sig`, an HMAC-SHA256 under EDU_RLS_KEY of

    tenant:<tenant uuid>:<server pid>      or      unscoped:<server pid>

The key material lives in a table only the owner can read, so raw SQL through a session
cannot sign another tenant; the server pid binds a signature to one backend, so one read
by raw SQL is useless on another connection.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from uuid import UUID

from attrs import field, frozen
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from edu_domain.errors import ValidationError
from edu_infra.settings import MIN_RLS_KEY_LENGTH

_BLOCK = 64  # SHA-256 block size: HMAC pads the key to it
#: Where each pooled connection keeps its signer (the pool record's `info`).
SIGNER_INFO = "edu_rls_signer"
KEY_TABLE = "edu_rls_key"


def _missing_key() -> ValidationError:
    return ValidationError(
        "rls_key",
        "EDU_RLS_KEY is required on PostgreSQL: row-level security only trusts a tenant"
        " signed with it (see README, Roles and row-level security)",
    )


def check_key(key: str | None) -> bytes:
    """The key as bytes; a missing or short key is a ValidationError naming EDU_RLS_KEY."""
    if key is None or not key.strip():
        raise _missing_key()
    if len(key) < MIN_RLS_KEY_LENGTH:
        raise ValidationError(
            "rls_key", f"EDU_RLS_KEY must be at least {MIN_RLS_KEY_LENGTH} characters"
        )
    return key.encode()


def sign(message: str, key: bytes) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def signed_settings(tenant: UUID | None, server_pid: int, key: bytes) -> dict[str, str]:
    """The values of `app.tenant_id`, `app.unscoped` and `app.tenant_sig` (no tenant: unscoped)."""
    if tenant is None:
        return {"tenant": "", "unscoped": "on", "signature": sign(f"unscoped:{server_pid}", key)}
    return {
        "tenant": str(tenant),
        "unscoped": "off",
        "signature": sign(f"tenant:{tenant}:{server_pid}", key),
    }


def key_material(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys, so SQL computes it with two `sha256()` calls.

    HMAC(k, m) = sha256(opad_key || sha256(ipad_key || m)), with the key hashed first
    when longer than a block, then zero-padded to 64 bytes (RFC 2104).
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


#: Signed settings a connection remembers (one per tenant it served), before starting over.
_SIGNED_PER_CONNECTION = 256


@frozen
class ConnectionSigner:
    """Signs the settings of one pooled connection: the key and that backend's pid."""

    server_pid: int
    key: bytes = field(repr=False)

    _signed: dict[UUID | None, dict[str, str]] = field(factory=dict, repr=False, eq=False)

    def settings(self, tenant: UUID | None) -> dict[str, str]:
        """The signed settings of `tenant` on this connection (an HMAC once per tenant)."""
        found = self._signed.get(tenant)
        if found is None:
            if len(self._signed) >= _SIGNED_PER_CONNECTION:
                self._signed.clear()
            found = self._signed[tenant] = signed_settings(tenant, self.server_pid, self.key)
        return dict(found)


_BACKEND_PID = "SELECT pg_backend_pid()"


def install_signer(engine: AsyncEngine, key: bytes) -> None:
    """Give every new connection of `engine` its signer (the pid is fixed per connection)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # asked, not taken from the startup packet: a pooler in session mode (PgBouncer)
        # hands the client a process id of its own
        pid = int(dbapi_connection.run_async(lambda conn: conn.fetchval(_BACKEND_PID)))
        record.info[SIGNER_INFO] = ConnectionSigner(pid, key)


def signer_of(connection: Connection) -> ConnectionSigner:
    """The connection's signer; an engine built without a key cannot sign (fail loudly)."""
    signer = connection.info.get(SIGNER_INFO)
    if not isinstance(signer, ConnectionSigner):
        raise _missing_key()
    return signer


_UPSERT_KEY = text(
    "INSERT INTO edu_rls_key AS k (id, ipad, opad) VALUES (true, :ipad, :opad)"
    " ON CONFLICT (id) DO UPDATE SET ipad = EXCLUDED.ipad, opad = EXCLUDED.opad,"
    " rotated_at = now() WHERE (k.ipad, k.opad) IS DISTINCT FROM (EXCLUDED.ipad, EXCLUDED.opad)"
)


def store_key(connection: Connection, key: str) -> bool:
    """Store (or rotate to) the key material, as the owner; False: 0002 not applied yet."""
    exists = connection.execute(text("SELECT to_regclass('edu_rls_key') IS NOT NULL"))
    if not exists.scalar_one():
        return False
    ipad, opad = key_material(check_key(key))
    connection.execute(_UPSERT_KEY, {"ipad": ipad, "opad": opad})
    return True


__all__ = [
    "ConnectionSigner",
    "check_key",
    "install_signer",
    "key_material",
    "signed_settings",
    "signer_of",
    "store_key",
]
