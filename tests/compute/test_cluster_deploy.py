"""deploy/: every file documented and parseable; job scripts by content; the Kubernetes manifests
against the schemas the dask-kubernetes / kubernetes packages ship; the container recipe against
pyproject.toml."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import dask.config
import pytest
import yaml

from gridflux.compute import clusters as gc

from .conftest import DEPLOY, REPO

DEPLOY_FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


# ------------------------------------------------------------------ every file: documented,
# parseable


def test_deploy_has_the_expected_files():
    names = {p.relative_to(DEPLOY).as_posix() for p in DEPLOY_FILES}
    assert {
        "README.md",
        "slurm/run.sbatch",
        "slurm/gridflux-slurm.yaml",
        "pbs/run.pbs",
        "pbs/gridflux-pbs.yaml",
        "kubernetes/daskcluster.yaml",
        "kubernetes/job.yaml",
        "gateway/gridflux-gateway.yaml",
        "gateway/dask_gateway_config.py",
        "container/Dockerfile",
        "container/environment.yml",
    } <= names


@pytest.mark.parametrize("path", DEPLOY_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_deploy_file_is_documented_and_parses(path):
    rel = path.relative_to(DEPLOY).as_posix()
    readme = (DEPLOY / "README.md").read_text()
    if rel != "README.md":
        assert rel in readme, f"deploy/{rel} is not mentioned in deploy/README.md"
    if path.suffix in (".yaml", ".yml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        assert docs and all(isinstance(d, dict) for d in docs)
    elif path.suffix in (".sbatch", ".pbs", ".sh"):
        subprocess.run(["bash", "-n", str(path)], check=True)
    elif path.suffix == ".py":
        compile(path.read_text(), str(path), "exec")


def test_readme_commands_name_existing_files():
    readme = (DEPLOY / "README.md").read_text()
    for ref in re.findall(r"deploy/[\w./-]+", readme):
        ref = ref.rstrip(".")
        assert (REPO / ref).exists(), ref


def _profile_from(path: Path) -> dict:
    """The dask config a user gets with DASK_CONFIG pointing at ``path``'s directory."""
    return dask.config.collect(paths=[str(path)], env={})


def test_driver_scripts_submit_gridflux_run():
    sbatch = (DEPLOY / "slurm" / "run.sbatch").read_text()
    assert '"$gridflux" run "$catalog" --mask "$mask" --store "$store" --cluster slurm' in sbatch
    pbs = (DEPLOY / "pbs" / "run.pbs").read_text()
    assert '"$gridflux" run "$CATALOG" --mask "$MASK" --store "$STORE" --cluster pbs' in pbs
    assert re.search(r"^#PBS -l walltime=\d+:\d\d:\d\d$", pbs, re.M)


# ------------------------------------------------------------------ job scripts by content


def test_pbs_job_script_content():
    with dask.config.set(_profile_from(DEPLOY / "pbs" / "gridflux-pbs.yaml")):
        script = gc.render_job_script(
            "pbs", account="proj42", cores=2, memory="8GB", walltime="02:30:00"
        )
    lines = script.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "#PBS -N gridflux-worker" in lines
    assert "#PBS -q workq" in lines  # from deploy/pbs/gridflux-pbs.yaml
    assert "#PBS -A proj42" in lines
    assert "#PBS -l walltime=02:30:00" in lines
    # PBS counts memory in KiB/MiB/GiB named kB/MB/GB: 8e9 B = 7629.4 MiB, rounded up
    assert f"#PBS -l select=1:ncpus=2:mem={math.ceil(8e9 / 2**20)}MB" in lines
    assert (
        "export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON='{\"MALLOC_TRIM_THRESHOLD_\": None}'"
        in lines
    )
    (worker,) = [line for line in lines if "distributed.cli.dask_worker" in line]
    # processes default to cores: 2 worker processes of 1 thread, 4e9 B = 3.73 GiB each
    assert worker.startswith(
        f"{sys.executable} -m distributed.cli.dask_worker tcp://SCHEDULER:8786 "
    )
    assert re.search(r"--nthreads 1 --memory-limit 3\.73GiB --nworkers 2 ", worker), worker
    assert "--nanny" in worker
    # the script is valid shell
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_pbs_script_matches_pbscluster(no_malloc_trim_env):
    """The rendered header is what dask-jobqueue's own PBSCluster(...).job_script() writes."""
    jq = pytest.importorskip("dask_jobqueue", reason="dask-jobqueue not installed")
    kwargs = dict(
        queue="workq", account="proj42", cores=1, processes=1, memory="2GB", walltime="01:00:00"
    )
    ours = gc.render_job_script("pbs", **kwargs)
    with jq.PBSCluster(
        job_name="gridflux-worker",
        scheduler_options={"host": "127.0.0.1", "dashboard_address": None},
        **kwargs,
    ) as cluster:
        theirs = cluster.job_script()
    header = lambda s: [line for line in s.splitlines() if line.startswith("#PBS")]  # noqa: E731
    assert header(ours) == header(theirs)
    assert "#PBS -l select=1:ncpus=1:mem=1908MB" in header(ours)  # 2e9 B = 1907.3 MiB, rounded up


