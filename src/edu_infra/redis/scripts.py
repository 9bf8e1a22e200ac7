"""The Lua script of a cached read's hit path, and how to read what it returns.

One EVALSHA reads the epoch (the replication id, `INFO replication`), the generations and
the value of the key they select, so that a hit stays one round trip.
"""

from __future__ import annotations

import re
from typing import Any

from redis.exceptions import NoPermissionError, ResponseError

__all__ = ["EPOCH_DIGITS", "VERSIONED_LUA", "as_text", "refuses_scripts", "valid_epoch"]

#: How many hex digits of the replication id make the epoch (64 bits: never repeats).
EPOCH_DIGITS = 16

#: KEYS: generation keys; ARGV[1]: the value key's base; ARGV[2]: the expiry (ms) of a created
#: generation, "" for none; ARGV[2 + i]: a fresh generation for KEYS[i] (JSON string), used
#: only when KEYS[i] holds no string (absent, deleted, evicted, expired, or corrupt). Lua's
#: `math.random` repeats its sequence in every script, so the randomness comes from the
#: client. The script runs atomically, so concurrent readers agree on a created generation;
#: when every generation exists it writes nothing. Returns the raw generations, the selected
#: key, its raw value and the epoch (see `RedisCache.get_versioned`). The epoch is read in
#: the same script so that a hit stays one round trip.
VERSIONED_LUA = """
local info = redis.call('INFO', 'replication')
local epoch = string.sub(string.match(info, 'master_replid:(%x+)') or '', 1, EPOCH_DIGITS)
local px = tonumber(ARGV[2])
local out = {}
local key = ARGV[1] .. '@' .. epoch
for i, name in ipairs(KEYS) do
  local raw = redis.call('GET', name)
  local generation = nil
  if raw then
    local ok, value = pcall(cjson.decode, raw)
    if ok and type(value) == 'string' then generation = value end
  end
  if not generation then
    raw = ARGV[2 + i]
    generation = cjson.decode(raw)
    if px then redis.call('SET', name, raw, 'PX', px) else redis.call('SET', name, raw) end
  end
  out[i] = raw
  key = key .. '.' .. generation
end
out[#KEYS + 1] = key
out[#KEYS + 2] = redis.call('GET', key)
out[#KEYS + 3] = epoch
return out
""".replace("EPOCH_DIGITS", str(EPOCH_DIGITS))


def as_text(raw: Any) -> str:
    """A reply element as text (redis-py returns bytes unless told to decode)."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


_EPOCH = re.compile(f"[0-9a-f]{{{EPOCH_DIGITS}}}")


def valid_epoch(epoch: str) -> bool:
    """16 hex digits: what a replication id gives; anything else names no history."""
    return _EPOCH.fullmatch(epoch) is not None


def refuses_scripts(exc: ResponseError) -> bool:
    """Redis will not run our script (ACL, no Lua, keys it cannot see, a command it forbids)."""
    text = str(exc).lower()
    return isinstance(exc, NoPermissionError) or any(
        word in text
        for word in (
            "noperm",
            "unknown command",
            "non local key",
            "undeclared",
            "can't run this command",
        )
    )
