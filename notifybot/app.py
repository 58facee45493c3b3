"""The Quart application: the webhook endpoint, health, and the workers beside it.

``create_app`` builds a fresh app for one configuration. The router and the
delivery worker start in ``before_serving`` and stop in ``after_serving``:
on shutdown the outbox stops claiming, sends in flight get a grace period, and
whatever is unfinished returns to ``pending``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from .channel_health import ChannelHealth
from .channels import Sender, build_sender
from .config import Config
from .errors import ConfigError, WebhookRejected
from .hops import Hops
from .metrics import Metrics
from .outbox import Outbox
from .pipeline import Pipeline
from .reload import Reloader
from .rendering import Renderer
from .store import Store, open_store
from .threads import thread_ages
from .watchdog import Watchdog

log = logging.getLogger("notifybot.app")


def create_app(config: Config, *, store: Store | None = None,
               senders: dict[str, Sender] | None = None, renderer: Renderer | None = None,
               config_path: Path | None = None, watch_interval: float = 1.0) -> Quart:
    """A Quart app serving ``config``.

    ``store``, ``senders`` and ``renderer`` may be given (tests); with
    ``config_path`` the file and the templates are watched and reloaded on change.
    """
    app = Quart("notifybot")
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_body_bytes
    store = store or open_store(config.server.database)
    senders = senders if senders is not None else {
        name: build_sender(name, chan.options) for name, chan in config.channels.items()}
    metrics = Metrics()
    outbox = Outbox(store, senders, config.delivery, metrics=metrics,
                    thread_ages=thread_ages(config))
    pipeline = Pipeline(config, store, senders, renderer=renderer, metrics=metrics,
                        on_enqueued=outbox.wake)
    outbox.rerender = pipeline.payload_for
    hops = Hops(store, lambda: pipeline.config, senders, pipeline.payload_as,
                ChannelHealth(config.channels, metrics.channel_up), clock=pipeline.clock,
                on_enqueued=outbox.wake)
    outbox.on_outcome = hops.on_outcome  # channel health, and fallbacks of dead deliveries
    reloader = Reloader(config_path or config.path, pipeline, outbox, senders, metrics)
    app.extensions["notifybot"] = pipeline
    app.extensions["notifybot.reloader"] = reloader
    tasks: list[asyncio.Task[None]] = []

    def wake(kind: str) -> None:
        (pipeline.wake if kind == "events" else outbox.wake)()

    @app.before_serving
    async def start() -> None:
        await store.migrate()
        for sender in senders.values():
            await sender.open()
        await store.listen(wake)
        tasks.append(asyncio.create_task(pipeline.run_router(config.delivery.poll_interval)))
        tasks.append(asyncio.create_task(outbox.run()))
        tasks.append(asyncio.create_task(hops.run()))  # escalation of deliveries kept waiting
        if config_path is not None:
            tasks.append(asyncio.create_task(reloader.watch(watch_interval)))
        watchdog = Watchdog(pipeline, started_at=pipeline.clock())
        tasks.append(asyncio.create_task(watchdog.run()))
        log.info("serving %s on %s with %d channel(s)", config.server.webhook_path,
                 config.server.bind, len(senders))

    @app.after_serving
    async def stop() -> None:
        await outbox.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await reloader.close()
        for sender in senders.values():
            await sender.close()
        await store.close()

    @app.get("/metrics")
    async def metrics_page() -> Response:
        body = await metrics.render(store, pipeline.clock())
        return Response(body, content_type=CONTENT_TYPE_LATEST)

    @app.post("/-/reload")
    async def reload() -> tuple[Response, int]:
        if not _loopback(request.remote_addr):
            return _error(403, "reload is only accepted from loopback")
        try:
            new = await reloader.reload("POST /-/reload")
        except ConfigError as exc:
            return _error(400, f"refused, still running the last good configuration: {exc}")
        return jsonify({"reloaded": True, "channels": len(new.channels),
                        "subscriptions": len(new.index.all)}), 200

    @app.post(config.server.webhook_path)
    async def webhook() -> tuple[Response, int]:
        length = request.content_length
        if length is not None and length > config.server.max_body_bytes:
            return _error(413, f"body over {config.server.max_body_bytes} bytes")
        body = await request.get_data(as_text=False, parse_form_data=False)
        assert isinstance(body, bytes)
        try:
            received = await pipeline.receive(body, request.content_type or "",
                                              dict(request.headers))
        except WebhookRejected as rejected:
            log.warning("rejected webhook: %s", rejected.reason,
                        extra={"reason": rejected.reason})
            return _error(rejected.status, rejected.reason)
        if received.duplicate:
            return jsonify({"duplicate": True, "event_id": received.event_id}), 200
        return jsonify({"event_id": received.event_id}), 202

    @app.get("/healthz")
    async def healthz() -> tuple[Response, int]:
        counts = await store.counts()
        # "degraded" with the failing channels while any fails; still 200: the process runs.
        return jsonify({**hops.report(), "deliveries": {str(k): v for k, v in counts.items()}}), 200

    @app.errorhandler(RequestEntityTooLarge)
    async def too_large(_: Any) -> tuple[Response, int]:
        return _error(413, f"body over {config.server.max_body_bytes} bytes")

    @app.errorhandler(404)
    async def not_found(_: Any) -> tuple[Response, int]:
        return _error(404, f"not found; webhooks are POSTed to {config.server.webhook_path}")

    @app.errorhandler(405)
    async def wrong_method(_: Any) -> tuple[Response, int]:
        return _error(405, "method not allowed")

    return app


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _error(status: int, reason: str) -> tuple[Response, int]:
    return jsonify({"error": reason}), status
