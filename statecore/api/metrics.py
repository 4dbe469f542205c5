"""``GET /metrics`` on the HTTP API: Prometheus' text format, open like ``/`` (a scraper has no token).

It shows host names and states, never errors or reasons. Added by ``statecore serve``
when prometheus-client is installed (the metrics extra); the API works without it.
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from loguru import logger

from statecore.errors import MissingExtra
from statecore.store import Store


def add_metrics(app: FastAPI, store: Store, service_down_time: float | None) -> None:
    """Every host's services in ``store`` (``statecore serve`` runs no engine), and the store's errors."""
    try:
        from statecore.metrics import exposition, store_registry
    except MissingExtra as missing:
        logger.warning("no /metrics: {}", missing)
        return
    registry = store_registry(store, service_down_time)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body, content_type = exposition(registry)
        return Response(body, media_type=content_type)
