"""A small HTTP/1.1 file server on 127.0.0.1 with byte ranges and injectable faults.

Faults (per file, keyed by the URL path without the leading slash):

* ``fail_first[path] = n``: the next ``n`` requests (HEAD or GET) answer ``503 Service
  Unavailable``;
* ``drop_once``: the next GET sends its headers and half of its body, then closes the connection;
* ``stall_once[path] = seconds``: the next GET sleeps that long before answering anything;
* ``truncate[path] = nbytes``: HEAD still declares the full size, but GET bodies stop at byte
  ``nbytes`` of the file (the body is consistent with its own Content-Length: no transport error,
  only fewer bytes than asked for) -- until the entry is removed.

Every request is counted in ``requests[path]`` (and GETs in ``gets[path]``). With
``auth=(user, password)`` every request without that HTTP Basic authorization gets ``401``.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import os
import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class FaultPlan:
    """What the server does wrong, and what it was asked (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fail_first: dict[str, int] = {}
        self.drop_once: set[str] = set()
        self.stall_once: dict[str, float] = {}
        self.truncate: dict[str, int] = {}
        self.requests: Counter[str] = Counter()
        self.gets: Counter[str] = Counter()
        self.events: list[tuple[str, str, str]] = []  # (fault, method, path)

    def take(self, method: str, path: str) -> tuple[str | None, float]:
        """The fault to apply to this request (consuming one-shot faults)."""
        with self.lock:
            self.requests[path] += 1
            if method == "GET":
                self.gets[path] += 1
            if self.fail_first.get(path, 0) > 0:
                self.fail_first[path] -= 1
                self.events.append(("503", method, path))
                return "503", 0.0
            if method == "GET" and path in self.stall_once:
                secs = self.stall_once.pop(path)
                self.events.append(("stall", method, path))
                return "stall", secs
            if method == "GET" and path in self.drop_once:
                self.drop_once.discard(path)
                self.events.append(("drop", method, path))
                return "drop", 0.0
            if method == "GET" and path in self.truncate:
                self.events.append(("truncate", method, path))
                return "truncate", float(self.truncate[path])
            return None, 0.0


def _handler(root: str, plan: FaultPlan, auth: tuple[str, str] | None = None):
    expected = None
    if auth is not None:
        expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _file(self) -> tuple[str, str | None]:
            rel = self.path.split("?", 1)[0].lstrip("/")
            full = os.path.realpath(os.path.join(root, rel))
            if not full.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(full):
                return rel, None
            return rel, full

        def _plain(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _headers(self, full: str, size: int) -> None:
            st = os.stat(full)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header(
                "ETag", '"' + hashlib.md5(f"{size}-{st.st_mtime_ns}".encode()).hexdigest() + '"'
            )
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            self.send_header("Content-Type", "application/octet-stream")

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(head=True)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(head=False)

        def _serve(self, head: bool) -> None:
            if expected is not None and self.headers.get("Authorization") != expected:
                self._plain(401, "unauthorized")
                return
            rel, full = self._file()
            fault, arg = plan.take(self.command, rel)
            if fault == "503":
                self._plain(503, "try again later")
                return
            if fault == "stall":
                time.sleep(arg)
                self.close_connection = True
                return
            if full is None:
                self._plain(404, "not found")
                return
            size = os.path.getsize(full)
            start, end = 0, size  # [start, end)
            rng = self.headers.get("Range")
            partial = False
            if rng and not head:
                m = _RANGE.match(rng.strip())
                if not m:
                    self._plain(416, "bad range")
                    return
                start = int(m.group(1))
                end = min(size, int(m.group(2)) + 1) if m.group(2) else size
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                partial = True
            if head:
                self.send_response(200)
                self._headers(full, size)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                return
            with open(full, "rb") as f:
                f.seek(start)
                body = f.read(end - start)
            if (
                fault == "truncate"
            ):  # the object is cut at byte `arg`: a short, self-consistent body
                body = body[: max(0, int(arg) - start)]
            self.send_response(206 if partial else 200)
            self._headers(full, size)
            if partial:
                self.send_header(
                    "Content-Range", f"bytes {start}-{start + max(len(body), 1) - 1}/{size}"
                )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if fault == "drop":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


class FaultServer:
    """``with FaultServer(root) as srv: srv.url + "/file"`` -- serves ``root`` on 127.0.0.1:<free
    port>."""

    def __init__(self, root: str, auth: tuple[str, str] | None = None) -> None:
        self.root = os.path.abspath(root)
        self.plan = FaultPlan()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.root, self.plan, auth))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
