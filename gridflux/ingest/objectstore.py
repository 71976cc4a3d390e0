"""obstore stores for fsspec-style S3 options, and the requests gridflux sends through them.

`obstore <https://developmentseed.org/obstore/>`_ (Rust ``object_store`` bindings) sends a ranged
GET for ~0.6-0.9 ms of client CPU where s3fs -> aiobotocore spends ~2.2 ms (user-agent building,
event hooks, signing, endpoint rulesets, XML parsing). :mod:`gridflux.ingest.remote` uses it for
the requests of ``s3://`` objects when :func:`s3_store` can map the user's s3fs storage options to
an obstore ``S3Store`` *faithfully*; for any option it would not honour it answers None and the
read goes through s3fs as before, so that behaviour is never silently different.

The mapping (a closed list, :data:`OPTION_KEYS` / :data:`CLIENT_KWARGS_KEYS` /
:data:`CONFIG_KWARGS_KEYS`):

==================================  ================================================
s3fs option                         obstore
==================================  ================================================
``key`` / ``secret`` / ``token``    ``access_key_id`` / ``secret_access_key`` / ``session_token``
``anon=True``                       ``skip_signature=True`` (unsigned requests)
``endpoint_url`` (top level or in   ``endpoint`` (``allow_http`` for ``http://``)
``client_kwargs``)
``client_kwargs.region_name``       ``region``
``config_kwargs.connect_timeout``   ``client_options.connect_timeout`` (s)
``config_kwargs.read_timeout``      ``client_options.timeout`` (s, with the connect timeout)
``config_kwargs.retries`` /         ignored: gridflux retries every request itself
``max_pool_connections``
==================================  ================================================

obstore is used only when the options name explicit credentials (``key`` and ``secret``) or
``anon=True``, and a region or an endpoint; also not when the environment holds settings that
obstore would read and s3fs would not (a session token beside explicit keys, an endpoint
variable without an endpoint option, SSE-C keys, S3 Express). obstore's own retries are off: the
caller (:func:`gridflux.ingest.remote.call_with_retries`) retries what :func:`is_transient` calls
transient, with the policy's backoff and limit.

Secrets stay in the store object (its ``repr`` shows only the bucket); the cache of stores is
keyed by a digest of the options, never by their text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

#: Top-level s3fs options that :func:`s3_store` maps (any other option: s3fs is used).
OPTION_KEYS = frozenset({"key", "secret", "token", "anon", "endpoint_url", "client_kwargs",
                         "config_kwargs"})  # fmt: skip
#: ``client_kwargs`` keys that :func:`s3_store` maps.
CLIENT_KWARGS_KEYS = frozenset({"region_name", "endpoint_url"})
#: ``config_kwargs`` keys that :func:`s3_store` maps: the timeouts, retries and pool size that
#: :func:`gridflux.ingest.remote.with_timeouts` sets for s3fs (the last two need no obstore
#: counterpart: gridflux retries each request itself, and obstore's connection pool grows as
#: needed).
CONFIG_KWARGS_KEYS = frozenset(
    {"connect_timeout", "read_timeout", "retries", "max_pool_connections"}
)
#: Environment variables that obstore reads and s3fs/botocore do not (or not the same way): when
#: one is set, s3fs is used. (Region, request-payer and signing come from the options.)
OBSTORE_ONLY_ENV = ("AWS_SSE_CUSTOMER_KEY_BASE64", "AWS_S3_EXPRESS", "AWS_SSE_KMS_KEY_ID")
#: Environment variables of a session token (s3fs ignores them beside explicit ``key``/``secret``,
#: obstore would add them to every request).
TOKEN_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
#: Environment variables of an endpoint (botocore and obstore do not read the same ones).
ENDPOINT_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT")

_STORES: dict[tuple, Any] = {}
_STORES_LOCK = threading.Lock()
#: whether this process made an obstore store (its tokio runtime may be running), and whether it
#: is a fork of a process that had: obstore is not fork-safe (a forked child inherits a runtime
#: without its threads, and its requests hang), so such a child keeps s3fs
_USED = False
_FORKED_AFTER_USE = False


def _after_fork_in_child() -> None:
    global _FORKED_AFTER_USE, _USED
    _FORKED_AFTER_USE = _FORKED_AFTER_USE or _USED
    _USED = False
    _STORES.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def available() -> bool:
    """Whether obstore can be imported (the ``s3`` extra installs it)."""
    try:
        import obstore  # noqa: F401
    except ImportError:
        return False
    return True


def s3_location(url: str) -> tuple[str, str] | None:
    """``(bucket, key)`` of an ``s3://`` or ``s3a://`` URL; None for other URLs and for forms
    that s3fs reads differently (a query such as ``?versionId=``, an empty key, user-info)."""
    m = re.fullmatch(r"(?i)s3a?://([^/?#@]+)/([^?#]+)", url)
    if m is None:
        return None
    return m.group(1), m.group(2)


def store_settings(
    options: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """The ``S3Store`` keyword arguments that do what the s3fs ``options`` do, or None when
    obstore would not do exactly that (see the module's table).

    Parameters
    ----------
    options : the flat s3fs options of one URL (:func:`gridflux.ingest.remote.options_for`)
    environ : the environment to check (default ``os.environ``)

    Returns
    -------
    dict or None
        ``config`` (S3 settings, secrets included: never print it) and ``client_options``
        (timeouts as ``timedelta`` where the options give them).
    """
    env = os.environ if environ is None else environ
    if set(options) - OPTION_KEYS:
        return None
    ck = options.get("client_kwargs") or {}
    cfg = options.get("config_kwargs") or {}
    if not isinstance(ck, Mapping) or not isinstance(cfg, Mapping):
        return None
    if set(ck) - CLIENT_KWARGS_KEYS or set(cfg) - CONFIG_KWARGS_KEYS:
        return None
    anon = options.get("anon", False)
    if not isinstance(anon, bool):
        return None
    key, secret, token = (options.get(k) for k in ("key", "secret", "token"))
    creds = isinstance(key, str) and isinstance(secret, str) and bool(key) and bool(secret)
    if anon == creds:  # neither (s3fs would look for credentials) or both (ambiguous)
        return None
    if token is not None and not (creds and isinstance(token, str)):
        return None
    endpoints = {e for e in (options.get("endpoint_url"), ck.get("endpoint_url")) if e}
    region = ck.get("region_name")
    if len(endpoints) > 1 or not (endpoints or region):
        return None
    if any(env.get(v) for v in OBSTORE_ONLY_ENV):
        return None
    if token is None and any(env.get(v) for v in TOKEN_ENV):
        return None
    if not endpoints and any(env.get(v) for v in ENDPOINT_ENV):
        return None
    config: dict[str, Any] = {
        "skip_signature": anon,
        "request_payer": False,
        # botocore signs for us-east-1 when neither the options nor AWS_DEFAULT_REGION name one
        "region": str(region or env.get("AWS_DEFAULT_REGION") or "us-east-1"),
    }
    if creds:
        config["access_key_id"] = key
        config["secret_access_key"] = secret
        if token:
            config["session_token"] = token
    client: dict[str, Any] = {}
    if endpoints:
        endpoint = str(endpoints.pop())
        if not re.match(r"(?i)https?://", endpoint):
            return None
        config["endpoint"] = endpoint
        config["aws_endpoint_url_s3"] = endpoint  # wins over AWS_ENDPOINT_URL_S3
        client["allow_http"] = endpoint.lower().startswith("http://")
    for name, value in (("connect_timeout", cfg.get("connect_timeout")),
                        ("read_timeout", cfg.get("read_timeout"))):  # fmt: skip
        if value is not None:
            if not isinstance(value, (int, float)) or value <= 0:
                return None
            client[name] = float(value)
    return {"config": config, "client_options": client}


def s3_store(url: str, options: Mapping[str, Any], *, connect_timeout: float, timeout: float):
    """The process's obstore ``S3Store`` for the bucket of ``url`` with these options, or None
    (use s3fs) when :func:`store_settings` cannot map them, the URL is not a plain
    ``s3://bucket/key``, or obstore is not installed.

    Parameters
    ----------
    url : an unchained URL
    options : the flat s3fs options of ``url``
    connect_timeout : s to establish a connection (``config_kwargs.connect_timeout`` wins)
    timeout : s a request may wait for its data (``config_kwargs.read_timeout`` wins); a request's
        whole time is bounded by ``connect_timeout + timeout``

    Stores are cached per process, bucket, options and timeouts (keyed by a digest). A process
    forked from one that used obstore gets None: obstore's runtime does not survive a fork
    (gridflux's own workers are spawned or forked from a fork server that never sent a request).
    """
    global _USED
    where = s3_location(url)
    if where is None or _FORKED_AFTER_USE:
        return None
    settings = store_settings(options)
    if settings is None or not available():
        return None
    client = settings["client_options"]
    connect = float(client.pop("connect_timeout", connect_timeout))
    read = float(client.pop("read_timeout", timeout))
    ident = json.dumps([settings, connect, read], sort_keys=True, default=str)
    digest = hashlib.sha256(ident.encode()).hexdigest()
    cache_key = (os.getpid(), where[0], digest)
    with _STORES_LOCK:
        store = _STORES.get(cache_key)
        if store is None:
            from obstore.store import S3Store

            store = S3Store(
                where[0],
                config=settings["config"],
                client_options={
                    **client,
                    "connect_timeout": timedelta(seconds=connect),
                    "timeout": timedelta(seconds=connect + read),
                },
                # gridflux retries (remote.call_with_retries); obstore's own retries are off
                retry_config={
                    "max_retries": 0,
                    "retry_timeout": timedelta(seconds=connect + read),
                },
            )
            _STORES[cache_key] = store
            _USED = True
    return store


def clear_stores() -> None:
    """Forget the cached stores of this process (tests; after credentials change)."""
    with _STORES_LOCK:
        _STORES.clear()


def get_range(store, key: str, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of object ``key`` in one ranged GET: possibly fewer, if the server
    sends fewer, and none if the object ends before ``start`` (HTTP 416: the object is shorter
    than the caller believes); the caller checks the length."""
    import obstore
    import obstore.exceptions as oe

    try:
        return bytes(obstore.get_range(store, key, start=start, end=end))
    except oe.GenericError as exc:
        m = _STATUS.search(str(exc))
        if m is not None and (m.group(1) or m.group(2)) == "416":
            return b""
        raise


def head(store, bucket: str, key: str) -> dict[str, Any]:
    """The object's metadata in the form of s3fs's ``info``: ``size``, ``ETag``, ``LastModified``,
    ``name``, ``type``, ``VersionId`` (the keys gridflux's fingerprints read, with the same
    values as s3fs gives). A missing object is a ``FileNotFoundError``."""
    import obstore

    meta = obstore.head(store, key)
    return {
        "ETag": meta["e_tag"],
        "LastModified": meta["last_modified"],
        "size": int(meta["size"]),
        "name": f"{bucket}/{key}",
        "type": "file",
        "VersionId": meta["version"],
    }


def get_whole(store, key: str) -> tuple[bytes, int]:
    """``(body, declared size)`` of object ``key`` in one GET (no HEAD first).

    The GET asks for the range ``bytes=0-``, so that the server declares the object's size in
    ``Content-Range`` apart from the body's ``Content-Length``: a body cut short then differs
    from the declared size (a plain GET declares only the body's own length). An empty object
    (S3 answers such a range with 416) is ``(b"", 0)``.
    """
    import obstore
    import obstore.exceptions as oe

    try:
        got = obstore.get(store, key, options={"range": {"offset": 0}})
        return bytes(got.bytes()), int(got.meta["size"])
    except oe.GenericError as exc:
        m = _STATUS.search(str(exc))
        if m is not None and (m.group(1) or m.group(2)) == "416":
            return b"", 0
        raise


def is_obstore_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of obstore's own exception types."""
    return type(exc).__module__.split(".", 1)[0] == "obstore"


_STATUS = re.compile(r"status code: (\d{3})|\bstatus: (\d{3})\b")
_S3_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")
_HTTP_KIND = re.compile(r"HttpError \{\s*kind: (\w+)")
#: object_store's ``HttpErrorKind`` values worth a retry (the connection, not the request, failed)
TRANSIENT_HTTP_KINDS = frozenset({"Connect", "Request", "Timeout", "Interrupted", "Decode"})


def is_transient(exc: BaseException, statuses: frozenset, codes: frozenset) -> bool:
    """Whether an obstore error is worth retrying: an HTTP status in ``statuses`` or an S3 error
    code in ``codes`` (e.g. 503 ``SlowDown``), a failed connection, a timeout or a body cut
    mid-stream. Permission, authentication, not-found and configuration errors are not."""
    import obstore.exceptions as oe

    if isinstance(
        exc,
        (oe.PermissionDeniedError, oe.UnauthenticatedError, oe.InvalidPathError,
         oe.NotSupportedError, oe.UnknownConfigurationKeyError, oe.PreconditionError),
    ):  # fmt: skip
        return False
    text = str(exc)
    m = _STATUS.search(text)
    if m is not None:
        code = _S3_CODE.search(text)
        return int(m.group(1) or m.group(2)) in statuses or (
            code is not None and code.group(1) in codes
        )
    kind = _HTTP_KIND.search(text)
    if kind is not None:
        return kind.group(1) in TRANSIENT_HTTP_KINDS
    return "timed out" in text.lower() or "error decoding response body" in text.lower()


def describe(exc: BaseException) -> str:
    """The first line of an obstore error (its ``Debug source`` dump left out)."""
    text = str(exc).split("\n\nDebug source:", 1)[0].strip()
    return text.splitlines()[0] if text else repr(exc)
