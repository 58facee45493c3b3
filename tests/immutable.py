"""Files no process may write, for the block (``chattr +i``): how a storage fault is made.

Needs root on ext2/3/4; the test is skipped elsewhere. Never a database's ``-shm``
file: SQLite maps it into memory, and a write there would kill the process (SIGBUS).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def sqlite_files(database: Path) -> list[Path]:
    """The database file and its write-ahead log, as they exist now."""
    return [p for p in (database, database.with_name(database.name + "-wal")) if p.exists()]


@contextmanager
def immutable(paths: list[Path]) -> Iterator[None]:
    chattr = shutil.which("chattr")
    names = [str(p) for p in paths]
    if chattr is None or subprocess.run([chattr, "+i", *names], capture_output=True,
                                        check=False).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root on ext2/3/4)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", *names], capture_output=True, check=False)
