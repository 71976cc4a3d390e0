"""Dask clusters for ``gridflux run``: local, SLURM, PBS, Kubernetes, dask-gateway or an address.

One entry point, :func:`make_cluster`, returns a :class:`ClusterHandle` (a context manager holding
the ``distributed.Client``). Every kind reads a *profile* from the packaged defaults
(``gridflux/gridflux.yaml``, key ``gridflux.cluster.<kind>``) through ``dask.config``, so a user's
own dask config (``~/.config/dask/gridflux.yaml``) or ``DASK_GRIDFLUX__CLUSTER__<KIND>__<KEY>``
environment variables override them, and keyword arguments (CLI options) override both::

    with make_cluster("slurm", queue="debug", account="proj42") as handle:
        gridflux.run(..., client=handle.client)

Rules every kind follows
------------------------
* Worker **processes with one thread each**: libhdf5 (netCDF4, h5py) is not thread-safe, so threads
  gain nothing on netCDF reads and risk crashes (docs/deploy.md).
* The nanny's ``MALLOC_TRIM_THRESHOLD_`` is left unset (``gridflux.cluster.malloc-trim-threshold:
  null``): dask's default of 65536 disables glibc's dynamic mmap threshold and slows block
  streaming (figures: docs/benchmarks.md, "Figures the code relies on"). Local nannies get it
  through ``dask.config``; remote workers through
  :func:`worker_env`, which jobqueue job scripts, Kubernetes pods and gateway servers export.
* ``dask_jobqueue``, ``dask_kubernetes`` and ``dask_gateway`` are imported lazily, and their
  import-time copy of a default YAML into ``~/.config/dask`` is suppressed: nothing is written into
  the user's home directory.
* Problems are :class:`gridflux.errors.ClusterError` naming the missing setting and where to put it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import dask.config

from gridflux import config as _config
from gridflux.errors import ClusterError

logger = logging.getLogger(__name__)

#: cluster kinds with a profile under ``gridflux.cluster.<kind>``
KINDS = ("local", "slurm", "pbs", "kubernetes", "gateway")

#: address schemes accepted as ``kind`` (connect to a running scheduler)
ADDRESS_SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "ucx://", "inproc://")
SCHEDULER_FILE_PREFIX = "scheduler-file:"

_NANNY_ENV_KEY = "distributed.nanny.pre-spawn-environ"
_TRIM_VAR = "MALLOC_TRIM_THRESHOLD_"

# profile keys that gridflux consumes itself (not passed to the cluster class)
_SCALING_KEYS = {"n-workers", "minimum", "maximum", "minimum-jobs", "maximum-jobs"}
# JobQueueCluster keywords that belong to the cluster (scheduler), not to the job script
_JOBQUEUE_CLUSTER_ONLY = {
    "scheduler_options",
    "dashboard_address",
    "host",
    "security",
    "shared_temp_directory",
    "silence_logs",
    "scheduler_cls",
}
_SUBMIT_COMMAND = {"slurm": "sbatch", "pbs": "qsub"}

#: where servers listen unless told otherwise: this machine only
LOCALHOST = "127.0.0.1"
#: ``dask worker`` options that choose where a worker (and its nanny) listens
_WORKER_BIND_ARGS = ("--host", "--interface", "--listen-address")
_CONFIG_HINT = (
    "set it in your dask config (~/.config/dask/gridflux.yaml: gridflux: cluster: {kind}: {key}: "
    "...), "
    "as DASK_GRIDFLUX__CLUSTER__{KIND}__{KEY}=..., or pass it as an option ({option})"
)


def _where(kind: str, key: str) -> str:
    return _CONFIG_HINT.format(
        kind=kind,
        key=key,
        KIND=kind.upper(),
        KEY=key.upper().replace("-", "_"),
        option="--" + key if kind != "gateway" else f"--gateway-{key}",
    )


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


def profile(kind: str, **overrides: Any) -> dict[str, Any]:
    """Return the merged profile of ``kind``: packaged defaults < user dask config < ``overrides``.

    Parameters
    ----------
    kind
        One of :data:`KINDS`.
    **overrides
        Profile settings; underscores and hyphens are equivalent (``minimum_jobs`` =
        ``minimum-jobs``). ``None`` means "not given" and keeps the configured value.

    Returns
    -------
    dict
        Hyphenated keys, e.g. ``{"queue": "debug", "cores": 1, "memory": "4GB", ...}``.
    """
    if kind not in KINDS:
        raise ClusterError(_unknown_kind_message(kind))
    base = _config.get(f"cluster.{kind}", default=None)
    # hyphenated keys: a DASK_GRIDFLUX__CLUSTER__SLURM__N_WORKERS variable arrives as n_workers
    merged: dict[str, Any] = {str(k).replace("_", "-"): v for k, v in (base or {}).items()}
    for key, value in overrides.items():
        if value is not None:
            merged[key.replace("_", "-")] = value
    return merged


def _unknown_kind_message(kind: Any) -> str:
    return (
        f"unknown cluster kind {kind!r}: expected one of {', '.join(KINDS)}, an address "
        f"tcp://HOST:PORT, or {SCHEDULER_FILE_PREFIX}PATH (set gridflux.cluster.kind in your dask "
        "config or pass --cluster)"
    )


def _trim_threshold() -> int | None:
    value = _config.get("cluster.malloc-trim-threshold", default=None)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ClusterError(
            f"gridflux.cluster.malloc-trim-threshold must be null or an integer number of bytes, "
            f"got {value!r}; {_where('cluster', 'malloc-trim-threshold')}"
        ) from None


def configure_nanny_environment() -> None:
    """Set ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_`` for nannies of this
    process.

    Called by :func:`make_cluster` before any nanny starts, and left in place afterwards because
    adaptive clusters start nannies later. With the value ``None`` (the gridflux default) the nanny
    neither sets the variable for its worker nor copies it into this process's ``os.environ``.
    """
    threshold = _trim_threshold()
    dask.config.set({f"{_NANNY_ENV_KEY}.{_TRIM_VAR}": threshold})
    if threshold is None and _TRIM_VAR in os.environ:
        logger.warning(
            "%s=%s is set in this process's environment and will be inherited by local workers; "
            "unset it for full streaming speed (docs/deploy.md)",
            _TRIM_VAR,
            os.environ[_TRIM_VAR],
        )


def distributed_settings() -> dict[str, Any]:
    """``gridflux.cluster.distributed`` as flat ``distributed.*`` dask config keys (leaves only)."""

    def leaves(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(value, Mapping):
            for k, v in value.items():
                yield from leaves(f"{prefix}.{k}", v)
        else:
            yield prefix, value

    return dict(leaves("distributed", _config.get("cluster.distributed", default=None) or {}))


def configure_distributed() -> None:
    """Apply :func:`distributed_settings` to this process's dask config (left in place, like the
    nanny environment: the scheduler, nannies and local workers started later read them)."""
    dask.config.set(distributed_settings())


def worker_env() -> dict[str, str]:
    """Environment variables that remote workers (jobqueue jobs, pods, gateway) must export.

    ``DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON`` carries the nanny setting of
    ``gridflux.cluster.malloc-trim-threshold`` as a Python literal dict: dask parses
    ``DASK_*`` values with ``ast.literal_eval`` and lower-cases variable *names*, so the upper-case
    key must travel inside the value. dask merges it into its defaults, keeping the other
    pre-spawn variables (``OMP_NUM_THREADS=1``...). The settings of ``gridflux.cluster.distributed``
    travel as ``DASK_DISTRIBUTED__...`` variables (dask reads ``500ms`` as a string and ``False`` as
    a literal).
    """
    threshold = _trim_threshold()
    env = {
        "DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
        for key, value in distributed_settings().items()
    }
    env["DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"] = f'{{"{_TRIM_VAR}": {threshold!r}}}'
    return env


@contextlib.contextmanager
def _no_home_config_files() -> Iterator[None]:
    """Suppress ``dask.config.ensure_file`` (dask-jobqueue/-kubernetes/-gateway call it at import
    to copy their YAML into ``~/.config/dask``); their defaults still load via
    ``update_defaults``."""
    original = dask.config.ensure_file
    dask.config.ensure_file = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        dask.config.ensure_file = original  # type: ignore[assignment]


def _import_optional(module: str, extra: str, kind: str) -> Any:
    try:
        with _no_home_config_files():
            return importlib.import_module(module)
    except ImportError as exc:
        raise ClusterError(
            f"cluster kind {kind!r} needs the package that provides {module!r} ({exc}); "
            f'install it with: pip install "gridflux[{extra}]"'
        ) from exc


# --------------------------------------------------------------------------------------------
# the handle
# --------------------------------------------------------------------------------------------


class ClusterHandle:
    """A client connected to a cluster, closed together.

    Attributes
    ----------
    client : distributed.Client
    cluster : distributed.deploy.Cluster or None
        ``None`` when connected to an existing scheduler by address or scheduler file.
    kind : str
        ``local``, ``slurm``, ``pbs``, ``kubernetes``, ``gateway`` or ``address``.
    """

    def __init__(
        self, client: Any, cluster: Any | None, kind: str, *, _closers: tuple = ()
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.kind = kind
        self._closers = _closers
        self._closed = False

    @property
    def dashboard_link(self) -> str | None:
        """URL of the dask dashboard, or None when the scheduler runs without one."""
        try:
            return self.client.dashboard_link
        except Exception:  # no dashboard (bokeh missing or disabled)
            return None

    def wait_for_workers(self, n_workers: int, timeout: float | None = None) -> None:
        """Block until ``n_workers`` workers are connected (raises ``TimeoutError`` after
        ``timeout`` s)."""
        self.client.wait_for_workers(n_workers, timeout=timeout)

    def close(self) -> None:
        """Close the client, then the cluster (cancels jobs, deletes pods, shuts the gateway
        cluster)."""
        if self._closed:
            return
        self._closed = True
        errors = []
        for closer in (self.client.close, *self._closers):
            try:
                closer()
            except Exception as exc:  # keep closing the rest, report afterwards
                errors.append(exc)
        if errors:
            raise ClusterError(
                f"closing the {self.kind} cluster failed: {errors[0]!r}"
            ) from errors[0]

    def __enter__(self) -> ClusterHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ClusterHandle(kind={self.kind!r}, dashboard={self.dashboard_link!r})"


# --------------------------------------------------------------------------------------------
# factory
# --------------------------------------------------------------------------------------------


def make_cluster(
    kind: str | None = None, *, n_workers: int | None = None, **overrides: Any
) -> ClusterHandle:
    """Start (or connect to) a dask cluster and return a :class:`ClusterHandle`.

    Parameters
    ----------
    kind
        ``local`` | ``slurm`` | ``pbs`` | ``kubernetes`` | ``gateway``, an address such as
        ``tcp://HOST:8786``, or ``scheduler-file:PATH``. ``None`` reads ``gridflux.cluster.kind``.
    n_workers
        Fixed number of workers (worker processes, one thread each). ``None`` uses the profile:
        ``n-workers`` for local and kubernetes, adaptive ``minimum``/``maximum`` (``minimum-jobs``/
        ``maximum-jobs`` for slurm and pbs) otherwise. For slurm/pbs a job holds ``processes``
        workers.
    **overrides
        Profile settings (see :func:`profile`); keys that are not gridflux profile keys are passed
        to the cluster class (``LocalCluster``, ``SLURMCluster``, ``PBSCluster``, ``KubeCluster``,
        ``Gateway``), e.g. ``scheduler_options={"host": "127.0.0.1"}``.

    Raises
    ------
    ClusterError
        Unknown kind, a missing optional package, a missing setting (gateway address, Kubernetes
        image), a missing submit command (``sbatch``/``qsub``), or a cluster that fails to start.
    """
    if kind is None:
        kind = _config.get("cluster.kind", default="local")
    if not isinstance(kind, str) or not kind:
        raise ClusterError(_unknown_kind_message(kind))
    if kind.startswith(ADDRESS_SCHEMES) or kind.startswith(SCHEDULER_FILE_PREFIX):
        if overrides:
            raise ClusterError(
                f"options {sorted(overrides)} do not apply when connecting to a running scheduler "
                f"({kind}); configure that scheduler's workers where they are started"
            )
        return _connect(kind)
    if kind not in KINDS:
        raise ClusterError(_unknown_kind_message(kind))
    configure_nanny_environment()
    configure_distributed()
    prof = profile(kind, **overrides)
    if n_workers is not None and int(n_workers) < 0:
        raise ClusterError(f"n_workers must be >= 0, got {n_workers}")
    return _STARTERS[kind](prof, n_workers)


def _connect(address: str) -> ClusterHandle:
    from distributed import Client

    try:
        if address.startswith(SCHEDULER_FILE_PREFIX):
            path = address[len(SCHEDULER_FILE_PREFIX) :]
            if not os.path.exists(path):
                raise ClusterError(
                    f"scheduler file {path!r} does not exist: start the scheduler with "
                    f"'dask scheduler --scheduler-file {path}' first"
                )
            client = Client(scheduler_file=path)
        else:
            client = Client(address)  # timeout: distributed.comm.timeouts.connect
    except ClusterError:
        raise
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot connect to the dask scheduler at {address}: {exc}") from exc
    return ClusterHandle(client, None, "address")


def _split(prof: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a profile into gridflux scaling keys and keyword arguments (underscored)."""
    scaling = {k: v for k, v in prof.items() if k in _SCALING_KEYS}
    kwargs = {k.replace("-", "_"): v for k, v in prof.items() if k not in _SCALING_KEYS}
    return scaling, kwargs