def test_slurm_profile_file_renders_its_job_script():
    with dask.config.set(_profile_from(DEPLOY / "slurm" / "gridflux-slurm.yaml")):
        assert gc.profile("slurm")["maximum-jobs"] == 64
        script = gc.render_job_script("slurm")
    lines = script.splitlines()
    for expected in (
        "#SBATCH -J gridflux-worker",
        "#SBATCH -p compute",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --mem=2G",
        "#SBATCH -t 02:00:00",
        "#SBATCH -e gridflux-logs/gridflux-worker-%J.err",
    ):
        assert expected in lines, (expected, lines)
    assert re.search(r"--nthreads 1 --memory-limit 1\.86GiB", script)  # 2e9 B
    assert "--local-directory $TMPDIR" in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


# ------------------------------------------------------------------ Kubernetes


def _crd_schema() -> dict:
    dk = pytest.importorskip(
        "dask_kubernetes", reason="dask-kubernetes not installed (pip install dask-kubernetes)"
    )
    crd = (
        Path(dk.__file__).parent
        / "operator"
        / "deployment"
        / "helm"
        / "dask-kubernetes-operator"
        / "crds"
        / "daskcluster.yaml"
    )
    doc = yaml.safe_load(crd.read_text())
    (version,) = [v for v in doc["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def _unknown_fields(obj, schema, path="") -> list[str]:
    """Keys a structural (pruning) Kubernetes schema would drop: typos that jsonschema lets
    through."""
    found: list[str] = []
    if (
        isinstance(obj, dict)
        and schema.get("type", "object") == "object"
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            if path == "" and key in ("apiVersion", "kind", "metadata"):
                continue  # every object has them; CRD schemas leave them to the API server
            if props is not None and key in props:
                found += _unknown_fields(value, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += _unknown_fields(value, extra, f"{path}.{key}")
            elif props is not None:
                found.append(f"{path}.{key}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            found += _unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def _validate_daskcluster(doc: dict) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema not installed")
    schema = _crd_schema()
    errors = [
        f"{'.'.join(map(str, e.path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(doc)
    ]
    return errors + [f"unknown field {p}" for p in _unknown_fields(doc, schema)]


def test_daskcluster_manifest_matches_the_crd():
    doc = yaml.safe_load((DEPLOY / "kubernetes" / "daskcluster.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("kubernetes.dask.org/v1", "DaskCluster")
    assert _validate_daskcluster(doc) == []
    worker = doc["spec"]["worker"]["spec"]["containers"][0]
    assert worker["args"][worker["args"].index("--nthreads") + 1] == "1"
    assert {
        "name": "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON",
        "value": gc.worker_env()["DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"],
    } in worker["env"]


def test_crd_check_can_fail():
    doc = yaml.safe_load((DEPLOY / "kubernetes" / "daskcluster.yaml").read_text())
    doc["spec"]["worker"]["replicas"] = "four"
    doc["spec"]["worker"]["replica"] = 4
    errors = _validate_daskcluster(doc)
    assert any("'four' is not of type 'integer'" in e for e in errors), errors
    assert "unknown field .spec.worker.replica" in errors
    del doc["spec"]["scheduler"]
    assert any("'scheduler' is a required property" in e for e in _validate_daskcluster(doc))


def test_rendered_cluster_spec_matches_the_crd():
    spec = gc.render_cluster_spec(image="example.org/gridflux:1", n_workers=3)
    assert _validate_daskcluster(spec) == []
    assert spec["spec"]["worker"]["replicas"] == 3
    assert spec["spec"]["scheduler"]["spec"]["containers"][0]["args"][:2] == ["dask", "scheduler"]


def _unknown_k8s_fields(obj, type_name: str, path: str = "") -> list[str]:
    """Walk a manifest along the kubernetes client's OpenAPI models; report unknown keys."""
    models = pytest.importorskip(
        "kubernetes.client.models", reason="kubernetes client not installed"
    )
    if type_name.startswith("list["):
        return [
            f
            for i, item in enumerate(obj)
            for f in _unknown_k8s_fields(item, type_name[5:-1], f"{path}[{i}]")
        ]
    if type_name.startswith(("dict(", "dict[")):
        value_type = type_name[5:-1].split(", ", 1)[1]
        return [
            f for k, v in obj.items() for f in _unknown_k8s_fields(v, value_type, f"{path}.{k}")
        ]
    if type_name in ("str", "int", "bool", "float", "object", "datetime", "date"):
        return []
    cls = getattr(models, type_name)
    by_json = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    found = []
    for key, value in obj.items():
        if key not in by_json:
            found.append(f"{path}.{key}")
        else:
            found += _unknown_k8s_fields(value, cls.openapi_types[by_json[key]], f"{path}.{key}")
    return found


def test_driver_job_manifest():
    job = yaml.safe_load((DEPLOY / "kubernetes" / "job.yaml").read_text())
    cluster = yaml.safe_load((DEPLOY / "kubernetes" / "daskcluster.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert _unknown_k8s_fields(job, "V1Job") == []
    (driver,) = job["spec"]["template"]["spec"]["containers"]
    command = driver["command"] + driver["args"]
    assert command[:2] == ["gridflux", "run"]
    assert (
        command[command.index("--cluster") + 1]
        == f"tcp://{cluster['metadata']['name']}-scheduler:8786"
    )
    assert {"--mask", "--store"} <= set(command)
    images = {
        c["image"]
        for part in ("worker", "scheduler")
        for c in cluster["spec"][part]["spec"]["containers"]
    }
    assert images == {driver["image"]}  # one image for driver, scheduler and workers
    # control: the walker reports a misspelled field
    job["spec"]["template"]["spec"]["restartPolicyy"] = "Never"
    assert _unknown_k8s_fields(job, "V1Job") == [".spec.template.spec.restartPolicyy"]


# ------------------------------------------------------------------ container


# PyPI name -> conda-forge package(s) where they differ
CONDA_NAMES = {
    "dask[distributed]": ["dask", "distributed"],
    "h5netcdf[h5py]": ["h5netcdf", "h5py"],
    "netcdf4": ["netcdf4"],
    "matplotlib": ["matplotlib-base"],
}


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~; ]", req, maxsplit=1)[0].strip().lower()


def _conda_names(env: dict) -> set[str]:
    names = set()
    for dep in env["dependencies"]:
        for d in (
            dep.get("pip", []) if isinstance(dep, dict) else [dep]
        ):  # conda packages, then pip ones
            names.add(re.split(r"[<>=! ]", d, maxsplit=1)[0].lower())
    return names


def test_environment_covers_pyproject_and_brings_xesmf():
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    env = yaml.safe_load((DEPLOY / "container" / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    have = _conda_names(env)
    needed = [_requirement_name(r) for r in pyproject["project"]["dependencies"]]
    for extra in ("s3", "geo", "xesmf", "hpc", "kubernetes", "gateway"):
        needed += [
            _requirement_name(r)
            for r in pyproject["project"]["optional-dependencies"].get(extra, [])
        ]
    missing = [
        n
        for n in needed
        for c in CONDA_NAMES.get(n, [n.replace("_", "-") if n != "cf_xarray" else n])
        if c not in have
    ]
    assert missing == [], f"environment.yml lacks {missing}"
    assert {"esmpy", "xesmf"} <= have
    assert "python=3.11" in env["dependencies"]


def test_dockerfile_builds_from_the_environment():
    text = (DEPLOY / "container" / "Dockerfile").read_text()
    instructions = [
        line.split()[0]
        for line in text.splitlines()
        if line.strip() and not line.startswith((" ", "#"))
    ]
    known = {
        "FROM",
        "COPY",
        "RUN",
        "ARG",
        "ENV",
        "WORKDIR",
        "ENTRYPOINT",
        "CMD",
        "USER",
        "LABEL",
        "EXPOSE",
    }
    assert set(instructions) <= known and instructions[0] == "FROM"
    assert "deploy/container/environment.yml" in text and "-f /tmp/environment.yml" in text
    assert re.search(r"pip install --no-deps .*/opt/gridflux", text)
    assert "MALLOC_TRIM_THRESHOLD_" in text
