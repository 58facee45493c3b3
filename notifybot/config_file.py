"""The configuration file as commands read and write it: no secrets needed, no torn writes.

Commands that edit or only read ``subscriptions.toml`` (``subscribe``,
``subscriptions``, ``deliveries``...) validate it exactly as ``notifybot check``
does, but with a placeholder for every ``${VAR}`` that is not set, so they work
where the secrets are not. A new text replaces the file atomically, after it
has been validated.
"""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .config import ENV_REF, Config, parse
from .errors import ConfigError

# Stand-ins for ${VAR}s that are not set, chosen to pass the check of the key they
# are used in, so that editing validates structure without needing the secrets.
_PLACEHOLDERS = {
    "chat_id": "-1001234567890",
    "from": "notifybot@example.invalid",
    "to": "notifybot@example.invalid",
    "host": "localhost",
    "base_url": "https://example.invalid/",
    "channel": "C0000000000",
    "bind": "127.0.0.1:8080",
    "webhook_path": "/hirehop",
    "database": "sqlite:///notifybot.db",
    "timezone": "UTC",
}
_PLACEHOLDER = "placeholder"


def read_text(path: Path) -> str:
    """The file's text exactly, line endings included."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", where=str(path)) from None


def validation_environ(raw: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` plus a placeholder for each ``${VAR}`` of ``raw`` that is not set."""
    completed = dict(environ)

    def visit(value: Any, key: str) -> None:
        if isinstance(value, str):
            for match in ENV_REF.finditer(value):
                name = match.group(1)
                if name not in completed:
                    whole = match.group(0) == value
                    completed[name] = _PLACEHOLDERS.get(key, _PLACEHOLDER) if whole else _PLACEHOLDER
        elif isinstance(value, Mapping):
            for k, v in value.items():
                visit(v, str(k))
        elif isinstance(value, list):
            for v in value:
                visit(v, key)

    visit(raw, "")
    return completed


def missing_variables(raw: Mapping[str, Any], environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every ``${VAR}`` of ``raw`` that ``environ`` does not set: (variable, dotted key), in order."""
    missing: list[tuple[str, str]] = []

    def visit(value: Any, key: str) -> None:
        if isinstance(value, str):
            missing.extend((m.group(1), key) for m in ENV_REF.finditer(value)
                           if m.group(1) not in environ)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                visit(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                visit(v, f"{key}[{i}]")

    visit(raw, "")
    return missing


def require_variables(path: Path, raw: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """One ConfigError naming every variable that is not set, and the key that uses it."""
    missing = missing_variables(raw, environ)
    if missing:
        names = sorted({name for name, _ in missing})
        where = "; ".join(f"{name} (used by {', '.join(k for n, k in missing if n == name)})"
                          for name in names)
        raise ConfigError(f"environment variable{'s' if len(names) > 1 else ''} not set: {where}",
                          where=str(path))


def validate(path: Path, text: str, environ: Mapping[str, str] | None = None) -> Config:
    """The configuration ``text`` would give at ``path``, checked as ``notifybot check`` checks it.

    ``${VAR}``s that are not set get placeholders: editing does not need the secrets.
    """
    raw = loads(text, path)
    env = validation_environ(raw, os.environ if environ is None else environ)
    try:
        return parse(raw, path, env)
    except ConfigError as exc:
        raise ConfigError(exc.message, where=exc.where or str(path), key=exc.key) from None


def write_validated(path: Path, new_text: str, *,
                    verify: Callable[[Config], object] | None = None) -> Config:
    """Validate ``new_text`` and only then replace ``path`` with it, atomically.

    On a ConfigError (from validation or ``verify``) the file is not touched. The
    text goes to a temporary file in the same folder, is fsynced, given the
    original's permission bits and renamed over it, so a reader (a running
    ``notifybot serve``) sees the old file or the new one, never half of one.
    """
    config = validate(path, new_text)
    if verify is not None:
        try:
            verify(config)
        except ConfigError as exc:
            raise ConfigError(exc.message, where=exc.where or str(path), key=exc.key) from None
    target = Path(os.path.realpath(path))  # through a symlink, not over it
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(new_text.encode("utf-8"))
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)
    return config


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def loads(text: str, where: Path | None = None) -> dict[str, Any]:
    """TOML text as a document, or a ConfigError (naming the file ``where`` if given)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=str(where) if where else None) from None
