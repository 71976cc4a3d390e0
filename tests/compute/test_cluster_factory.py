"""make_cluster: profiles and their precedence, errors, LocalCluster, addresses, the nanny
environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import dask.config
import pytest

from gridflux.compute import clusters as gc
from gridflux.errors import ClusterError


def _square(x: int) -> int:
    return x * x


# ------------------------------------------------------------------ profiles


def test_profile_precedence_packaged_user_kwargs():
    # packaged default
    assert gc.profile("slurm")["walltime"] == "01:00:00"
    # user's dask config beats the packaged default ...
    with dask.config.set(
        {"gridflux.cluster.slurm.walltime": "04:00:00", "gridflux.cluster.slurm.queue": "big"}
    ):
        prof = gc.profile("slurm")
        assert (prof["walltime"], prof["queue"]) == ("04:00:00", "big")
        # ... and keyword arguments beat both; underscores and hyphens are the same key,
        # None means "not given"
        prof = gc.profile("slurm", walltime="00:10:00", minimum_jobs=3, queue=None)
        assert (prof["walltime"], prof["minimum-jobs"], prof["queue"]) == ("00:10:00", 3, "big")


def test_user_config_file_and_env_reach_the_profile(tmp_path):
    """A real user config file (DASK_CONFIG) and a DASK_GRIDFLUX__ variable, in a fresh
    interpreter."""
    (tmp_path / "gridflux.yaml").write_text(
        "gridflux:\n  cluster:\n    pbs:\n      queue: fromfile\n      walltime: '09:00:00'\n"
    )
    code = (
        "import json, gridflux.compute.clusters as c; p = c.profile('pbs'); "
        "print(json.dumps([p['queue'], p['walltime'], p['cores']]))"
    )
    got = _json_from_fresh_interpreter(
        code, {"DASK_CONFIG": str(tmp_path), "DASK_GRIDFLUX__CLUSTER__PBS__WALLTIME": "'11:00:00'"}
    )
    # file beats package, environment beats file, untouched keys keep the packaged default
    assert got == ["fromfile", "11:00:00", 1]


def test_an_environment_variable_of_a_hyphenated_key_reaches_the_profile():
    """DASK_GRIDFLUX__CLUSTER__SLURM__MAXIMUM_JOBS arrives in dask's config as ``maximum_jobs``
    (replacing the packaged ``maximum-jobs``); the profile must hold it as ``maximum-jobs`` (it
    kept the underscore key, so the setting was read as absent)."""
    code = (
        "import json, gridflux.compute.clusters as c; p = c.profile('slurm'); "
        "print(json.dumps([p.get('maximum-jobs'), 'maximum_jobs' in p, p.get('minimum-jobs')]))"
    )
    got = _json_from_fresh_interpreter(code, {"DASK_GRIDFLUX__CLUSTER__SLURM__MAXIMUM_JOBS": "5"})
    assert got == [5, False, 0]


def test_every_kind_has_a_packaged_profile():
    for kind in gc.KINDS:
        assert isinstance(gc.profile(kind), dict) and gc.profile(kind), kind


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("kind", ["slurmm", "", "http://host:8786", 42])
def test_unknown_kind_is_a_cluster_error(kind):
    with pytest.raises(
        ClusterError, match="expected one of local, slurm, pbs, kubernetes, gateway"
    ):
        gc.make_cluster(kind)


def test_pbs_without_qsub_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no qsub
    with pytest.raises(ClusterError, match=r"'qsub' is not on PATH.*render_job_script\('pbs'\)"):
        gc.make_cluster("pbs")


def test_slurm_without_sbatch_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterError, match="'sbatch' is not on PATH"):
        gc.make_cluster("slurm")


def test_jobqueue_profile_without_memory_names_the_setting():
    with dask.config.set({"gridflux.cluster.pbs.memory": None}):
        with pytest.raises(
            ClusterError, match=r"needs 'memory'.*DASK_GRIDFLUX__CLUSTER__PBS__MEMORY"
        ):
            gc.render_job_script("pbs")


def test_bad_adaptive_bounds(monkeypatch):
    with pytest.raises(ClusterError, match="0 <= minimum <= maximum, got minimum=3, maximum=1"):
        gc.make_cluster("local", minimum=3, maximum=1)


def test_gateway_without_address_names_the_setting():
    pytest.importorskip(
        "dask_gateway", reason="dask-gateway not installed (pip install dask-gateway)"
    )
    with dask.config.set({"gateway.address": None, "gridflux.cluster.gateway.address": None}):
        with pytest.raises(
            ClusterError,
            match=r"needs 'address'.*gridflux: cluster: gateway: address.*--gateway-address",
        ):
            gc.make_cluster("gateway")


def test_kubernetes_without_image_names_the_setting():
    with pytest.raises(
        ClusterError,
        match=r"needs 'image'.*deploy/container/Dockerfile"
        r".*DASK_GRIDFLUX__CLUSTER__KUBERNETES__IMAGE",
    ):
        gc.make_cluster("kubernetes")


def test_kubernetes_without_the_package(monkeypatch):
    # a None entry in sys.modules makes the import raise ImportError, as if not installed
    monkeypatch.setitem(sys.modules, "dask_kubernetes", None)
    monkeypatch.setitem(sys.modules, "dask_kubernetes.operator", None)
    with pytest.raises(ClusterError, match=r'pip install "gridflux\[kubernetes\]"'):
        gc.make_cluster("kubernetes", image="example.org/gridflux:1")


def test_gateway_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_gateway", None)
    with pytest.raises(ClusterError, match=r'pip install "gridflux\[gateway\]"'):
        gc.make_cluster("gateway", address="http://127.0.0.1:1")


def test_kubernetes_without_a_kubeconfig(monkeypatch, tmp_path):
    pytest.importorskip(
        "dask_kubernetes", reason="dask-kubernetes not installed (pip install dask-kubernetes)"
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ClusterError, match="kubeconfig"):
        gc.make_cluster("kubernetes", image="example.org/gridflux:1")


def test_address_with_options_is_rejected():
    with pytest.raises(ClusterError, match="do not apply when connecting"):
        gc.make_cluster("tcp://127.0.0.1:1", queue="debug")


def test_missing_scheduler_file(tmp_path):
    with pytest.raises(ClusterError, match="does not exist"):
        gc.make_cluster(f"scheduler-file:{tmp_path / 'nope.json'}")


def test_unreachable_address_is_a_cluster_error():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(
            ClusterError, match=f"cannot connect to the dask scheduler at tcp://127.0.0.1:{port}"
        ):
            gc._connect(f"tcp://127.0.0.1:{port}")


# ------------------------------------------------------------------ nanny environment


def _json_from_fresh_interpreter(code: str, extra_env: dict) -> object:
    """The last line ``code`` prints (JSON) in a new interpreter whose environment has no DASK_*
    variables (nor MALLOC_TRIM_THRESHOLD_) besides ``extra_env``: what a remote worker starts
    with."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DASK_") and k != "MALLOC_TRIM_THRESHOLD_"
    }
    env.update(extra_env)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _nanny_env_in_fresh_interpreter(extra_env):
    code = (
        "import json; from distributed.nanny import _get_env_variables; "
        "print(json.dumps(_get_env_variables('distributed.nanny.pre-spawn-environ')))"
    )
    return _json_from_fresh_interpreter(code, extra_env)