def _adaptive_bounds(
    kind: str, scaling: Mapping[str, Any], *, jobs: bool
) -> tuple[int, int] | None:
    """``(minimum, maximum)`` of adaptive scaling, ``None`` when not configured; checked before
    starting."""
    lo_key, hi_key = ("minimum-jobs", "maximum-jobs") if jobs else ("minimum", "maximum")
    lo, hi = scaling.get(lo_key), scaling.get(hi_key)
    if lo is None and hi is None:
        return None
    if lo is None or hi is None or int(lo) < 0 or int(lo) > int(hi):
        raise ClusterError(
            f"adaptive {kind} scaling needs 0 <= {lo_key} <= {hi_key}, got {lo_key}={lo}, "
            f"{hi_key}={hi}; {_where(kind, hi_key)}"
        )
    return int(lo), int(hi)


def _scale(
    cluster: Any, n_workers: int | None, bounds: tuple[int, int] | None, *, jobs: bool
) -> None:
    """Fixed size when ``n_workers`` is given (workers, not jobs), else adaptive within
    ``bounds``."""
    if n_workers is not None:
        cluster.scale(int(n_workers))
    elif bounds is not None and jobs:
        cluster.adapt(minimum_jobs=bounds[0], maximum_jobs=bounds[1])
    elif bounds is not None:
        cluster.adapt(minimum=bounds[0], maximum=bounds[1])


