"""Password hashing with argon2id (pwdlib); bcrypt hashes still verify and get upgraded."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher


class Argon2PasswordHasher:
    """argon2id for new hashes; bcrypt accepted for verification so old accounts can sign in
    (the login use case rehashes them on success, see `needs_rehash`)."""

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_cost: int = 65_536,
        parallelism: int = 4,
    ) -> None:
        self._argon = Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._hash = PasswordHash((self._argon, BcryptHasher()))

    def hash(self, password: str) -> str:
        return str(self._hash.hash(password))

    def verify(self, password: str, hashed: str) -> bool:
        try:
            return bool(self._hash.verify(password, hashed))
        except Exception:  # a malformed or unknown hash is a failed login, never a crash
            return False

    def needs_rehash(self, hashed: str) -> bool:
        """True for bcrypt (or any non-argon2id) hashes and for weaker argon2 parameters."""
        if not hashed.startswith("$argon2id$"):
            return True
        try:
            return bool(self._argon.check_needs_rehash(hashed))
        except Exception:
            return True