def test_worker_env_reaches_a_remote_nanny():
    """What a jobqueue job / pod exports, read by dask in a fresh interpreter as a remote nanny
    would."""
    assert "MALLOC_TRIM_THRESHOLD_" in _nanny_env_in_fresh_interpreter({})  # dask's default sets it
    env = _nanny_env_in_fresh_interpreter(gc.worker_env())
    assert "MALLOC_TRIM_THRESHOLD_" not in env
    assert env["OMP_NUM_THREADS"] == "1"  # the other pre-spawn variables survive the merge
    with dask.config.set({"gridflux.cluster.malloc-trim-threshold": 131072}):
        exported = gc.worker_env()
    assert _nanny_env_in_fresh_interpreter(exported)["MALLOC_TRIM_THRESHOLD_"] == "131072"


def _dask_settings_in_fresh_interpreter(extra_env: dict, keys: list[str]) -> list:
    code = (
        f"import json, dask, distributed; print(json.dumps([dask.config.get(k) for k in {keys!r}]))"
    )
    return _json_from_fresh_interpreter(code, extra_env)


# dask's own defaults of the settings gridflux changes (distributed's distributed.yaml)
_DASK_DEFAULTS = {
    "distributed.admin.tick.interval": "20ms",
    "distributed.admin.system-monitor.interval": "500ms",
    "distributed.worker.profile.enabled": True,
    "distributed.worker.memory.monitor-interval": "100ms",
    "distributed.scheduler.work-stealing": True,
}