def _start_local(prof: dict[str, Any], n_workers: int | None) -> ClusterHandle:
    from distributed import LocalCluster

    prof = dict(prof)
    use_start_method(prof.pop("start-method", None) or "spawn")
    scaling, kwargs = _split(prof)
    kwargs.setdefault("processes", True)
    bounds = _adaptive_bounds("local", scaling, jobs=False)
    adaptive = n_workers is None and bounds is not None
    if n_workers is not None:
        start_workers = int(n_workers)
    elif adaptive:
        start_workers = 0
    else:
        start_workers = int(scaling.get("n-workers") or 0)
    try:
        cluster = LocalCluster(n_workers=start_workers, **kwargs)
    except TypeError as exc:
        raise ClusterError(
            f"invalid local cluster setting: {exc}; check gridflux.cluster.local"
        ) from exc
    return _attach(
        cluster, "local", lambda: _scale(cluster, None, bounds, jobs=False) if adaptive else None
    )


_START_METHODS = ("spawn", "forkserver")


def use_start_method(method: str) -> None:
    """Start this process's local worker processes by ``spawn`` or from a ``forkserver``.

    A spawned worker is a new interpreter that imports distributed, numpy, pandas, xarray, netCDF4,
    h5py and dask.array itself (~0.9 s of CPU, paid again by every worker and every restart). The
    fork server is one process, started with the first worker, that imports them once
    (:data:`gridflux.compute.worker_setup.TASK_MODULES` next to dask's own list); each worker is
    then a fork of it (~0.1 s). It is a clean process (no threads, no open files), so forking it is
    safe for HDF5. It keeps the environment it started with: a ``MALLOC_TRIM_THRESHOLD_`` configured
    for nannies is therefore put into this process's environment first.
    """
    import multiprocessing

    if method not in _START_METHODS:
        raise ClusterError(
            f"gridflux.cluster.local.start-method must be one of {', '.join(_START_METHODS)}, got "
            f"{method!r}; "
            f"{_where('local', 'start-method')}"
        )
    dask.config.set({"distributed.worker.multiprocessing-method": method})
    if method != "forkserver":
        return
    from distributed.utils import get_mp_context
    from distributed.versions import optional_packages, required_packages

    from gridflux.compute.worker_setup import TASK_MODULES

    threshold = _trim_threshold()
    if threshold is not None:
        os.environ[_TRIM_VAR] = str(threshold)
    get_mp_context()  # dask's own set-up of the fork server (it sets its preload list only once)
    # modules that fail to import are skipped by the fork server
    preload = ["distributed", *required_packages, *optional_packages, *TASK_MODULES]
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(dict.fromkeys(preload)))


