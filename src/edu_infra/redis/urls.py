"""Cache URLs: standalone, TLS, unix socket and cluster forms, split for redis-py.

- standalone: `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS),
  `unix:///path/to/socket?db=0`
- cluster: `redis+cluster://host:port` or `rediss+cluster://...`, or any `redis://` /
  `rediss://` URL with `?cluster=true`. Several seed nodes may be given comma-separated
  (`redis+cluster://h1:7000,h2:7001`). Cluster mode has no database number.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["parse_cache_url"]

_TRUE = {"1", "true", "yes", "on"}


def parse_cache_url(url: str) -> tuple[str, bool, list[tuple[str, int]]]:
    """Split a cache URL into (redis-py URL, is_cluster, extra cluster seed nodes)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = parse_qsl(parts.query, keep_blank_values=True)
    flags = [v for k, v in query if k == "cluster"]
    cluster = scheme.endswith("+cluster") or any(v.lower() in _TRUE for v in flags)
    scheme = scheme.removesuffix("+cluster")
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"not a Redis URL (redis://, rediss://, redis+cluster://): {url!r}")
    if cluster and scheme == "unix":
        raise ValueError("Redis Cluster does not support unix sockets")
    query = [(k, v) for k, v in query if k != "cluster"]
    netloc, seeds = parts.netloc, []
    if "," in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        first, *others = hosts.split(",")
        netloc = f"{userinfo}@{first}" if userinfo else first
        for other in others:
            host, colon, port = other.rpartition(":")
            if not colon:
                host, port = other, "6379"
            seeds.append((host.strip("[]"), int(port)))
    rebuilt = urlunsplit((scheme, netloc, parts.path, urlencode(query), parts.fragment))
    if scheme == "unix":  # urlunsplit would drop the empty authority ("unix:/path")
        rebuilt = f"unix://{parts.path}" + (f"?{urlencode(query)}" if query else "")
    return rebuilt, cluster, seeds
