"""Failures of the storage behind the domain, in the domain's words (storage/ raises them,
chained to the database's own error)."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """The database itself failed (locked, gone, full): retrying each request alone is no use."""


class StoreConflict(Exception):
    """A unique constraint refused a write (e.g. a receipt code drawn twice)."""
