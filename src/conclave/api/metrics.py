"""The observability endpoints of the HTTP API (docs/http-api.md, "Metrics and alerts").

Rules:
- `GET /metrics` answers this node's registry in the Prometheus text format
  (`CONTENT_TYPE_LATEST`); it never forwards: every node is scraped on its own.
- `GET /v1/alerts` lists this node's active alerts and the recently resolved ones; alerts are
  evaluated inside each node, so each node answers for itself.
"""

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from conclave.api.inputs import check_query
from conclave.runtime.node import ConclaveNode


class ObservabilityApi:
    """Route handlers for the metrics and alerts of one node."""

    def __init__(self, node: ConclaveNode) -> None:
        self.node = node

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        del request
        body = self.node.observer.metrics_text()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def alerts(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ())
        return web.json_response(self.node.observer.alerts_json())


def add_observability_routes(app: web.Application, node: ConclaveNode) -> None:
    api = ObservabilityApi(node)
    app.router.add_route("GET", "/metrics", api.metrics)
    app.router.add_route("GET", "/v1/alerts", api.alerts)


__all__ = ["ObservabilityApi", "add_observability_routes"]
