"""An HTTP proxy that loses answers: each request with an `Idempotency-Key` it has not seen is
forwarded, applied upstream, and its answer thrown away (the connection is closed instead), as a
mobile link dropping the way back would. A client must retry it to learn what happened."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

UPSTREAM_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# Headers the proxy sets itself, or that describe one hop only.
HOP_HEADERS = frozenset({"host", "connection", "content-length", "transfer-encoding", "keep-alive"})


@dataclass
class Proxy:
    url: str
    keys_seen: set[str] = field(default_factory=set)
    lost: list[str] = field(default_factory=list)  # "<method> <path>" of each answer lost
    forwarded: list[str] = field(default_factory=list)


@contextmanager
def lossy_proxy(upstream: str) -> Iterator[Proxy]:
    """Serves the proxy in a thread until the block ends."""
    client = httpx.Client(base_url=upstream, timeout=UPSTREAM_TIMEOUT_S)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads `Proxy`
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            answer = client.request(self.command, self.path, content=body, headers=headers)
            what = f"{self.command} {self.path.split('?')[0]}"
            key = self.headers.get("idempotency-key")
            with lock:
                proxy.forwarded.append(what)
                first = key is not None and key not in proxy.keys_seen
                if key is not None:
                    proxy.keys_seen.add(key)
                if first:
                    proxy.lost.append(what)
            if first:
                self.close_connection = True  # applied upstream; the answer never comes back
                return
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in HOP_HEADERS and name.lower() != "content-encoding":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy = Proxy(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, name="lossy-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(STOP_TIMEOUT_S)
        client.close()
