"""Versioned schema migrations, one list of statements per version, per backend.

A migration is only ever appended: version N is the N-th entry. ``migrate()``
applies the ones a database has not seen, inside a transaction.
"""

from __future__ import annotations

SQLITE_MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            digest TEXT NOT NULL UNIQUE,
            received_at REAL NOT NULL,
            name TEXT NOT NULL,
            content_type TEXT NOT NULL,
            headers TEXT NOT NULL,
            body BLOB NOT NULL,
            routed_at REAL
        )""",
        "CREATE INDEX events_unrouted ON events (id) WHERE routed_at IS NULL",
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL REFERENCES events (id),
            channel TEXT NOT NULL,
            subscription TEXT NOT NULL,
            destination TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            payload TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            lease_until REAL,
            last_error TEXT,
            receipt TEXT,
            UNIQUE (event_id, channel, subscription)
        )""",
        "CREATE INDEX deliveries_queue ON deliveries (destination, id) "
        "WHERE status IN ('pending', 'sending')",
        "CREATE INDEX deliveries_status ON deliveries (status, id)",
        "CREATE INDEX deliveries_event ON deliveries (event_id)",
        """CREATE TABLE destinations (
            key TEXT PRIMARY KEY,
            pace REAL NOT NULL DEFAULT 0,
            next_allowed_at REAL NOT NULL DEFAULT 0
        )""",
    ],
]
