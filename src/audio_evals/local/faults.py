"""Fault injection and request statistics for the local server."""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

FAULT_HEADER = "x-audio-evals-fault"
REQUEST_ID_HEADER = "x-audio-evals-request-id"
STATUS_FAULTS = {"429": 429, "500": 500, "503": 503}
FLAG_FAULTS = {"drop", "bad_json", "schema_mismatch"}
VALUE_FAULTS = {"latency", "slow"}
FAULT_NAMES = sorted(set(STATUS_FAULTS) | FLAG_FAULTS | VALUE_FAULTS)


class FaultHeaderError(ValueError):
    """Raised for an X-Audio-Evals-Fault header the server does not understand."""


@dataclass
class FaultConfig:
    """Server-wide fault settings (rates are probabilities per POST /v1/* request)."""

    seed: int = 0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_drop: float = 0.0
    rate_slow: float = 0.0
    slow_ms: float = 30_000.0
    rate_bad_json: float = 0.0
    rate_schema_mismatch: float = 0.0
    fail_first: int = 0
    fail_first_status: int = 429
    retry_after_ms: int = 100


@dataclass
class FaultPlan:
    """What to do to one request."""

    latency_ms: float = 0.0
    status: int | None = None
    retry_after_ms: int = 100
    drop: bool = False
    slow_ms: float = 0.0
    bad_json: bool = False
    schema_mismatch: bool = False
    names: list[str] = field(default_factory=list)


_TOKEN_RE = re.compile(r"^(?P<name>[a-z0-9_]+?)(?P<once>-once)?(?:=(?P<value>[0-9.]+))?$")


def parse_fault_header(value: str) -> list[tuple[str, bool, float | None]]:
    """Parse 'latency=250, 429-once, bad_json' into (name, once, value) triples."""
    out = []
    for raw in re.split(r"[,;\s]+", value.strip().lower()):
        if not raw:
            continue
        m = _TOKEN_RE.match(raw.replace("-", "_").replace("_once", "-once"))
        if not m:
            raise FaultHeaderError(f"cannot parse fault {raw!r}")
        name = m.group("name")
        if name not in FAULT_NAMES:
            raise FaultHeaderError(f"unknown fault {raw!r}; known faults: {', '.join(FAULT_NAMES)}")
        val = m.group("value")
        if name in VALUE_FAULTS and val is None:
            raise FaultHeaderError(f"fault {name!r} needs a value in milliseconds, e.g. {name}=250")
        out.append((name, bool(m.group("once")), float(val) if val is not None else None))
    return out


def case_key(method: str, path: str, header: str, body: bytes) -> str:
    """What identifies one case's request across retries: the SDK's (the same body) and
    instructor's validation retries (the same messages, then the assistant's answer and the
    error appended): for a chat completion, the model and the messages before the first
    assistant message; for anything else, the body."""
    material = body
    if path.endswith("/chat/completions"):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("messages"), list):
            first = []
            for message in data["messages"]:
                if isinstance(message, dict) and message.get("role") == "assistant":
                    break
                first.append(message)
            material = json.dumps(
                {"model": data.get("model"), "messages": first}, sort_keys=True
            ).encode()
    return hashlib.sha256(
        method.encode() + b" " + path.encode() + b"\n" + header.encode() + b"\n" + material
    ).hexdigest()


class FaultInjector:
    """Decides, per request, which faults to inject (server rates with a seeded RNG, or the header)."""

    def __init__(self, config: FaultConfig) -> None:
        """Start with a seeded RNG and no request seen."""
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._posts = 0

    def plan(self, method: str, path: str, headers: dict[str, str], body: bytes) -> FaultPlan:
        """Return the faults for one request to /v1/*."""
        cfg = self.config
        plan = FaultPlan(retry_after_ms=cfg.retry_after_ms)
        header = headers.get(FAULT_HEADER, "")
        faults = parse_fault_header(header) if header else []
        with self._lock:
            if method == "POST":
                self._posts += 1
                if self._posts <= cfg.fail_first:
                    plan.status = cfg.fail_first_status
                    plan.names.append(f"fail_first_{cfg.fail_first_status}")
                self._apply_rates(plan)
            key_base = headers.get(REQUEST_ID_HEADER) or case_key(method, path, header, body)
            for name, once, value in faults:
                if once:
                    key = f"{key_base}:{name}"
                    if key in self._seen:
                        continue
                    self._seen[key] = None
                    while len(self._seen) > 100_000:
                        self._seen.popitem(last=False)
                self._apply(plan, name, value)
        return plan

    def _apply_rates(self, plan: FaultPlan) -> None:
        cfg = self.config
        if cfg.latency_ms or cfg.latency_jitter_ms:
            plan.latency_ms += cfg.latency_ms + self._rng.uniform(0, cfg.latency_jitter_ms)
        draws = {
            "429": cfg.rate_429,
            "500": cfg.rate_500,
            "503": cfg.rate_503,
            "drop": cfg.rate_drop,
            "slow": cfg.rate_slow,
            "bad_json": cfg.rate_bad_json,
            "schema_mismatch": cfg.rate_schema_mismatch,
        }
        for name, rate in draws.items():
            if rate > 0 and self._rng.random() < rate:
                self._apply(plan, name, cfg.slow_ms if name == "slow" else None)

    def _apply(self, plan: FaultPlan, name: str, value: float | None) -> None:
        if name == "latency":
            plan.latency_ms += value or 0.0
            plan.names.append("latency")
            return
        if name in STATUS_FAULTS:
            if plan.status is None:
                plan.status = STATUS_FAULTS[name]
                if value is not None and name == "429":
                    plan.retry_after_ms = int(value)
                plan.names.append(name)
            return
        if name == "slow":
            plan.slow_ms = max(plan.slow_ms, value if value is not None else self.config.slow_ms)
        else:
            setattr(plan, name, True)
        plan.names.append(name)


class Stats:
    """Request counters: totals, in flight, by status, by path and injected faults."""

    def __init__(self) -> None:
        """Start at zero."""
        self._lock = threading.Lock()
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Zero the counters (requests still in flight stay counted as in flight)."""
        with self._lock:
            self.requests = 0
            self.max_in_flight = self.in_flight
            self.by_status: Counter[str] = Counter()
            self.by_path: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()

    def begin(self, path: str) -> None:
        """Count a request that starts."""
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.by_path[path] += 1

    def end(self, status: str) -> None:
        """Count a request that ends with a status (or 'dropped')."""
        with self._lock:
            self.in_flight -= 1
            self.by_status[status] += 1

    def fault(self, names: list[str]) -> None:
        """Count injected faults."""
        with self._lock:
            for n in names:
                self.faults[n] += 1

    def snapshot(self) -> dict[str, Any]:
        """Return the counters as JSON-ready data."""
        with self._lock:
            return {
                "requests": self.requests,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "by_status": dict(sorted(self.by_status.items())),
                "by_path": dict(sorted(self.by_path.items())),
                "faults": dict(sorted(self.faults.items())),
            }
