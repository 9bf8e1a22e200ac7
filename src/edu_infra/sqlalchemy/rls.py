"""The tenant proof PostgreSQL row-level security trusts, bound to one transaction.

Raw SQL as the application role can read any statement text (`pg_stat_activity`, server
logs) and any setting of its own transaction, so nothing that travels or sits in a setting
may be worth anything in another transaction (migration 0003):

- The query that opens a transaction calls `edu_enter(scope, signature)` with an
  HMAC-SHA256 under EDU_RLS_KEY of `enter:<scope>:<pid>:<vxid>:<postmaster start>`, where
  `<vxid>` is the virtual transaction id the transaction will have. PostgreSQL never gives
  two transactions one vxid, so a signature read anywhere is refused everywhere else. The
  client predicts the vxid (a backend numbers its transactions one by one); a wrong guess
  raises SQLSTATE EDU01 naming the real one, and the opener retries once with it.
- `edu_enter` (SECURITY DEFINER) then writes `app.tenant_id` / `app.unscoped` and
  `app.tenant_proof`, an HMAC of the scope, the backend and the transaction's start time,
  which the policies check once per statement (`edu_verified()`). It never travels as SQL.

The key material lives in a table only the owner can read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from uuid import UUID

from attrs import define, field
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
#: The SQLSTATE `edu_enter` raises for a refused signature (its DETAIL names the real vxid).
REFUSED_SQLSTATE = "EDU01"
UNSCOPED = "*"

#: What a connection tells about itself once: its backend, the server's start, and the
#: virtual transaction id of this very query (the next transaction gets the one after it).
#: The virtual transaction id of the statement it is part of (a scalar subquery).
THIS_VXID = (
    "(SELECT l.virtualxid FROM pg_lock_status() l WHERE l.locktype = 'virtualxid'"
    " AND l.pid = pg_backend_pid() AND l.virtualxid = l.virtualtransaction)"
)
IDENTITY_QUERY = (
    "SELECT pg_backend_pid(), extract(epoch from pg_postmaster_start_time())::text, "  # noqa: S608
    + THIS_VXID
)
_VXID = re.compile(r"(?P<backend>-?[0-9]+)/(?P<local>[0-9]+)")
_VXID_DETAIL = re.compile(r"vxid=(?P<vxid>-?[0-9]+/[0-9]+)")
_LOCAL_IDS = 2**32  # local transaction ids are 32-bit and skip 0 when they wrap


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


def key_material(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys, so SQL computes it with two `sha256()` calls.

    HMAC(k, m) = sha256(opad_key || sha256(ipad_key || m)), with the key hashed first
    when longer than a block, then zero-padded to 64 bytes (RFC 2104).
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def scope_text(tenant: UUID | None) -> str:
    """How `edu_enter` names a scope: the tenant's UUID, or `*` for unscoped."""
    return UNSCOPED if tenant is None else str(tenant)


def _next_local(local: int) -> int:
    following = (local + 1) % _LOCAL_IDS
    return following or 1


@define
class ConnectionSigner:
    """Signs the transactions of one pooled connection, predicting each one's vxid."""

    server_pid: int
    started: str
    backend: int
    key: bytes = field(repr=False)
    #: the local transaction id the connection's next transaction will have
    next_local: int = 0
    #: how often a prediction was wrong (raw SQL, or statements outside a transaction)
    resyncs: int = 0
    #: HMAC keyed once, copied per signature (`sign` without the key schedule each time)
    _mac: Any = field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        self._mac = hmac.new(self.key, digestmod=hashlib.sha256)

    @classmethod
    def from_identity(cls, row: Any, key: bytes) -> ConnectionSigner:
        """From IDENTITY_QUERY's row."""
        pid, started, vxid = row
        backend, local = _parse_vxid(str(vxid))
        return cls(int(pid), str(started), backend, key, next_local=_next_local(local))

    def enter(self, tenant: UUID | None) -> tuple[str, str]:
        """`edu_enter`'s arguments for the next transaction: scope and signature."""
        scope = scope_text(tenant)
        mac = self._mac.copy()
        message = f"enter:{scope}:{self.server_pid}:{self.backend}/{self.next_local}:{self.started}"
        mac.update(message.encode())
        return scope, mac.hexdigest()

    def entered(self) -> None:
        """The transaction was accepted: the next one follows it."""
        self.next_local = _next_local(self.next_local)

    def ran(self, vxid: object) -> None:
        """A statement ran outside our transactions with `vxid` (a column of `THIS_VXID`):
        the next transaction follows it, however many transactions the driver used."""
        backend, local = _parse_vxid(str(vxid))
        if backend == self.backend:
            self.next_local = _next_local(local)

    def resync(self, refusal: BaseException) -> bool:
        """Learn the real vxid from a refusal, the driver's EDU01 error (the transaction is
        over after its rollback).

        False: not a refusal naming a vxid of this backend (retrying would not help).
        """
        vxid = refused_vxid(refusal)
        if vxid is None:
            return False
        backend, local = _parse_vxid(vxid)
        if backend != self.backend or local == self.next_local:
            return False  # the right vxid was refused: the key is wrong, not the guess
        self.next_local = _next_local(local)
        self.resyncs += 1
        return True


def _parse_vxid(vxid: str) -> tuple[int, int]:
    match = _VXID.fullmatch(vxid)
    if match is None:
        raise ValueError("not a virtual transaction id")
    return int(match["backend"]), int(match["local"])


def refused_vxid(refusal: BaseException) -> str | None:
    """The vxid an EDU01 refusal (the driver's error) names in its DETAIL."""
    if getattr(refusal, "sqlstate", None) != REFUSED_SQLSTATE:
        return None
    match = _VXID_DETAIL.search(str(getattr(refusal, "detail", "") or ""))
    return match["vxid"] if match else None


def install_signer(engine: AsyncEngine, key: bytes) -> None:
    """Give every new connection of `engine` its signer (asked of the server, not taken
    from the startup packet: a pooler in session mode hands out a process id of its own)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        row = dbapi_connection.run_async(lambda conn: conn.fetchrow(IDENTITY_QUERY))
        record.info[SIGNER_INFO] = ConnectionSigner.from_identity(row, key)


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
    "IDENTITY_QUERY",
    "REFUSED_SQLSTATE",
    "THIS_VXID",
    "ConnectionSigner",
    "check_key",
    "install_signer",
    "key_material",
    "refused_vxid",
    "scope_text",
    "sign",
    "signer_of",
    "store_key",
]