def test_distributed_settings_reach_a_remote_worker_and_can_be_turned_off():
    """gridflux.cluster.distributed travels as DASK_DISTRIBUTED__* variables; a fresh interpreter
    (as a jobqueue job or pod starts) reads gridflux's values where dask's defaults would be."""
    keys = list(_DASK_DEFAULTS)
    assert _dask_settings_in_fresh_interpreter({}, keys) == list(_DASK_DEFAULTS.values())
    assert _dask_settings_in_fresh_interpreter(gc.worker_env(), keys) == [
        "500ms",
        "1s",
        False,
        "500ms",
        False,
    ]
    with dask.config.set({"gridflux.cluster.distributed": {}}):  # the user keeps dask's behaviour
        assert gc.distributed_settings() == {}
        assert list(gc.worker_env()) == ["DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"]
    with dask.config.set(
        {"gridflux.cluster.distributed.worker.profile.enabled": True}
    ):  # one leaf back
        settings = gc.distributed_settings()
    assert settings["distributed.worker.profile.enabled"] is True
    assert settings["distributed.scheduler.work-stealing"] is False
    # the same leaf from the environment, as a user's job would set it
    code = (
        "import json, gridflux.compute.clusters as c; print(json.dumps(c.distributed_settings()))"
    )
    from_env = _json_from_fresh_interpreter(
        code, {"DASK_GRIDFLUX__CLUSTER__DISTRIBUTED__WORKER__PROFILE__ENABLED": "True"}
    )
    assert from_env["distributed.worker.profile.enabled"] is True
    assert from_env["distributed.admin.tick.interval"] == "500ms"


def _preloaded() -> tuple:
    import sys

    import netCDF4

    from gridflux import config

    cache = netCDF4.get_chunk_cache()[0] == int(config.get("pipeline.netcdf-chunk-cache"))
    return (
        "xarray" in sys.modules,
        "h5py" in sys.modules,
        "gridflux.pipeline.tasks" in sys.modules,
        cache,
    )


def test_local_cluster_processes_one_thread_no_malloc_trim(no_malloc_trim_env):
    with gc.make_cluster("local", n_workers=2) as handle:
        handle.wait_for_workers(2, timeout=30)
        info = handle.client.scheduler_info(n_workers=-1)["workers"]
        assert len(info) == 2
        assert all(w["nthreads"] == 1 for w in info.values())
        assert all(w["host"] == "127.0.0.1" for w in info.values())
        assert handle.dashboard_link.startswith("http://127.0.0.1:")
        pids = handle.client.run(os.getpid)
        assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()  # processes
        envs = handle.client.run(
            lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS"))
        )
        # unset in the workers although the nanny still applies its other pre-spawn variables
        assert set(envs.values()) == {(None, "1")}
        total = handle.client.submit(sum, handle.client.map(_square, range(1, 101))).result()
        assert total == 100 * 101 * 201 // 6
        # the worker preload (gridflux.compute.worker_setup) has imported the task stack by the time
        # the workers are up, and limited netCDF-C's chunk cache
        loaded = handle.client.run(_preloaded)
        assert set(loaded.values()) == {(True, True, True, True)}, loaded
        # gridflux.cluster.distributed reached the workers (through their nannies) and the scheduler
        keys = list(_DASK_DEFAULTS)
        seen = handle.client.run(lambda: [dask.config.get(k) for k in keys])
        assert list(seen.values()) == [["500ms", "1s", False, "500ms", False]] * 2
        scheduler = handle.client.run_on_scheduler(
            lambda dask_scheduler: (
                "stealing" in dask_scheduler.extensions,
                dask_scheduler.periodic_callbacks["tick"].callback_time,
            )
        )
        assert scheduler == (False, 500)  # no work-stealing extension; the tick every 500 ms
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # did not leak into this process
    assert handle.client.status == "closed"


def _parent() -> tuple[int, str]:
    import psutil

    parent = psutil.Process().parent()
    return parent.pid, " ".join(parent.cmdline())


