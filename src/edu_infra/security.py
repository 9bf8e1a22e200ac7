"""Password hashing with argon2id (pwdlib); bcrypt hashes still verify and get upgraded.

argon2id is slow on purpose (tens to hundreds of milliseconds and 64 MiB per hash), so the
use cases call `hash_async` / `verify_async`, which run in a small thread pool of this
hasher: the event loop keeps serving other requests, and at most `max_threads` hashes (and
their memory) run at once; the rest queue. argon2's C code releases the GIL.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

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
        max_threads: int = 2,
    ) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self._argon = Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._hash = PasswordHash((self._argon, BcryptHasher()))
        self.max_threads = max_threads
        self._pool: ThreadPoolExecutor | None = None
        #: A hash of these parameters that unknown logins verify against (AuthService),
        #: built here so the first unknown login costs one verify, not a hash more.
        self.dummy_hash = self.hash("not-a-real-password")

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

    async def hash_async(self, password: str) -> str:
        """`hash` in this hasher's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor(), self.hash, password
        )

    async def verify_async(self, password: str, hashed: str) -> bool:
        """`verify` in this hasher's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor(), self.verify, password, hashed
        )

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_threads, thread_name_prefix="edu-hash")
        return self._pool

    async def aclose(self) -> None:
        """Stop the thread pool (hashes already queued still finish)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
