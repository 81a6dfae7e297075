"""Prometheus metrics, held in a registry per process (built by the entry point)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


@dataclass
class Metrics:
    """The bot's counters and histograms; ``render()`` is the /metrics body."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.commands = Counter(
            "automation_bot_commands_total",
            "Slash commands and modal submissions by verb",
            ["verb", "via"],
            registry=self.registry,
        )
        self.requests = Counter(
            "automation_bot_requests_total",
            "Requests that reached an outcome, by verb, kind and outcome",
            ["verb", "kind", "outcome"],
            registry=self.registry,
        )
        self.approvals = Counter(
            "automation_bot_approvals_total",
            "Approval votes and decisions",
            ["outcome"],
            registry=self.registry,
        )
        self.provider_calls = Counter(
            "automation_bot_provider_calls_total",
            "HTTP calls to providers by host and outcome",
            ["host", "outcome"],
            registry=self.registry,
        )
        self.provider_latency = Histogram(
            "automation_bot_provider_call_seconds",
            "Provider HTTP call latency",
            ["host"],
            registry=self.registry,
        )
        self.ack_latency = Histogram(
            "automation_bot_ack_seconds",
            "Time from receiving a Slack request to its HTTP response",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 3),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def on_provider_response(self, response: httpx.Response) -> None:
        """httpx response hook: count provider calls by status class and time them."""
        host = response.request.url.host
        status = response.status_code
        outcome = "ok" if status < 400 else ("throttled" if status == 429 else f"{status // 100}xx")
        self.provider_calls.labels(host=host, outcome=outcome).inc()
        started = response.request.extensions.get("automation_bot_started")
        if isinstance(started, float):
            self.provider_latency.labels(host=host).observe(time.perf_counter() - started)

    async def on_provider_request(self, request: httpx.Request) -> None:
        request.extensions["automation_bot_started"] = time.perf_counter()
