# Training and evaluation against `sat train` and `sat eval` (same model, data, seed and threads:
# equal losses, accuracies and checkpoint parameters), the per-step callback, stopping and
# continuing, the GIL, and the other backends.
import json
import sys
import threading
import time

import numpy as np
import pytest

import sat
from conftest import run_cli, run_cli_json

# 256 synthetic training samples in batches of 64: 4 steps per epoch, 2 epochs.
RUN = dict(train_limit=256, test_limit=128, epochs=2, batch=64, seed=5)
STEPS = 8


def assert_same_parameters(a, b):
    for what in ("value", "momentum"):
        pa, pb = a.parameters(what), b.parameters(what)
        assert list(pa) == list(pb)
        for name in pa:
            assert np.array_equal(pa[name], pb[name]), f"{what} of {name}"


def without_timing(history):
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in history]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_run")
    result = run_cli_json("train", "--model", "mlp", "--data", "synthetic", "--train-limit", RUN["train_limit"],
                          "--test-limit", RUN["test_limit"], "--epochs", RUN["epochs"], "--batch", RUN["batch"],
                          "--seed", RUN["seed"], "--threads", 2, "--no-progress", "--out", out, "--json")
    metrics = json.loads((out / "metrics.json").read_text())
    return out, result, metrics


@pytest.fixture(scope="module")
def py_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("py_run")
    model = sat.Model.load("mlp")
    train, test = sat.open_data(model, "synthetic", train_limit=RUN["train_limit"], test_limit=RUN["test_limit"])
    reports = []
    state = sat.train(model, train, test, epochs=RUN["epochs"], batch=RUN["batch"], seed=RUN["seed"],
                      out_dir=str(out), on_step=reports.append)
    return out, model, state, reports, test


def test_training_equals_cli(cli_run, py_run):
    cli_out, cli_result, cli_metrics = cli_run
    py_out, model, state, _, _ = py_run
    assert state.epoch == 2 and state.global_step == STEPS and state.method == "bdwp" and state.nm == "2:8"
    assert without_timing(state.history) == without_timing(cli_metrics["history"])
    assert state.history[-1]["test_acc"] == cli_result["test_accuracy"]
    assert state.history[-1]["test_loss"] == cli_result["test_loss"]
    # The run's own files too, and the final checkpoints hold the same parameters as the model.
    py_metrics = json.loads((py_out / "metrics.json").read_text())
    assert without_timing(py_metrics["history"]) == without_timing(cli_metrics["history"])
    cli_model, cli_state = sat.model_from_checkpoint(str(cli_out / "checkpoint.sat"))
    py_model, _ = sat.model_from_checkpoint(str(py_out / "checkpoint.sat"))
    assert_same_parameters(model, cli_model)
    assert_same_parameters(model, py_model)
    assert cli_state.global_step == STEPS and cli_state.recipe.seed == RUN["seed"]
    # Training happened: the momentum is no longer the initial zero.
    assert all(np.any(m != 0) for m in model.parameters("momentum").values())


def test_callback_once_per_step(py_run):
    _, _, state, reports, _ = py_run
    assert [r.global_step for r in reports] == list(range(1, STEPS + 1))
    assert [(r.epoch, r.step_in_epoch) for r in reports] == [(e, s) for e in (1, 2) for s in range(1, 5)]
    assert all(r.steps_per_epoch == 4 and r.count == 64 and 0 <= r.correct <= 64 for r in reports)
    for epoch, row in zip((1, 2), state.history):
        mine = [r for r in reports if r.epoch == epoch]
        loss_sum = 0.0
        for r in mine:
            loss_sum += r.loss * r.count
        assert loss_sum / 256 == row["train_loss"]
        assert sum(r.correct for r in mine) / 256 == row["train_acc"]
        assert mine[-1].lr == row["lr"]


def test_evaluate_equals_the_runs_test_metrics(py_run):
    _, model, state, _, test = py_run
    result = sat.evaluate(model, test, method="bdwp", batch=RUN["batch"])
    assert result == {"loss": state.history[-1]["test_loss"], "accuracy": state.history[-1]["test_acc"],
                      "samples": RUN["test_limit"]}


def test_evaluate_equals_sat_eval(cli_run):
    # `sat eval` reads Fashion-MNIST's test split.
    ckpt = cli_run[0] / "checkpoint.sat"
    expected = run_cli_json("eval", "--checkpoint", ckpt, "--test-limit", 300, "--threads", 2, "--json")
    model, state = sat.model_from_checkpoint(str(ckpt))
    data = sat.fashion_mnist(model.input, train=False).limit(300)
    got = sat.evaluate(model, data, method=state.method, batch=state.recipe.batch)
    assert got == {k: expected[k] for k in ("loss", "accuracy", "samples")}
    assert expected["samples"] == 300


def test_callback_false_stops_and_state_continues_exactly(tmp_path, py_run):
    _, full_model, _, _, _ = py_run
    model = sat.Model.load("mlp")
    train, test = sat.open_data(model, "synthetic", train_limit=RUN["train_limit"], test_limit=RUN["test_limit"])
    calls = []

    def stop_at_3(report):
        calls.append(report.global_step)
        return report.global_step < 3

    state = sat.train(model, train, test, epochs=RUN["epochs"], batch=RUN["batch"], seed=RUN["seed"],
                      out_dir=str(tmp_path), on_step=stop_at_3)
    assert calls == [1, 2, 3]
    assert (state.epoch, state.step_in_epoch, state.global_step, state.history) == (0, 3, 3, [])
    assert sat.model_from_checkpoint(str(tmp_path / "checkpoint.sat"))[1].global_step == 3
    # Continuing from the returned state ends where the uninterrupted run ended.
    rest = []
    done = sat.train(model, train, test, state=state, on_step=lambda r: rest.append(r.global_step))
    assert rest == list(range(4, STEPS + 1)) and done.global_step == STEPS and done.epoch == 2
    assert_same_parameters(model, full_model)
    with pytest.raises(ValueError, match="only 'epochs' may be given"):
        sat.train(model, train, state=state, lr=0.1)


