"""moto's S3 server behind a shim that makes it behave like remote object storage, counts what
it serves, and injects faults.

    python -m benchmarks.s3shim [--latency 0.02] [--conn-mbps 100] [--link-mbps 400]

runs the server (printing ``PORT <n>`` once it listens); :class:`SlowS3` starts it in a child
process (so that serving does not compete with the client for its GIL) and talks to it.

**The model** (stated so that it can be argued with). Every request (HEAD, GET, PUT ...) waits
``latency`` seconds before its response (S3's time to first byte within a region is ~10-50 ms),
and a response of ``n`` body bytes then streams at ``conn_mbps`` MB/s per connection (one S3
connection sustains ~50-100 MB/s) while sharing a link of ``link_mbps`` MB/s with every other
response in flight (a worker node's network: 400 MB/s ~ 3.2 Gbit/s). A response finishes at
``max(start + latency + n / conn, link busy until + n / link)``, and the link is then busy until
that time; concurrent requests overlap their latencies but not their share of the link. The
body is sent whole at that time (the shim sleeps, then answers), so a client sees the latency
and bandwidth, not a trickle. Requests that the shim answers itself (``/__shim__/...``) are
neither delayed nor counted.

**Byte ranges.** moto answers a range request by reading the whole object first (here ~20 ms per
request on a 25 MB object, growing with the object); S3 does not. The shim therefore serves the
byte ranges of an object from its own copy (fetched from moto once, dropped when the key is
written or deleted), with the headers S3 sends (``206``, ``Content-Range``, ``ETag`` ...).

**Counting.** Every GET of an object (not a bucket listing) is counted per key: requests and body
bytes (``GET /__shim__/stats`` returns JSON, ``POST /__shim__/reset`` zeroes it).

**Faults** (``POST /__shim__/fault?kind=KIND&key=KEY&n=N``): the next ``N`` GETs of ``KEY`` (all
keys if empty) answer ``503 SlowDown`` (kind ``503``) or carry only the first half of their body
with a matching ``Content-Length`` (kind ``short``: a response shorter than the range asked for).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from urllib.parse import parse_qs


@dataclass(frozen=True)
class LinkModel:
    """Latency (s) per request and bandwidths (MB/s = 1e6 bytes/s) of the shim."""

    latency: float = 0.02
    conn_mbps: float = 100.0
    link_mbps: float = 400.0


class Shim:
    """WSGI middleware around moto's application: delay, count, fail (see the module docstring)."""

    def __init__(self, app, model: LinkModel):
        self.app, self.model = app, model
        self.lock = threading.Lock()
        self.link_free = 0.0
        self.stats: dict[str, list[int]] = {}  # key -> [GET requests, body bytes]
        self.faults: list[dict] = []
        self.objects: dict[str, tuple[bytes, list]] = {}  # key -> (body, headers of a whole GET)

    def _control(self, environ, start_response):
        path = environ["PATH_INFO"]
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        with self.lock:
            if path == "/__shim__/stats":
                body = json.dumps(
                    {
                        "keys": {
                            k: {"requests": r, "bytes": b} for k, (r, b) in self.stats.items()
                        },
                        "requests": sum(r for r, _ in self.stats.values()),
                        "bytes": sum(b for _, b in self.stats.values()),
                        "model": asdict(self.model),
                    }
                ).encode()
            elif path == "/__shim__/reset":
                self.stats.clear()
                self.faults.clear()
                body = b"{}"
            elif path == "/__shim__/fault":
                self.faults.append(
                    {"kind": query["kind"], "key": query.get("key", ""), "n": int(query["n"])}
                )
                body = b"{}"
            else:
                start_response("404 Not Found", [("Content-Length", "0")])
                return [b""]
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def _fault(self, key: str) -> str | None:
        for f in self.faults:
            if f["n"] > 0 and (not f["key"] or key.endswith(f["key"])):
                f["n"] -= 1
                return f["kind"]
        return None

    def _call_app(self, environ, capture) -> bytes:
        it = self.app(environ, capture)
        try:
            return b"".join(it)
        finally:
            if hasattr(it, "close"):
                it.close()

    def _range(self, environ, key: str):
        """``(status, headers, body)`` of a ``bytes=a-b`` GET from the shim's copy of the object;
        None (moto answers) for other range forms or an object that cannot be read whole."""
        import re

        m = re.fullmatch(r"bytes=(\d+)-(\d*)", environ["HTTP_RANGE"].strip())
        if m is None:
            return None
        with self.lock:
            hit = self.objects.get(key)
        if hit is None:
            whole = dict(environ)
            whole.pop("HTTP_RANGE")
            got: dict = {}

            def capture(status, headers, exc_info=None):
                got["status"], got["headers"] = status, list(headers)
                return lambda data: None

            body = self._call_app(whole, capture)
            if not got["status"].startswith("200"):
                return None
            hit = (body, got["headers"])
            with self.lock:
                self.objects[key] = hit
        body, head = hit
        a = int(m.group(1))
        b = min(len(body) - 1, int(m.group(2))) if m.group(2) else len(body) - 1
        if a >= len(body) or b < a:
            return None
        drop = ("content-length", "content-range")
        # S3 sends the object's checksum with whole-object GETs only
        headers = [
            (k, v)
            for k, v in head
            if k.lower() not in drop and not k.lower().startswith("x-amz-checksum")
        ]
        headers.append(("Content-Range", f"bytes {a}-{b}/{len(body)}"))
        return "206 Partial Content", headers, body[a : b + 1]

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"].startswith("/__shim__/"):
            return self._control(environ, start_response)
        t0 = time.monotonic()
        got: dict = {}

        def capture(status, headers, exc_info=None):
            got["status"], got["headers"] = status, list(headers)
            return lambda data: None

        key = environ["PATH_INFO"].lstrip("/")
        method = environ["REQUEST_METHOD"]
        served = None
        if method == "GET" and environ.get("HTTP_RANGE") and key.count("/") >= 1:
            served = self._range(environ, key)
        elif method not in ("GET", "HEAD"):
            with self.lock:
                self.objects.pop(key, None)
        if served is not None:
            status, headers, body = served
        else:
            body = self._call_app(environ, capture)
            status, headers = got["status"], got["headers"]
        is_object_get = (
            environ["REQUEST_METHOD"] == "GET"
            and key.count("/") >= 1
            and status[:3] in ("200", "206")
        )
        if is_object_get:
            with self.lock:
                fault = self._fault(key)
            if fault == "503":
                body = (
                    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                    b"<Message>Please reduce your request rate.</Message></Error>"
                )
                status = "503 Service Unavailable"
                headers = [(k, v) for k, v in headers if k.lower() not in ("content-range",)]
                headers = [h for h in headers if h[0].lower() != "content-type"]
                headers.append(("Content-Type", "application/xml"))
            elif fault == "short":
                body = body[: len(body) // 2]
            with self.lock:
                entry = self.stats.setdefault(key, [0, 0])
                entry[0] += 1
                entry[1] += len(body)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if method != "HEAD" or served is not None:
            headers.append(("Content-Length", str(len(body))))
        else:
            headers += [(k, v) for k, v in got["headers"] if k.lower() == "content-length"]
        m = self.model
        n = len(body) if environ["REQUEST_METHOD"] != "HEAD" else 0
        with self.lock:
            start = max(t0 + m.latency, self.link_free)
            self.link_free = start + n / (m.link_mbps * 1e6)
            done = max(t0 + m.latency + n / (m.conn_mbps * 1e6), self.link_free)
        time.sleep(max(0.0, done - time.monotonic()))
        start_response(status, headers)
        return [body]


def serve(host: str, port: int, model: LinkModel) -> None:
    """Run moto's S3 behind the shim until killed; print ``PORT <n>`` when listening."""
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = Shim(DomainDispatcherApplication(create_backend_app), model)
    server = make_server(host, port, app, threaded=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


class SlowS3:
    """The shimmed S3 server in a child process (a context manager).

    Attributes
    ----------
    endpoint : ``http://127.0.0.1:PORT``
    storage_options : fsspec/s3fs options for it (fake credentials)
    """

    KEY, SECRET = "AKIAGRIDFLUXBENCH", "bench-secret"

    def __init__(self, model: LinkModel | None = None):
        self.model = model or LinkModel()
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""

    def __enter__(self) -> SlowS3:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        m = self.model
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.s3shim", "--port", "0",
             "--latency", str(m.latency), "--conn-mbps", str(m.conn_mbps),
             "--link-mbps", str(m.link_mbps)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=root, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"the S3 shim did not start (said {line!r})")
        self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def storage_options(self) -> dict:
        return {
            "key": self.KEY,
            "secret": self.SECRET,
            "endpoint_url": self.endpoint,
            "client_kwargs": {"region_name": "us-east-1"},
        }

    def _call(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(
            self.endpoint + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stats(self) -> dict:
        """``{"requests", "bytes", "keys": {key: {"requests", "bytes"}}}`` of object GETs."""
        return self._call("/__shim__/stats")

    def reset(self) -> None:
        self._call("/__shim__/reset", "POST")

    def fault(self, kind: str, n: int, key: str = "") -> None:
        """The next ``n`` GETs of ``key`` (every key if empty) fail: ``503`` or ``short``."""
        from urllib.parse import urlencode

        self._call("/__shim__/fault?" + urlencode({"kind": kind, "n": n, "key": key}), "POST")

    def client(self):
        """A boto3 S3 client of the server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.KEY,
            aws_secret_access_key=self.SECRET,
            region_name="us-east-1",
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=LinkModel.latency)
    ap.add_argument("--conn-mbps", type=float, default=LinkModel.conn_mbps)
    ap.add_argument("--link-mbps", type=float, default=LinkModel.link_mbps)
    a = ap.parse_args(argv)
    serve(a.host, a.port, LinkModel(a.latency, a.conn_mbps, a.link_mbps))


if __name__ == "__main__":
    main()