def test_local_workers_fork_from_a_server_that_imported_the_task_stack(no_malloc_trim_env):
    """The default start method: both workers are forks of one fork server, whose preload list (on
    its command line) holds the task stack, so no worker imports it again."""
    from gridflux.compute.worker_setup import TASK_MODULES

    with gc.make_cluster("local", n_workers=2) as handle:
        handle.wait_for_workers(2, timeout=30)
        parents = set(handle.client.run(_parent).values())
    assert len(parents) == 1  # one server for both workers
    ((pid, cmdline),) = parents
    assert pid != os.getpid() and "multiprocessing.forkserver" in cmdline
    missing = [m for m in TASK_MODULES if f"'{m}'" not in cmdline]
    assert not missing, cmdline


def test_spawned_local_workers_when_configured(no_malloc_trim_env):
    with dask.config.set({"gridflux.cluster.local.start-method": "spawn"}):
        with gc.make_cluster("local", n_workers=1) as handle:
            handle.wait_for_workers(1, timeout=30)
            parents = set(handle.client.run(_parent).values())
            loaded = set(handle.client.run(_preloaded).values())
    assert {pid for pid, _ in parents} == {os.getpid()}  # started by the nanny in this process
    assert loaded == {(True, True, True, True)}  # the preload still imports the stack


def test_unknown_start_method_names_the_setting():
    with dask.config.set({"gridflux.cluster.local.start-method": "fork"}):
        with pytest.raises(
            ClusterError, match="start-method must be one of spawn, forkserver, got 'fork'"
        ):
            gc.make_cluster("local", n_workers=1)


def test_local_cluster_malloc_trim_when_configured():
    """Control: with the setting restored, the workers do see dask's variable (the test above can
    fail)."""
    code = textwrap.dedent(
        """
        import os, dask.config
        from gridflux.compute import clusters as gc
        with dask.config.set({"gridflux.cluster.malloc-trim-threshold": 65536}):
            with gc.make_cluster("local", n_workers=1) as h:
                print(set(h.client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "{'65536'}"


def test_local_adaptive_scales_up_from_zero(no_malloc_trim_env):
    with gc.make_cluster("local", minimum=0, maximum=2) as handle:
        assert len(handle.client.scheduler_info()["workers"]) == 0
        futures = handle.client.map(_square, range(20))
        assert handle.client.submit(sum, futures).result(timeout=60) == sum(
            i * i for i in range(20)
        )
        assert 1 <= len(handle.client.scheduler_info()["workers"]) <= 2


def test_connect_by_address_and_scheduler_file(tmp_path, no_malloc_trim_env):
    from distributed import LocalCluster

    sched_file = tmp_path / "scheduler.json"
    with LocalCluster(
        n_workers=1, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address=None
    ) as cluster:
        with gc.make_cluster(cluster.scheduler_address) as handle:
            assert handle.cluster is None and handle.kind == "address"
            assert handle.client.submit(_square, 12).result() == 144
            handle.client.write_scheduler_file(str(sched_file))
        # closing the handle closed only its client: the scheduler still serves
        with gc.make_cluster(f"scheduler-file:{sched_file}") as handle:
            assert handle.client.scheduler.address == cluster.scheduler_address
            assert handle.client.submit(_square, 7).result() == 49


# ------------------------------------------------------------------ nothing written into $HOME


_HOME_SCRIPT = textwrap.dedent(
    """
    import importlib.util, os
    import gridflux, gridflux.config, gridflux.compute.clusters as gc
    gc.render_job_script("slurm"); gc.render_job_script("pbs")
    if importlib.util.find_spec("dask_kubernetes"):
        gc.render_cluster_spec(image="example.org/gridflux:1")
    if importlib.util.find_spec("dask_gateway"):
        gc._import_optional("dask_gateway", "gateway", "gateway")
    with gc.make_cluster("local", n_workers=1) as h:
        h.client.submit(sum, [1, 2]).result()
    print("done")
    """
)


def _run_with_home(home, code):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASK_", "XDG_"))}
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=str(home),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _files_under(path):
    return sorted(
        os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs
    )


def test_nothing_written_into_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    out = _run_with_home(home, _HOME_SCRIPT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("done")
    assert _files_under(home) == []
    # control: importing dask-jobqueue directly does write into that home, so the check above can
    # fail
    out = _run_with_home(home, "import dask_jobqueue")
    assert out.returncode == 0, out.stderr
    assert _files_under(home) == [os.path.join(".config", "dask", "jobqueue.yaml")]
