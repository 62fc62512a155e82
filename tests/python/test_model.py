# Models: loading by name, path and text, the summary against `sat summary --json`, parameters as
# arrays, checkpoints, and the list of backends against `sat info`.
import json

import numpy as np
import pytest

import sat
from conftest import ROOT, run_cli, run_cli_json


@pytest.mark.parametrize("name,nm,method", [("lenet5", None, "bdwp"), ("mlp", "1:4", "srste")])
def test_summary_equals_cli(cli, name, nm, method):
    args = ["summary", "--model", name, "--method", method, "--json"] + (["--nm", nm] if nm else [])
    expected = json.loads(run_cli(*args).stdout)
    model = sat.Model.load(name, nm=nm)
    assert model.summary(method) == expected
    assert model.name == name and model.num_params == expected["params"]
    assert list(model.input) == expected["input"] and model.classes == expected["classes"]


def test_load_by_path_and_from_text_agree():
    path = ROOT / "models" / "mlp.json"
    by_name = sat.Model.load("mlp")
    by_path = sat.Model.load(str(path))
    by_text = sat.Model.from_json(path.read_text(), origin="mlp.json")
    assert by_name.source == path.read_text()
    a, b, c = (m.parameters() for m in (by_name, by_path, by_text))
    assert list(a) == list(b) == list(c)
    for key in a:
        assert np.array_equal(a[key], b[key]) and np.array_equal(a[key], c[key])
    assert by_name.nm == "2:8" and sat.Model.load("mlp", nm="dense").nm == "1:1"


def test_model_errors():
    with pytest.raises(sat.Error, match=r"no model named 'nosuch' in .*models:.*lenet5"):
        sat.Model.load("nosuch")
    bad = '{"name": "x", "input": [4], "classes": 2, "layers": [{"type": "linear", "outt": 2}]}'
    with pytest.raises(sat.Error, match=r"mine\.json.*outt"):
        sat.Model.from_json(bad, origin="mine.json")


def test_parameters_get_and_set():
    model = sat.Model.load("mlp")
    params = model.parameters()
    assert list(params) == model.parameter_names()
    assert params[model.parameter_names()[0]].shape == (512, 784)
    assert sum(p.size for p in params.values()) == model.num_params
    name = model.parameter_names()[0]
    w = np.full((512, 784), 0.25, dtype=np.float64)
    model.set_parameter(name, w)
    assert np.array_equal(model.parameter(name), w.astype(np.float32))
    # A copy: changing the returned array leaves the model alone.
    got = model.parameter(name)
    got[:] = 1
    assert (model.parameter(name) == 0.25).all()
    assert (model.parameters("momentum")[name] == 0).all()
    with pytest.raises(ValueError, match=r"set_parameter: argument 'value' is \[784, 512\]"):
        model.set_parameter(name, w.T)
    with pytest.raises(KeyError, match="no parameter 'nope'"):
        model.parameter("nope")
    with pytest.raises(ValueError, match="argument 'what'"):
        model.parameters("velocity")


def test_checkpoint_round_trip(tmp_path):
    model = sat.Model.load("mlp")
    state = sat.train(model, sat.synthetic(model.input, model.classes, 64), batch=32, epochs=1)
    assert state.epoch == 1 and state.global_step == 2
    path = str(tmp_path / "m.sat")
    sat.save_checkpoint(path, model, state)

    fresh = sat.Model.load("mlp")
    assert not np.array_equal(fresh.parameters()["layers[0].weight"], model.parameters()["layers[0].weight"])
    loaded = sat.load_checkpoint(path, fresh)
    rebuilt, rebuilt_state = sat.model_from_checkpoint(path)
    for what in ("value", "momentum"):
        want = model.parameters(what)
        for other in (fresh, rebuilt):
            got = other.parameters(what)
            assert all(np.array_equal(want[k], got[k]) for k in want)
    for s in (loaded, rebuilt_state):
        assert (s.method, s.nm, s.epoch, s.global_step, s.recipe.batch) == ("bdwp", "2:8", 1, 2, 32)
        assert s.history == state.history

    with pytest.raises(sat.Error, match="m.sat"):
        sat.load_checkpoint(path, sat.Model.load("lenet5"))
    (tmp_path / "bad.sat").write_bytes(b"not a checkpoint")
    with pytest.raises(sat.Error, match="bad.sat"):
        sat.model_from_checkpoint(str(tmp_path / "bad.sat"))


def test_backends_match_sat_info(cli):
    info = run_cli("info").stdout
    names = [name for name, _ in sat.backends()]
    assert names[0] == "cpu" and "cpu" in sat.available_backends()
    for name, status in sat.backends():
        assert name in info
        assert status.startswith("available") == (name in sat.available_backends())
    assert sat.Backend("cpu").name == "cpu" and sat.Backend("cpu").last_counters() is None
