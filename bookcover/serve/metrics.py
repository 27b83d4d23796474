"""The service's Prometheus metrics, in a registry of its own (several apps can share a process)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """Requests by endpoint and status, latency, batch size, queue depth, covers predicted."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("bookcover_requests", "HTTP requests by endpoint and status code",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("bookcover_request_seconds", "Request latency, first byte in to response sent",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("bookcover_batch_size", "Covers per ONNX Runtime call",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("bookcover_queue_depth", "Requests admitted and waiting for the model",
                                 registry=self.registry)
        self.covers = Counter("bookcover_covers_predicted", "Covers predicted", registry=self.registry)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def endpoint_label(path: str) -> str:
    """A bounded label for a request path (never the raw path: model names are user input)."""
    if path.startswith("/v2/models/"):
        return "/v2/models/{model}/infer" if path.endswith("/infer") else "/v2/models/{model}"
    if path in KNOWN_PATHS:
        return path
    return "/static" if path.startswith("/static/") else "other"


KNOWN_PATHS = frozenset({"/", "/v2", "/v2/health/live", "/v2/health/ready", "/v1/info", "/v1/covers:predict",
                         "/v1/covers:explain", "/metrics"})