def _attach(cluster: Any, kind: str, scale: Any) -> ClusterHandle:
    """Scale a started cluster (``scale()``) and connect a client to it; close the cluster if either
    fails, so that no scheduler or job is left behind."""
    from distributed import Client

    try:
        scale()
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return ClusterHandle(client, cluster, kind, _closers=(cluster.close,))


def _jobqueue_kwargs(kind: str, prof: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    scaling, kwargs = _split(prof)
    if kwargs.get("cores") is None or kwargs.get("memory") is None:
        key = "cores" if kwargs.get("cores") is None else "memory"
        raise ClusterError(f"the {kind} profile needs {key!r} (per job); {_where(kind, key)}")
    if kwargs.get("processes") is None:
        kwargs["processes"] = kwargs["cores"]  # one worker process per core, one thread each
    if int(kwargs["cores"]) != int(kwargs["processes"]):
        logger.warning(
            "%s profile: cores=%s, processes=%s gives %s threads per worker; netCDF/HDF5 reads are "
            "not thread-safe, prefer processes == cores",
            kind,
            kwargs["cores"],
            kwargs["processes"],
            int(kwargs["cores"]) // max(int(kwargs["processes"]), 1),
        )
    if kwargs.get("python") is None:
        kwargs["python"] = sys.executable
    kwargs.setdefault("job_name", "gridflux-worker")
    closed_network(kwargs)
    exports = [f"export {k}={_shell_quote(v)}" for k, v in worker_env().items()]
    kwargs["job_script_prologue"] = exports + list(kwargs.get("job_script_prologue") or [])
    for key in ("job_extra_directives", "worker_extra_args"):
        if kwargs.get(key) is not None:
            kwargs[key] = list(kwargs[key])
    return scaling, kwargs


def _has_option(args: list[str], names: tuple[str, ...]) -> bool:
    return any(a in names or a.split("=", 1)[0] in names for a in map(str, args))


def closed_network(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Make the keyword arguments of a jobqueue cluster listen on :data:`LOCALHOST` unless the
    profile opens it on purpose (changes ``kwargs`` in place and returns it).

    * The scheduler binds to ``127.0.0.1`` unless ``interface`` (e.g. ``ib0``) or
      ``scheduler_options`` ``host``/``interface`` is given (``--scheduler-host``).
    * The scheduler's dashboard binds to ``127.0.0.1:0`` (a free port, printed at start; reach it
      with ``ssh -L``) unless ``scheduler_options["dashboard_address"]`` is given: opening the
      scheduler to the workers' network does not open the dashboard.
    * Workers: while the scheduler is on loopback (which only works with the workers on the same
      node), they listen on ``127.0.0.1`` too (``--host``); their own dashboards always on
      ``127.0.0.1:0`` unless ``worker_extra_args`` names a ``--dashboard-address``.
    * ``tls: true`` encrypts and authenticates every connection with a temporary certificate
      (``security=True`` of dask-jobqueue: the certificate goes to the workers through
      ``shared_temp_directory``, which must then be on a file system the nodes share).
    """
    sched = dict(kwargs.get("scheduler_options") or {})
    opened = bool(kwargs.get("interface")) or "host" in sched or "interface" in sched
    if not opened:
        sched["host"] = LOCALHOST
    sched.setdefault("dashboard_address", f"{LOCALHOST}:0")
    kwargs["scheduler_options"] = sched
    args = [str(a) for a in kwargs.get("worker_extra_args") or []]
    if not opened and not _has_option(args, _WORKER_BIND_ARGS):
        args += ["--host", LOCALHOST]
    if not _has_option(args, ("--dashboard-address", "--dashboard", "--no-dashboard")):
        args += ["--dashboard-address", f"{LOCALHOST}:0"]
    kwargs["worker_extra_args"] = args
    if kwargs.pop("tls", False) and kwargs.get("security") is None:
        kwargs["security"] = True
    return kwargs


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def render_job_script(
    kind: str, scheduler_address: str = "tcp://SCHEDULER:8786", **overrides: Any
) -> str:
    """Render the worker job script of the ``slurm`` or ``pbs`` profile without submitting anything.

    Needs neither ``sbatch``/``qsub`` nor a running scheduler: use it to check a profile on a
    laptop (``gridflux`` + ``dask-jobqueue`` installed) before going to the cluster.
    """
    if kind not in _SUBMIT_COMMAND:
        raise ClusterError(f"job scripts exist for {sorted(_SUBMIT_COMMAND)}, not {kind!r}")
    jq = _import_optional("dask_jobqueue", "hpc", kind)
    _, kwargs = _jobqueue_kwargs(kind, profile(kind, **overrides))
    job_kwargs = {k: v for k, v in kwargs.items() if k not in _JOBQUEUE_CLUSTER_ONLY}
    job_cls = jq.SLURMCluster.job_cls if kind == "slurm" else jq.PBSCluster.job_cls
    try:
        job = job_cls(scheduler=scheduler_address, name="gridflux-worker", **job_kwargs)
    except (TypeError, ValueError) as exc:
        raise ClusterError(f"invalid {kind} profile: {exc}; check gridflux.cluster.{kind}") from exc
    return job.job_script()


def _start_jobqueue(kind: str, prof: dict[str, Any], n_workers: int | None) -> ClusterHandle:
    submit = _SUBMIT_COMMAND[kind]
    if shutil.which(submit) is None:
        raise ClusterError(
            f"{submit!r} is not on PATH: the {kind} cluster submits one job per worker group with "
            f"{submit}. Run gridflux on a login node of the {kind.upper()} system (or in a batch "
            "job, "
            f"see deploy/{kind}/), or check the profile with "
            f"gridflux.cluster.render_job_script({kind!r})"
        )
    jq = _import_optional("dask_jobqueue", "hpc", kind)
    scaling, kwargs = _jobqueue_kwargs(kind, prof)
    bounds = _adaptive_bounds(kind, scaling, jobs=True)
    cls = jq.SLURMCluster if kind == "slurm" else jq.PBSCluster

    try:
        cluster = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ClusterError(f"invalid {kind} profile: {exc}; check gridflux.cluster.{kind}") from exc
    return _attach(cluster, kind, lambda: _scale(cluster, n_workers, bounds, jobs=True))


def render_cluster_spec(**overrides: Any) -> dict[str, Any]:
    """The ``DaskCluster`` resource (dask-kubernetes operator) that the kubernetes profile creates.

    Built with ``dask_kubernetes.operator.make_cluster_spec`` and adjusted: the scheduler and
    workers run ``dask scheduler`` / ``dask worker`` (``dask-scheduler``/``dask-worker`` scripts are
    gone from recent distributed), one thread per worker, the nanny environment of
    :func:`worker_env` plus the profile's ``env``.
    """
    prof = profile("kubernetes", **overrides)
    if not prof.get("image"):
        raise ClusterError(
            "the kubernetes profile needs 'image', a container image with gridflux installed "
            f"(build deploy/container/Dockerfile); {_where('kubernetes', 'image')}"
        )
    op = _import_optional("dask_kubernetes.operator", "kubernetes", "kubernetes")
    env = {**worker_env(), **{str(k): str(v) for k, v in (prof.get("env") or {}).items()}}
    spec = op.make_cluster_spec(
        name=prof.get("name") or "gridflux",
        image=prof["image"],
        n_workers=int(prof.get("n-workers") or 0),
        resources=prof.get("resources") or None,
        env=env,
        worker_command="dask worker",
        scheduler_service_type=prof.get("scheduler-service-type") or "ClusterIP",
        idle_timeout=int(prof.get("idle-timeout") or 0),
    )
    service = prof.get("scheduler-service-type") or "ClusterIP"
    if service != "ClusterIP":
        logger.warning(
            "kubernetes scheduler-service-type=%s makes the scheduler (8786) and its dashboard "
            "(8787) reachable from outside the cluster without TLS; prefer ClusterIP with "
            "kubectl port-forward (docs/deploy.md)",
            service,
        )
    sched = spec["spec"]["scheduler"]["spec"]["containers"][0]
    sched["args"] = ["dask", "scheduler", "--host", "0.0.0.0"]
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    args = list(worker["args"])
    if args[:1] == ["dask-worker"]:
        args = ["dask", "worker", *args[1:]]
    if args[:2] == ["dask", "worker"] and "--nthreads" not in args:
        args += ["--nthreads", "1"]
    worker["args"] = args
    return spec


def _start_kubernetes(prof: dict[str, Any], n_workers: int | None) -> ClusterHandle:
    overrides = dict(prof)
    if n_workers is not None:
        overrides["n-workers"] = int(n_workers)
    spec = render_cluster_spec(**overrides)
    bounds = _adaptive_bounds("kubernetes", prof, jobs=False)
    op = _import_optional("dask_kubernetes.operator", "kubernetes", "kubernetes")

    try:
        cluster = op.KubeCluster(custom_cluster_spec=spec, namespace=prof.get("namespace"))
    except Exception as exc:  # kr8s/kubernetes raise many types when no cluster is reachable
        raise ClusterError(
            f"could not create the DaskCluster {spec['metadata']['name']!r} on Kubernetes: "
            f"{exc!r}. "
            "It needs a kubeconfig (~/.kube/config, KUBECONFIG, or an in-cluster service account "
            "allowed to create daskclusters) and the dask-kubernetes operator installed in the "
            "cluster (helm install dask-kubernetes-operator, see docs/deploy.md)"
        ) from exc
    return _attach(
        cluster,
        "kubernetes",
        lambda: _scale(cluster, None, bounds, jobs=False) if n_workers is None else None,
    )


def _start_gateway(prof: dict[str, Any], n_workers: int | None) -> ClusterHandle:
    dg = _import_optional("dask_gateway", "gateway", "gateway")
    address = prof.get("address") or dask.config.get("gateway.address", default=None)
    if not address:
        raise ClusterError(
            "the gateway profile needs 'address', the URL of the dask-gateway server "
            f"(e.g. https://gateway.example.org); {_where('gateway', 'address')}"
        )
    bounds = _adaptive_bounds("gateway", prof, jobs=False)
    kwargs: dict[str, Any] = {"address": address}
    if prof.get("proxy-address"):
        kwargs["proxy_address"] = prof["proxy-address"]
    if prof.get("auth"):
        kwargs["auth"] = prof["auth"]
    try:
        gateway = dg.Gateway(**kwargs)
        options = gateway.cluster_options()
    except Exception as exc:
        raise ClusterError(f"cannot reach the dask-gateway server at {address}: {exc!r}") from exc
    for key, value in (prof.get("cluster-options") or {}).items():
        try:
            options[key] = value
        except (KeyError, AttributeError, ValueError, TypeError) as exc:
            gateway.close()
            raise ClusterError(
                f"gateway cluster option {key!r}={value!r} rejected by {address} ({exc}); the "
                "server "
                f"offers {sorted(options)}; fix gridflux.cluster.gateway.cluster-options"
            ) from exc
    try:
        cluster = gateway.new_cluster(options)
    except Exception as exc:
        gateway.close()
        raise ClusterError(
            f"the dask-gateway server at {address} could not start a cluster: {exc!r}"
        ) from exc
    try:
        _scale(cluster, n_workers, bounds, jobs=False)
        client = cluster.get_client(set_as_default=False)
    except BaseException:
        cluster.shutdown()
        gateway.close()
        raise
    return ClusterHandle(client, cluster, "gateway", _closers=(cluster.shutdown, gateway.close))


_STARTERS = {
    "local": _start_local,
    "slurm": lambda prof, n: _start_jobqueue("slurm", prof, n),
    "pbs": lambda prof, n: _start_jobqueue("pbs", prof, n),
    "kubernetes": _start_kubernetes,
    "gateway": _start_gateway,
}
