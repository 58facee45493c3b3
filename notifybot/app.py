"""The Quart application: the webhook endpoint, health, and the workers beside it.

``create_app`` builds a fresh app for one configuration. Its lifecycle is one
``AsyncExitStack``: each resource is entered as it is opened at startup (store,
senders, reloader, the supervised group of background tasks, the outbox), so a
failed startup closes what was opened, and shutdown closes everything in
reverse. On shutdown the outbox stops claiming first, sends in flight get a grace
period, and whatever is unfinished returns to ``pending``.

Every answer is JSON: input gets 2xx or 4xx with a reason, a storage failure 503
(nothing was stored; ``/healthz`` says so too), anything unexpected 500.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .channel_health import ChannelHealth
from .channels import Sender, build_sender
from .config import Config
from .endpoint import WebhookEndpoint, encode
from .errors import ConfigError
from .health import Health, Probed, describe, is_storage_error
from .hops import Hops
from .metrics import Metrics, named_events
from .outbox import Outbox
from .pipeline import Pipeline
from .reload import Reloader
from .rendering import Renderer
from .store import Store, open_store
from .supervisor import Supervisor
from .threads import thread_ages
from .watchdog import Watchdog

log = logging.getLogger("notifybot.app")
# A webhook not committed by then is answered 503 rather than left hanging (a lock held
# by another process makes SQLite wait 10 s per statement). Its write is not cancelled:
# it may still commit, and a resent body is then answered "duplicate".
STORAGE_TIMEOUT = 15.0


def create_app(config: Config, *, store: Store | None = None,
               senders: dict[str, Sender] | None = None, renderer: Renderer | None = None,
               config_path: Path | None = None, watch_interval: float = 1.0,
               address: str | None = None, storage_timeout: float = STORAGE_TIMEOUT) -> Quart:
    """A Quart app serving ``config``.

    ``store``, ``senders`` and ``renderer`` may be given (tests); with
    ``config_path`` the file and the templates are watched and reloaded on change.
    ``address`` is where the server really listens, for the startup log line.
    A webhook not committed within ``storage_timeout`` seconds is answered 503.
    """
    app = Quart("notifybot")
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_body_bytes
    store = store or open_store(config.server.database)
    senders = senders if senders is not None else {
        name: build_sender(name, chan.options) for name, chan in config.channels.items()}
    event_names = _EventNames()
    metrics = Metrics(configured_events=lambda: event_names(pipeline.config))
    outbox = Outbox(store, senders, config.delivery, metrics=metrics,
                    thread_ages=thread_ages(config))
    pipeline = Pipeline(config, store, senders, renderer=renderer, metrics=metrics,
                        on_enqueued=outbox.wake)
    outbox.rerender = pipeline.payload_for
    outbox.root_view = pipeline.root_view
    hops = Hops(store, lambda: pipeline.config, senders, pipeline.payload_as,
                ChannelHealth(config.channels, metrics.channel_up), clock=pipeline.clock,
                on_enqueued=outbox.wake)
    outbox.on_outcome = hops.on_outcome  # channel health, and fallbacks of dead deliveries
    reloader = Reloader(config_path or config.path, pipeline, outbox, senders, metrics)
    supervisor = Supervisor()
    health = Health(_probe(store), supervisor.down)
    health.add_check("failing", hops.failing)  # "degraded" while a channel fails
    app.extensions["notifybot"] = pipeline
    app.extensions["notifybot.reloader"] = reloader
    app.extensions["notifybot.health"] = health
    app.extensions["notifybot.supervisor"] = supervisor
    lifecycle = contextlib.AsyncExitStack()

    def wake(kind: str) -> None:
        (pipeline.wake if kind == "events" else outbox.wake)()

    async def open_all() -> None:
        lifecycle.push_async_callback(_quietly, "store", store.close)
        await store.migrate()
        lifecycle.push_async_callback(_close_senders, senders)  # the ones current at shutdown
        for sender in senders.values():
            await sender.open()
        lifecycle.push_async_callback(_quietly, "reloader", reloader.close)
        await store.listen(wake)
        await lifecycle.enter_async_context(supervisor)
        # One line per background task; the outbox stops (gracefully) before the group.
        supervisor.start("router", lambda: pipeline.run_router(config.delivery.poll_interval))
        supervisor.start("outbox", outbox.run)
        supervisor.start("hops", hops.run)  # escalation of deliveries kept waiting
        lifecycle.push_async_callback(stop_outbox)
        if config_path is not None:
            supervisor.start("reloader", lambda: reloader.watch(watch_interval))
        supervisor.start("watchdog", Watchdog(pipeline, started_at=pipeline.clock()).run)

    async def stop_outbox() -> None:
        supervisor.stopping()  # the outbox's run() returns now, and that is no failure
        await _quietly("outbox", outbox.stop)

    @app.before_serving
    async def start() -> None:
        try:
            await open_all()
        except BaseException:
            await lifecycle.aclose()  # what was opened before the failure, in reverse
            raise
        log.info("serving %s on %s with %d channel(s)", config.server.webhook_path,
                 address or config.server.bind, len(senders))

    @app.after_serving
    async def stop() -> None:
        await lifecycle.aclose()

    @app.get("/metrics")
    async def metrics_page() -> Response:
        body = await metrics.render(store, pipeline.clock())
        return Response(body, content_type=CONTENT_TYPE_LATEST)

    @app.post("/-/reload")
    async def reload() -> tuple[Response, int]:
        if not loopback(request.remote_addr):
            return _error(403, "reload is only accepted from loopback")
        try:
            new = await reloader.reload("POST /-/reload")
        except ConfigError as exc:
            return _error(400, f"refused, still running the last good configuration: {exc}")
        return jsonify({"reloaded": True, "channels": len(new.channels),
                        "subscriptions": len(new.index.all)}), 200

    endpoint = WebhookEndpoint(app.asgi_app, path=config.server.webhook_path,
                               max_body=config.server.max_body_bytes, pipeline=pipeline,
                               health=health, metrics=metrics, storage_timeout=storage_timeout)
    app.asgi_app = endpoint  # type: ignore[method-assign]  # Quart's way to wrap the app

    @app.post(config.server.webhook_path)
    async def webhook() -> tuple[Response, int]:
        """A POST the endpoint leaves to Quart (a request target in absolute form,
        ``POST http://host/hirehop``, whose path is not the bare path) gets the very
        same answers."""
        body = await request.get_data(as_text=False, parse_form_data=False)
        assert isinstance(body, bytes)
        status, answer = await endpoint.answer(body, request.content_type or "",
                                               dict(request.headers))
        return _json(answer), status

    @app.get("/healthz")
    async def healthz() -> tuple[Response, int]:
        report = await health.report()
        answer: dict[str, Any] = {"status": report.status, **report.problems}
        if report.http_status == 200:
            counts = await store.counts()
            answer["deliveries"] = {str(k): v for k, v in counts.items()}
        return jsonify(answer), report.http_status

    @app.errorhandler(RequestEntityTooLarge)
    async def too_large(_: Any) -> tuple[Response, int]:
        return _error(413, f"body over {config.server.max_body_bytes} bytes")

    @app.errorhandler(404)
    async def not_found(_: Any) -> tuple[Response, int]:
        return _error(404, f"not found; webhooks are POSTed to {config.server.webhook_path}")

    @app.errorhandler(405)
    async def wrong_method(_: Any) -> tuple[Response, int]:
        return _error(405, "method not allowed")

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> tuple[Response, int]:
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> tuple[Response, int]:
        if is_storage_error(exc):
            health.storage_failed(exc)
            return _error(503, f"storage unavailable ({describe(exc)})")
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return _error(500, "internal error; it has been logged")

    return app


class _EventNames:
    """The exact event names a configuration's subscriptions spell out (for metric labels),
    worked out once per configuration: a reload brings a new one."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._names: frozenset[str] = frozenset()

    def __call__(self, config: Config) -> frozenset[str]:
        if config is not self._config:
            self._config = config
            self._names = named_events([p for sub in config.index.all for p in sub.events])
        return self._names


def loopback(address: str | None) -> bool:
    """Whether a peer address is loopback, IPv4-mapped IPv6 (``::ffff:127.0.0.1``) included."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _probe(store: Store) -> Callable[[], Awaitable[object]]:
    """A write probe if the store has one, else a read (stores given by tests)."""
    return store.probe if isinstance(store, Probed) else store.counts


async def _quietly(what: str, close: Callable[[], Awaitable[object]]) -> None:
    """Close one resource; a failure is logged, and the rest still close."""
    try:
        await close()
    except Exception:
        log.exception("could not close the %s cleanly", what)


async def _close_senders(senders: dict[str, Sender]) -> None:
    for name, sender in reversed(list(senders.items())):
        await _quietly(f"channel {name}", sender.close)


def _json(answer: dict[str, Any]) -> Response:
    """A JSON answer, encoded directly (the webhook's hot path; jsonify costs more)."""
    return Response(encode(answer), content_type="application/json")


def _error(status: int, reason: str) -> tuple[Response, int]:
    return _json({"error": reason}), status
