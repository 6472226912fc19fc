"""Migration 8: table `node_cache`, the node results of `compile(cache=saver)` (`_cache`)."""

from __future__ import annotations

__all__ = ["CACHE_SQL"]

CACHE_SQL = """
CREATE TABLE IF NOT EXISTS __SCHEMA__.node_cache (
    ns text NOT NULL,
    key text NOT NULL,
    value bytea NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (ns, key)
);
"""
