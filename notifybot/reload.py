"""Hot reload: a new ``subscriptions.toml`` or template takes effect without a restart.

A reload is all or nothing. The new file and every template are checked first;
if anything is wrong the running configuration stays, and the error (file and
key) is logged and counted. Deliveries already enqueued keep the message they
were rendered with. Triggers: a change on disk (polled, see :meth:`watch`),
SIGHUP, and ``POST /-/reload`` from loopback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from pathlib import Path

from .channels import Sender, build_sender
from .config import Config
from .errors import ConfigError
from .metrics import Metrics
from .outbox import Outbox
from .pipeline import Pipeline, prepare
from .threads import thread_ages

log = logging.getLogger("notifybot.reload")
_RESTART_ONLY = ("bind", "webhook_path", "database", "max_body_bytes")


class Reloader:
    """Swaps the running configuration of a pipeline, its outbox and its senders."""

    def __init__(self, path: Path, pipeline: Pipeline, outbox: Outbox,
                 senders: MutableMapping[str, Sender], metrics: Metrics,
                 close_grace: float = 30.0) -> None:
        self.path = path
        self.pipeline = pipeline
        self.outbox = outbox
        self.senders = senders
        self.metrics = metrics
        self.close_grace = close_grace
        self._lock = asyncio.Lock()
        self._seen = self._fingerprint()
        self._closing: set[asyncio.Task[None]] = set()
        self._retired: list[Sender] = []

    async def reload(self, trigger: str) -> Config:
        """Load, check and switch to the configuration on disk; ConfigError leaves all as it was."""
        async with self._lock:
            self._seen = self._fingerprint()
            try:
                config, renderer, _ = prepare(self.path)
                fresh = await self._open_changed_senders(config)
            except ConfigError as exc:
                self.metrics.reloads.labels(outcome="failed").inc()
                log.error("reload (%s) refused, still running the last good configuration: %s",
                          trigger, exc, extra={"reason": str(exc)})
                raise
            self._warn_restart_only(config)
            old = {name: s for name, s in self.senders.items() if s is not fresh.get(name)}
            # No await from here to the end of the swap: the workers see all of it or none.
            for name in [n for n in self.senders if n not in config.channels]:
                del self.senders[name]
            self.senders.update(fresh)
            self.pipeline.reconfigure(config, renderer)
            self.outbox.reconfigure(config.delivery, thread_ages(config))
            self.outbox.wake()
            self._close_later([s for s in old.values() if s not in self.senders.values()])
            self.metrics.reloads.labels(outcome="ok").inc()
            log.info("reloaded (%s): %d channel(s), %d subscription(s)", trigger,
                     len(config.channels), len(config.index.all), extra={"reason": trigger})
            return config

    async def _open_changed_senders(self, config: Config) -> dict[str, Sender]:
        """Senders for the new config: the running one where a channel's options are unchanged."""
        current = self.pipeline.config.channels
        result: dict[str, Sender] = {}
        opened: list[Sender] = []
        try:
            for name, channel in config.channels.items():
                if name in self.senders and name in current and current[name].options == channel.options:
                    result[name] = self.senders[name]
                    continue
                sender = build_sender(name, channel.options)
                await sender.open()
                opened.append(sender)
                result[name] = sender
        except BaseException:
            for sender in opened:
                await sender.close()
            raise
        return result

    def _warn_restart_only(self, config: Config) -> None:
        running = self.pipeline.config.server
        for key in _RESTART_ONLY:
            if getattr(running, key) != getattr(config.server, key):
                log.warning("server.%s changed: it takes effect at the next restart", key)

    def _close_later(self, senders: list[Sender]) -> None:
        # A send in flight may still hold the old sender: give it time to finish.
        async def close() -> None:
            await asyncio.sleep(self.close_grace)
            for sender in senders:
                self._retired.remove(sender)
                await sender.close()

        if senders:
            self._retired.extend(senders)
            task = asyncio.create_task(close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """At shutdown: close the replaced senders now rather than after the grace."""
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)
        for sender in self._retired:
            await sender.close()
        self._retired.clear()

    async def watch(self, interval: float = 1.0) -> None:
        """Reload whenever the config file or a template changes on disk (mtime polling)."""
        while True:
            await asyncio.sleep(interval)
            if self._fingerprint() != self._seen:
                try:
                    await self.reload("file changed")
                except ConfigError:
                    pass  # logged by reload(); the next change is tried again
                except Exception:  # the watcher must outlive anything a file can do
                    log.exception("reload after a file change failed")

    def _fingerprint(self) -> tuple[tuple[str, float], ...]:
        files = [self.path]
        for folder in self.pipeline.renderer.folders:
            if folder.is_dir():
                files.extend(sorted(folder.glob("*.j2")))
        stamps = []
        for file in files:
            try:
                stamps.append((str(file), file.stat().st_mtime))
            except OSError:
                stamps.append((str(file), -1.0))
        return tuple(stamps)