def test_callback_exception_stops_and_propagates():
    model = sat.Model.load("mlp")
    train = sat.synthetic(model.input, model.classes, 256)
    calls = []

    def boom(report):
        calls.append(report.global_step)
        if report.global_step == 2:
            raise ValueError("boom at step 2")

    with pytest.raises(ValueError, match="boom at step 2"):
        sat.train(model, train, batch=64, epochs=1, on_step=boom)
    assert calls == [1, 2]
    with pytest.raises(TypeError, match="on_step.*callable"):
        sat.train(model, train, on_step=3)


def test_training_errors_are_sat_errors():
    model = sat.Model.load("mlp")
    with pytest.raises(sat.Error, match=r"training data has samples of shape \[1, 28, 28\] but model mlp takes \[784\]"):
        sat.train(model, sat.synthetic((1, 28, 28), 10, 64))
    with pytest.raises(ValueError, match="argument 'schedule'"):
        sat.train(model, sat.synthetic(model.input, 10, 64), schedule="linear")


def test_gil_is_released_while_training(tmp_path):
    # A tiny model trained for many steps in a thread; this thread stops it from Python as soon as
    # the run's folder appears (train() creates it before the first step). The switch interval is
    # made long so that a thread holding the GIL keeps it: held through train(), it would keep
    # this thread out until every step was done.
    spec = '{"name": "tiny", "input": [16], "classes": 8, "nm": "2:8", "layers": [{"type": "linear", "out": 8}]}'
    model = sat.Model.from_json(spec)
    data = sat.synthetic(model.input, model.classes, 64000)
    stop = threading.Event()
    result = {}
    out = tmp_path / "run"

    def run():
        result["state"] = sat.train(model, data, batch=16, epochs=1, out_dir=str(out),
                                    on_step=lambda r: not stop.is_set())

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000)
    try:
        t = threading.Thread(target=run, daemon=True)
        t.start()
        deadline = time.monotonic() + 60
        while not out.is_dir() and time.monotonic() < deadline:
            time.sleep(0.001)
        stop.set()
        t.join(120)
    finally:
        sys.setswitchinterval(interval)
    assert not t.is_alive()
    assert 1 <= result["state"].global_step < 4000 and result["state"].epoch == 0


def test_array_source():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 16))
    y = rng.integers(0, 8, 40)
    data = sat.arrays(x, y, 8)
    assert (len(data), data.classes, data.sample_shape) == (40, 8, (16,))
    bx, by = data.batch([3, 0])
    assert by.tolist() == [y[3], y[0]]
    assert np.allclose(bx, x[[3, 0]], rtol=1 / 128)   # BF16 in training
    spec = '{"name": "tiny", "input": [16], "classes": 8, "nm": "2:8", "layers": [{"type": "linear", "out": 8}]}'
    model = sat.Model.from_json(spec)
    state = sat.train(model, data, data, batch=8, epochs=2, lr=0.1)
    assert len(state.history) == 2 and all(np.isfinite(r["train_loss"]) for r in state.history)
    assert sat.evaluate(model, data, batch=8)["samples"] == 40
    with pytest.raises(ValueError, match=r"arrays: argument 'y': label 8 at index 1"):
        sat.arrays(x[:2], [0, 8], 8)
    with pytest.raises(ValueError, match=r"arrays: argument 'y' must be 1-D with one label per sample"):
        sat.arrays(x, y[:3], 8)


TINY = '{"name": "tiny", "input": [32], "classes": 8, "nm": "2:8", "layers": [{"type": "linear", "out": 16}, {"type": "relu"}, {"type": "linear", "out": 8}]}'


@pytest.mark.parametrize("backend", [b for b in sat.available_backends() if b != "cpu"])
def test_other_backends_equal_cli(cli, tmp_path, backend):
    try:
        sat.Backend(backend)
    except sat.Error as e:
        pytest.skip(f"backend {backend} cannot open here: {e}")
    (tmp_path / "tiny.json").write_text(TINY)
    cli_out = tmp_path / "cli"
    run_cli("train", "--model", tmp_path / "tiny.json", "--backend", backend, "--data", "synthetic",
            "--train-limit", 32, "--test-limit", 16, "--epochs", 1, "--batch", 16, "--threads", 2,
            "--no-progress", "--out", cli_out)
    model = sat.Model.load(str(tmp_path / "tiny.json"))
    train, test = sat.open_data(model, "synthetic", train_limit=32, test_limit=16)
    reports = []
    state = sat.train(model, train, test, backend=backend, epochs=1, batch=16, on_step=reports.append)
    assert [r.global_step for r in reports] == [1, 2]
    cli_metrics = json.loads((cli_out / "metrics.json").read_text())
    assert without_timing(state.history) == without_timing(cli_metrics["history"])
    cli_model, _ = sat.model_from_checkpoint(str(cli_out / "checkpoint.sat"))
    assert_same_parameters(model, cli_model)
