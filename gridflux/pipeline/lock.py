"""The store's lock: exactly one process holds it, on a local file system and on S3.

The lock is one small JSON object, ``.gridflux.lock``, holding a random ``token``, the holder's
host and pid, and a ``heartbeat`` (seconds since the epoch) that the holder refreshes every
``store.lock-heartbeat`` seconds while it runs.

Every change of the lock is a compare-and-swap, never a check followed by a write:

* **create** is exclusive: locally the content is written to a temp file that is then hard-linked
  to the lock's name (``link`` fails if the name exists, and a reader never sees a half-written
  lock); on S3 a ``PUT`` with ``If-None-Match: *`` (S3 conditional writes, 2024; moto supports it).
* **take over** a stale lock (its holder's pid is dead on this host, or its heartbeat is older
  than ``store.lock-timeout``): on S3 a ``PUT`` with ``If-Match: <ETag of the stale lock>``, so of
  many contenders that judged the same lock stale exactly one replaces it. Locally a claim file
  ``.gridflux.lock.takeover-<tag of the stale lock>`` is created exclusively; its creator checks
  that the lock still is the stale one and replaces it (``os.replace``). A claim whose creator
  died is passed over with a numbered claim (``...-<tag>.2``), so a crash mid-takeover cannot wedge
  the store.
* **heartbeat** and **release** change or delete the lock only while it still is this holder's
  (``If-Match`` on S3; the token locally, where a live holder is never taken over).

Other object stores (gs://, az://, http) have no conditional write in fsspec: their lock is
check-then-put, and a warning says so.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from gridflux.errors import StoreError

log = logging.getLogger(__name__)

CLAIM = ".takeover-"  # local takeover claims: <lock>.takeover-<tag>[.<n>]
MAX_CLAIMS = 16


class LockLost(Exception):
    """A conditional write found the lock changed (someone else holds it)."""


class StoreLock:
    """The lock of one store, acquired by :meth:`acquire` and given back by :meth:`release`.

    Parameters
    ----------
    fs : fsspec file system of the store
    path : the lock's path in ``fs``
    url : the store's URL (for messages)
    is_local : the store is on a local (POSIX) file system
    heartbeat : seconds between heartbeats (default ``store.lock-heartbeat``)
    timeout : seconds after which a lock whose heartbeat stopped is stale (``store.lock-timeout``)
    """

    def __init__(
        self,
        fs: Any,
        path: str,
        url: str,
        *,
        is_local: bool,
        heartbeat: float | None = None,
        timeout: float | None = None,
    ):
        from gridflux import config

        self.fs, self.path, self.url, self.is_local = fs, path, url, is_local
        self.heartbeat = float(config.get("store.lock-heartbeat", override=heartbeat))
        self.timeout = float(config.get("store.lock-timeout", override=timeout))
        self.token = uuid.uuid4().hex
        self.etag: str | None = None  # S3: the ETag of our lock object
        self.held = False
        self.lost = False  # set when a heartbeat finds the lock taken over by another run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self.is_s3 = any(p in ("s3", "s3a") for p in protocols)
        if not (is_local or self.is_s3):
            log.warning(
                "the lock of %s is check-then-put (%s has no conditional write in fsspec): two "
                "runs started at the same moment may both hold it",
                url,
                protocols[0],
            )

    # -- content ---------------------------------------------------------------------------
    def _content(self) -> bytes:
        info = {
            "token": self.token,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": getattr(self, "_since", None) or _now(),
            "heartbeat": time.time(),
        }
        self._since = info["since"]
        return json.dumps(info).encode()

    # -- public ----------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the lock, or raise :class:`StoreError` naming its live holder."""
        for _ in range(8):
            if self._create():
                break
            current = self._read()
            if current is None:  # released between our create and our read: try again
                continue
            raw, tag = current
            info = _parse(raw)
            if not self._is_stale(info):
                raise StoreError(self._message(info))
            if self._take_over(raw, tag):
                log.warning(
                    "took over the stale lock of %s (host %s, pid %s, heartbeat %s)",
                    self.url,
                    info.get("host", "?"),
                    info.get("pid", "?"),
                    _age(info),
                )
                break
        else:
            current = self._read()
            raise StoreError(self._message(_parse(current[0]) if current else {}))
        self.held = True
        self._thread = threading.Thread(target=self._beat, name="gridflux-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Give the lock back (only if it still is ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if not self.held:
            return
        self.held = False
        try:
            if self.is_s3:
                bucket, key = self._bucket_key()
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=self.etag)
            else:
                current = self._read()
                if current is not None and _parse(current[0]).get("token") == self.token:
                    self.fs.rm(self.path)
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001 - a lost lock is reported, not raised at exit
            if _is_precondition_failed(exc):
                log.error("the lock of %s was taken over by another run before release", self.url)
            else:
                raise

    # -- primitives ------------------------------------------------------------------------
    def _bucket_key(self) -> tuple[str, str]:
        bucket, key, _ = self.fs.split_path(self.path)
        return bucket, key

    def _create(self) -> bool:
        """Create the lock with our content if no lock exists; False if one exists."""
        data = self._content()
        if self.is_local:
            return _link_exclusive(self.path, data)
        if self.is_s3:
            bucket, key = self._bucket_key()
            try:
                out = self.fs.call_s3(
                    "put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*"
                )
            except Exception as exc:
                if _is_precondition_failed(exc):
                    return False
                raise
            self.etag = out.get("ETag")
            self.fs.invalidate_cache(self.path)
            return True
        if self.fs.exists(self.path):  # no conditional write: best effort
            return False
        self.fs.pipe(self.path, data)
        return True

    def _read(self) -> tuple[bytes, str] | None:
        """The lock's bytes and a tag identifying this version of it (ETag on S3, else a hash
        of the bytes); None if there is no lock."""
        if self.is_local:
            try:
                with open(self.path, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                return None
            return raw, version_tag(raw)
        if self.is_s3:
            from fsspec.asyn import sync

            bucket, key = self._bucket_key()

            async def get():
                resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
                body = resp["Body"]
                try:
                    raw = await body.read()
                finally:
                    body.close()
                return raw, resp["ETag"]

            try:
                return sync(self.fs.loop, get)
            except FileNotFoundError:
                return None
        try:
            raw = self.fs.cat(self.path)
        except FileNotFoundError:
            return None
        return raw, version_tag(raw)

    def _is_stale(self, info: dict) -> bool:
        """A lock whose holder is dead on this host, or whose heartbeat stopped ``timeout`` ago.
        An unreadable lock is stale only once its heartbeat-less age passes the timeout."""
        if info.get("host") == socket.gethostname() and "pid" in info:
            try:
                os.kill(int(info["pid"]), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, ValueError, OverflowError):
                return False  # alive (owned by another user) or not a pid
            return False  # its process is alive on this host
        beat = info.get("heartbeat")
        try:
            return beat is not None and time.time() - float(beat) > self.timeout
        except (TypeError, ValueError):
            return False

    def _take_over(self, raw: bytes, tag: str) -> bool:
        """Replace the stale lock version ``tag`` by ours; True for exactly one contender."""
        data = self._content()
        if self.is_s3:
            bucket, key = self._bucket_key()
            try:
                out = self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfMatch=tag)
            except Exception as exc:
                if _is_precondition_failed(exc) or isinstance(exc, FileNotFoundError):
                    return False
                raise
            self.etag = out.get("ETag")
            self.fs.invalidate_cache(self.path)
            return True
        if not self.is_local:
            self.fs.pipe(self.path, data)
            return True
        claim = self._claim(tag)
        if claim is None:
            return False
        try:
            current = self._read()
            if current is None or current[1] != tag:
                return False  # already taken over (or released): not ours to replace
            tmp = f"{self.path}.tmp-{self.token}"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)
            return True
        finally:
            # safe to drop: a late claimant of this tag finds the lock changed and backs off
            for n in range(1, claim + 1):
                _unlink(self._claim_path(tag, n))

    def _claim_path(self, tag: str, n: int) -> str:
        return f"{self.path}{CLAIM}{tag}" + (f".{n}" if n > 1 else "")

    def _claim(self, tag: str) -> int | None:
        """Create the claim to take over lock version ``tag`` (local); its number, or None when
        a live process claimed it first."""
        me = json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()
        for n in range(1, MAX_CLAIMS + 1):
            path = self._claim_path(tag, n)
            if _link_exclusive(path, me):
                return n
            try:
                with open(path, "rb") as f:
                    other = _parse(f.read())
            except FileNotFoundError:
                return None  # the claimant finished: the lock is no longer the stale one
            if other.get("host") != socket.gethostname():
                return None
            try:
                os.kill(int(other.get("pid", -1)), 0)
            except ProcessLookupError:
                continue  # that claimant died mid-takeover: claim the next number
            except (PermissionError, ValueError, OverflowError):
                return None
            return None
        return None

    def _beat(self) -> None:
        """Refresh the heartbeat while the lock is held (a compare-and-swap each time)."""
        while not self._stop.wait(self.heartbeat):
            try:
                data = self._content()
                if self.is_s3:
                    bucket, key = self._bucket_key()
                    out = self.fs.call_s3(
                        "put_object", Bucket=bucket, Key=key, Body=data, IfMatch=self.etag
                    )
                    self.etag = out.get("ETag")
                elif self.is_local:
                    current = self._read()
                    if current is None or _parse(current[0]).get("token") != self.token:
                        raise LockLost()
                    tmp = f"{self.path}.tmp-{self.token}"
                    with open(tmp, "wb") as f:
                        f.write(data)
                    os.replace(tmp, self.path)
                else:
                    self.fs.pipe(self.path, data)
            except Exception as exc:  # noqa: BLE001 - reported; the run goes on
                if isinstance(exc, LockLost) or _is_precondition_failed(exc):
                    self.lost = True
                    log.error("the lock of %s was taken over by another run", self.url)
                    return
                log.warning("could not refresh the lock of %s: %s", self.url, exc)

    def _message(self, info: dict) -> str:
        return (
            f"store {self.url} is in use by another gridflux run (host {info.get('host', '?')}, "
            f"pid {info.get('pid', '?')}, since {info.get('since', '?')}, heartbeat "
            f"{_age(info)}). Wait for it to finish; a lock whose process died on this host, or "
            f"whose heartbeat is older than {self.timeout:g} s (store.lock-timeout), is taken "
            f"over by the next run; to free it by hand, delete {self.path}."
        )


# -- helpers -----------------------------------------------------------------------------------
def _link_exclusive(path: str, data: bytes) -> bool:
    """Create ``path`` holding ``data`` atomically and exclusively; False if it exists."""
    tmp = f"{path}.new-{uuid.uuid4().hex}"
    with open(tmp, "wb") as f:
        f.write(data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        _unlink(tmp)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _parse(raw: bytes) -> dict:
    try:
        info = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def version_tag(raw: bytes) -> str:
    """A tag of one version of a local lock (a hash of its bytes)."""
    return hashlib.sha256(raw).hexdigest()[:24]


def _age(info: dict) -> str:
    try:
        return f"{time.time() - float(info['heartbeat']):.0f} s ago"
    except (KeyError, TypeError, ValueError):
        return "none"


def _is_precondition_failed(exc: BaseException) -> bool:
    """S3 refused a conditional write: 412 Precondition Failed, or 409 for concurrent ones."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = f"{type(exc).__name__} {exc}"
        if any(
            s in text
            for s in ("PreconditionFailed", "Precondition Failed", "412", "ConditionalRequest")
        ):
            return True
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (
                409,
                412,
            ):
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
