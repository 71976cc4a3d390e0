"""One source of settings: gridflux's packaged defaults sit under the user's dask config.

A user's earlier ``dask.config.set`` survives importing gridflux; ``set_options`` refuses a key
gridflux does not have; every run setting left None comes from dask's config, and YAML
(``DASK_CONFIG``), ``DASK_GRIDFLUX__*`` variables and ``set_options`` each reach ``gridflux.run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import xarray as xr

import gridflux
from gridflux import config
from gridflux.errors import GridfluxError
from gridflux.kernels.grids import global_grid
from gridflux.pipeline.runner import RunSettings


def _python(code: str, env: dict | None = None, tmp_path=None) -> str:
    """Run ``code`` in a fresh interpreter (gridflux not yet imported); its stdout."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    full_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_an_earlier_dask_config_set_survives_import_and_first_use():
    """The issue's case: array.chunk-size set to 7MiB came back as 128MiB after gridflux loaded
    its defaults; a gridflux key set before the import wins over the packaged default too."""
    got = _python(
        """
        import json, dask
        dask.config.set({"array.chunk-size": "7MiB", "gridflux.pipeline.chunk-months": 5})
        import gridflux.config as c
        import gridflux
        first = c.get("pipeline.chunk-months")
        gridflux.run, gridflux.set_options  # first use of the lazy API
        import gridflux.pipeline.runner
        print(json.dumps([dask.config.get("array.chunk-size"), first,
                          c.get("pipeline.batch-members")]))
        """
    )
    assert json.loads(got) == ["7MiB", 5, 16]


def test_set_options_rejects_an_unknown_key_and_lists_the_valid_ones():
    with pytest.raises(config.UnknownOptionError) as err:
        config.set_options(**{"pipeline.chunk-monhts": 6})
    msg = str(err.value)
    assert "'pipeline.chunk-monhts'" in msg
    assert "pipeline.chunk-months" in msg and "store.zarr-format" in msg
    assert isinstance(err.value, GridfluxError)
    with pytest.raises(config.UnknownOptionError):
        config.set_options(pipeline={"chunk-months": 6}, nonsense=1)
    # known keys (either spelling), whole sections and keys below a free-form mapping are accepted
    with config.set_options(
        **{"pipeline.chunk_months": 6, "cluster.kubernetes.env.FOO": "1", "target-grid": {}}
    ):
        assert config.get("pipeline.chunk-months") == 6
    assert config.get("pipeline.chunk-months") == 12


def test_every_run_setting_left_none_comes_from_config():
    """target grid, protocol, cubes, chunk months, task months, zarr format, batch size."""
    options = {
        "target-grid.dlat": 2.0,
        "target-grid.dlon": 3.0,
        "pipeline.protocol": "regrid-mask",
        "pipeline.cubes": False,
        "pipeline.chunk-months": 6,
        "pipeline.task-months": 24,
        "store.zarr-format": 2,
        "pipeline.batch-members": 3,
    }
    with config.set_options(**options):
        s = RunSettings.resolve()
    assert s.target.fingerprint() == global_grid(2.0, 3.0, -180.0).fingerprint()
    assert (s.protocol, s.cubes, s.time_chunk, s.task_setting) == ("regrid-mask", False, 6, 24)
    assert (s.zarr_format, s.batch_size) == (2, 3)
    # an argument wins over the config
    with config.set_options(**options):
        s = RunSettings.resolve(chunk_months=4, zarr_format=3, batch_size=7, cubes=True)
    assert (s.time_chunk, s.zarr_format, s.batch_size, s.cubes) == (4, 3, 7, True)


def _time_chunk_of(store) -> int:
    return xr.open_zarr(store, group="cubes/npp")["npp"].encoding["chunks"][1]


RUN = """
    import gridflux
    s = gridflux.run({catalog!r}, {mask!r}, {store!r}, progress=False)
    assert s.ok, s.failed
    print("ok")
"""


def test_yaml_environment_and_set_options_each_reach_run(mini_archive, tmp_path):
    """The store's time chunk is the configured chunk-months, whichever way it was set."""
    cat, mask = mini_archive["catalog"], mini_archive["mask"]
    conf = tmp_path / "dask-config"
    conf.mkdir()
    (conf / "mine.yaml").write_text("gridflux:\n  pipeline:\n    chunk-months: 6\n")
    by_yaml = tmp_path / "yaml.zarr"
    _python(
        RUN.format(catalog=cat, mask=mask, store=str(by_yaml)),
        env={"DASK_CONFIG": str(conf), "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    by_env = tmp_path / "env.zarr"
    _python(
        RUN.format(catalog=cat, mask=mask, store=str(by_env)),
        env={
            "DASK_GRIDFLUX__PIPELINE__CHUNK_MONTHS": "4",
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        },
    )
    by_options = tmp_path / "options.zarr"
    with gridflux.set_options(**{"pipeline.chunk-months": 9}):
        assert gridflux.run(cat, mask, str(by_options), progress=False).ok
    default = tmp_path / "default.zarr"
    assert gridflux.run(cat, mask, str(default), progress=False).ok
    assert [_time_chunk_of(s) for s in (by_yaml, by_env, by_options, default)] == [6, 4, 9, 12]
