"""Storage: pick the backend from the database URL."""

from __future__ import annotations

from .base import Delivery, DeliveryStatus, NewDelivery, Store, StoredEvent

__all__ = ["Delivery", "DeliveryStatus", "NewDelivery", "Store", "StoredEvent", "open_store"]


def open_store(url: str) -> Store:
    """``sqlite:///path`` or ``postgresql://...``; nothing is connected until first use."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # asyncpg is only imported when used

        store: Store = PostgresStore(url)
        return store
    from .sqlite import SQLiteStore

    return SQLiteStore.from_url(url)
