"""Secret fields of outbox events sealed at rest (a mail's raw token never sits in a row).

An event field declared `repr=False` holds a secret: the raw verification or reset token
the mail must carry. An outbox row keeps it until the relay delivers the mail, and whoever
reads the table (a backup, a replica, raw SQL as the application role) must not be able to
use it. With a key, the codec seals such a field: HMAC-SHA256 as a pseudo-random function
in counter mode (a fresh 128-bit nonce per value) encrypts it, and an HMAC-SHA256 tag over
the nonce, the ciphertext and the place it belongs to (row key, organization, event kind,
field) authenticates it. A sealed value cannot be read without the key, changed, or moved
to another row or organization. Both keys are derived from one secret (EDU_RLS_KEY on the
SQL adapter), with distinct labels; the standard library is all it needs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_NONCE = 16
_TAG = 32
_VERSION = "s1:"


def _prf(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


class Sealer:
    """Seals and opens the secret fields of outbox rows with keys derived from `secret`."""

    def __init__(self, secret: str) -> None:
        root = _prf(secret.encode(), b"edu-core outbox seal")
        self._encrypt = _prf(root, b"encrypt")
        self._authenticate = _prf(root, b"authenticate")

    def __repr__(self) -> str:
        return "Sealer(***)"

    def _stream(self, nonce: bytes, length: int) -> bytes:
        blocks = (length + 31) // 32
        return b"".join(_prf(self._encrypt, nonce + n.to_bytes(4, "big")) for n in range(blocks))[
            :length
        ]

    def _tag(self, nonce: bytes, cipher: bytes, place: str) -> bytes:
        return _prf(self._authenticate, nonce + cipher + b"\x00" + place.encode())

    def seal(self, value: str, place: str) -> str:
        """`value` encrypted and bound to `place` (where it is stored)."""
        data = value.encode("utf-8", "surrogatepass")
        nonce = secrets.token_bytes(_NONCE)
        cipher = bytes(a ^ b for a, b in zip(data, self._stream(nonce, len(data)), strict=True))
        sealed = nonce + cipher + self._tag(nonce, cipher, place)
        return _VERSION + base64.urlsafe_b64encode(sealed).decode()

    def open(self, sealed: object, place: str) -> str:
        """The value `seal` sealed for `place`; ValueError for anything else."""
        if not isinstance(sealed, str) or not sealed.startswith(_VERSION):
            raise ValueError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_VERSION) :].encode())
        except (ValueError, UnicodeEncodeError):
            raise ValueError("not a sealed value") from None
        if len(raw) < _NONCE + _TAG:
            raise ValueError("not a sealed value")
        nonce, cipher, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
        if not hmac.compare_digest(tag, self._tag(nonce, cipher, place)):
            raise ValueError("sealed under another key or for another place")
        data = bytes(a ^ b for a, b in zip(cipher, self._stream(nonce, len(cipher)), strict=True))
        return data.decode("utf-8", "surrogatepass")


__all__ = ["Sealer"]
