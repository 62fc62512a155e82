# Shared by the tests of the Python module: the module itself (PYTHONPATH=build/python, as ctest
# sets it), the `sat` CLI they compare against ($SAT_CLI, else build/sat) and a helper to run it.
import json
import os
import pathlib
import subprocess

import pytest

import sat

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAT_CLI = os.environ.get("SAT_CLI") or str(ROOT / "build" / "sat")

# The CLI and the module both run the CPU kernels on two threads (the CI machines have two cores);
# results do not depend on it, but the comparison should not rest on that.
THREADS = 2
sat.set_threads(THREADS)


def run_cli(*args, check=True):
    """Runs `sat ARGS...`; returns the CompletedProcess (text stdout/stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    r = subprocess.run([SAT_CLI, *map(str, args)], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"sat {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
    return r


def run_cli_json(*args):
    return json.loads(run_cli(*args).stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def cli():
    if not os.access(SAT_CLI, os.X_OK):
        pytest.fail(f"the sat CLI is not at {SAT_CLI} (set SAT_CLI or build target sat_cli)")
    return run_cli
