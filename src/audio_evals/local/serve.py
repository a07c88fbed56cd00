"""Command line for the local OpenAI-compatible server: `audio-evals serve` / `python -m audio_evals.local.serve`."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from audio_evals.local.faults import FaultConfig

if TYPE_CHECKING:
    from audio_evals.local.app import ServerSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
API_KEY_ENV = "AUDIO_EVALS_LOCAL_API_KEY"


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, got {value}")
    return rate


def _non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return number


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the server's options (address, API key, fault injection) to a parser."""
    net = parser.add_argument_group("server")
    net.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)")
    net.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port to bind, 0 for any free port (default: %(default)s)",
    )
    net.add_argument(
        "--port-file",
        default=None,
        help="write the bound port to this file once listening (for --port 0)",
    )
    net.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}, else any key is accepted)",
    )
    net.add_argument(
        "--asr-workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="speech decoders per model (default: %(default)s)",
    )
    net.add_argument(
        "--no-preload", action="store_true", help="do not load the recogniser at startup"
    )
    net.add_argument(
        "--default-year",
        type=int,
        default=None,
        help="year for spoken dates without one (default: this year)",
    )
    net.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    faults = parser.add_argument_group("fault injection (rates are per POST /v1/* request)")
    faults.add_argument(
        "--seed", type=int, default=0, help="seed of the fault RNG (default: %(default)s)"
    )
    faults.add_argument(
        "--latency-ms", type=_non_negative, default=0.0, help="added latency per request"
    )
    faults.add_argument(
        "--latency-jitter-ms", type=_non_negative, default=0.0, help="uniform extra latency 0..J ms"
    )
    faults.add_argument(
        "--rate-429",
        type=_rate,
        default=0.0,
        help="rate of 429 rate-limit errors (with retry-after)",
    )
    faults.add_argument("--rate-500", type=_rate, default=0.0, help="rate of 500 errors")
    faults.add_argument("--rate-503", type=_rate, default=0.0, help="rate of 503 errors")
    faults.add_argument(
        "--rate-drop", type=_rate, default=0.0, help="rate of connections dropped mid-response"
    )
    faults.add_argument(
        "--rate-slow", type=_rate, default=0.0, help="rate of responses delayed by --slow-ms"
    )
    faults.add_argument(
        "--slow-ms",
        type=_non_negative,
        default=30_000.0,
        help="delay of a slow response (default: %(default)s)",
    )
    faults.add_argument(
        "--rate-bad-json",
        type=_rate,
        default=0.0,
        help="rate of structured answers that are not valid JSON",
    )
    faults.add_argument(
        "--rate-schema-mismatch",
        type=_rate,
        default=0.0,
        help="rate of structured answers that do not match the schema",
    )
    faults.add_argument(
        "--fail-first",
        type=int,
        default=0,
        help="answer the first N POST /v1/* requests with an error",
    )
    faults.add_argument(
        "--fail-first-status",
        type=int,
        default=429,
        choices=[429, 500, 503],
        help="status for --fail-first (default: 429)",
    )
    faults.add_argument(
        "--retry-after-ms",
        type=int,
        default=100,
        help="retry-after sent with injected 429s (default: %(default)s)",
    )


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """Build ServerSettings from parsed arguments."""
    from audio_evals.local.app import ServerSettings

    faults = FaultConfig(
        seed=args.seed,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        rate_429=args.rate_429,
        rate_500=args.rate_500,
        rate_503=args.rate_503,
        rate_drop=args.rate_drop,
        rate_slow=args.rate_slow,
        slow_ms=args.slow_ms,
        rate_bad_json=args.rate_bad_json,
        rate_schema_mismatch=args.rate_schema_mismatch,
        fail_first=args.fail_first,
        fail_first_status=args.fail_first_status,
        retry_after_ms=args.retry_after_ms,
    )
    return ServerSettings(
        faults=faults,
        api_key=args.api_key or None,
        asr_workers=max(1, args.asr_workers),
        preload=not args.no_preload,
        default_year=args.default_year,
    )


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted; return the process exit code."""
    import uvicorn

    from audio_evals.local.app import DropLogFilter, create_app

    settings = settings_from_args(args)
    app = create_app(settings)
    try:
        sock = socket.socket(
            socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(128)
    except OSError as exc:
        print(
            f"audio-evals serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 2
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=args.log_level in ("info", "debug"),
        timeout_graceful_shutdown=2,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    logging.getLogger("uvicorn.error").addFilter(DropLogFilter())
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"audio-evals local server on http://{host}:{port}/v1", flush=True)
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(port))
        tmp.replace(args.port_file)
    server.run(sockets=[sock])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the server."""
    parser = argparse.ArgumentParser(
        prog="python -m audio_evals.local.serve",
        description="Local OpenAI-compatible server with the local-baseline models and fault injection.",
    )
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
