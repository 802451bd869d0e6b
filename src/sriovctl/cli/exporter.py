"""`sriovctl exporter`: the scrape (ops/metrics.py) served over HTTP for Prometheus, or written for
node_exporter's textfile collector. A thin front end: no metric is computed here."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

from sriovctl.cli.context import Ctx
from sriovctl.errors import UnavailableError, UsageError

if TYPE_CHECKING:
    from sriovctl.ops.metrics import Exporter, Scrape

DEFAULT_PORT = 9839  # the SR-IOV network metrics exporter's is 9808: both may run on one host
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"
INDEX = (b"<html><head><title>sriovctl exporter</title></head><body><h1>sriovctl exporter</h1>"
         b"<p><a href=\"/metrics\">Metrics</a></p></body></html>\n")


def cmd_exporter(ctx: Ctx) -> int:
    from sriovctl.ops.metrics import DOCTOR_CACHE, Exporter, textfile_dir

    a = ctx.args
    if a.once and a.textfile is None:
        raise UsageError("exporter --once: only with --textfile DIR", hint="the HTTP endpoint runs until stopped")
    if a.textfile is not None and a.listen is not None:
        raise UsageError("exporter: --listen and --textfile: choose one mode")
    if a.interval < 1:
        raise UsageError(f"exporter --interval {a.interval:g}: at least 1 second", hint="node_exporter reads the "
                                                                                     "file at its own pace")
    if ctx.json and not a.once:
        raise UsageError("exporter --json: only with --textfile DIR --once (one document per run)")
    directory = textfile_dir(a.textfile) if a.textfile is not None else None
    listen = split_listen(a.listen or DEFAULT_LISTEN) if directory is None else None
    exp = Exporter(ctx.open_host(), doctor_interval=a.doctor_interval,
                   doctor_cache=f"{directory}/{DOCTOR_CACHE}" if directory else None)
    if directory is not None:
        return _textfile(ctx, exp, directory)
    assert listen is not None
    return _serve(ctx, exp, *listen)


def _warn(ctx: Ctx, scrape: Scrape, seen: set[tuple[str, str]]) -> None:
    """Each failing part once while it keeps failing (a scrape every 15 s must not flood the journal)."""
    now = set(scrape.errors)
    for source, msg in sorted(now - seen):
        ctx.err.write(f"warning: scrape: {source}: {msg}\n")
    seen.clear()
    seen.update(now)


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _textfile(ctx: Ctx, exp: Exporter, directory: str) -> int:
    from sriovctl.ops.metrics import write_textfile

    stop = None if ctx.args.once else _stop_event()
    seen: set[tuple[str, str]] = set()
    while True:
        scrape = exp.scrape()
        path = write_textfile(directory, scrape.text())
        if stop is None:
            break
        _warn(ctx, scrape, seen)
        if stop.wait(ctx.args.interval):
            return 0
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, ExporterDocument, ScrapeErrorDoc

        ctx.emit_json(ExporterDocument(
            schema_version=SCHEMA_VERSION, output=path, series=len(scrape.samples), up=scrape.up,
            errors=[ScrapeErrorDoc(source=s, message=m) for s, m in scrape.errors],  # type: ignore[typeddict-item]
            duration_seconds=round(scrape.duration, 6)))
    else:
        _warn(ctx, scrape, set())
        ctx.out.write(f"wrote {path}: {len(scrape.samples)} series in {scrape.duration * 1000:.0f} ms\n")
    return 0


def _serve(ctx: Ctx, exp: Exporter, host: str, port: int) -> int:
    import socket
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from sriovctl.ops.metrics import CONTENT_TYPE

    lock = threading.Lock()  # one scrape at a time: the host object is not shared between threads
    seen: set[tuple[str, str]] = set()

    class Handler(BaseHTTPRequestHandler):
        server_version = "sriovctl-exporter"
        timeout = 60  # a client that connects and sends nothing does not keep its thread for ever

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                with lock:
                    scrape = exp.scrape()
                    _warn(ctx, scrape, seen)
                self._send(200, CONTENT_TYPE, scrape.text().encode("utf-8"))
            elif path == "/":
                self._send(200, "text/html; charset=utf-8", INDEX)
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics\n")

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape is noise in the journal; failures are reported by _warn

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        srv = Server((host, port), Handler)
    except OSError as e:
        raise UnavailableError(f"exporter --listen {host}:{port}: cannot listen: {e.strerror or e}",
                               hint="another exporter on that port? choose another with --listen ADDR:PORT") from None
    stop = _stop_event()
    def stopper() -> None:
        stop.wait()
        srv.shutdown()

    threading.Thread(target=stopper, daemon=True).start()
    shown_host = f"[{host}]" if ":" in host else host
    ctx.err.write(f"sriovctl exporter: serving http://{shown_host}:{srv.server_address[1]}/metrics\n")
    ctx.err.flush()
    try:
        srv.serve_forever(poll_interval=0.5)
    finally:
        srv.server_close()
    return 0


def split_listen(value: str) -> tuple[str, int]:
    """ADDR:PORT (``[v6]:PORT`` for IPv6): an IP literal — a name would listen wherever it resolves today."""
    import ipaddress

    from sriovctl.untrusted import shown

    addr, sep, port = value.rpartition(":")
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        ip = None
    if not sep or ip is None or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536 \
            or len(port) > 5 or (ip.version == 6 and not value.startswith("[")):
        raise UsageError(f"--listen {shown(value)}: not ADDR:PORT with an IP address and a port 1..65535",
                         hint=f"e.g. {DEFAULT_LISTEN}, 0.0.0.0:{DEFAULT_PORT} or [::1]:{DEFAULT_PORT}")
    return str(ip), int(port)
