# The primitives against `sat op` on the same .npy files: equal bit for bit.
import numpy as np
import pytest

import sat
from conftest import run_cli


def npy(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return path


@pytest.mark.parametrize("nm,axis", [("2:8", "k"), ("2:8", "cout"), ("1:4", "k"), ("4:8", "cout"),
                                     ("dense", "k")])
def test_prune_equals_cli(cli, tmp_path, nm, axis):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((16, 24)).astype(np.float32)
    w[0, :8] = 0.5          # ties: the lower index is kept
    w[:8, 1] = -0.25
    cli("op", "prune", "--nm", nm, "--axis", axis, "--in", npy(tmp_path, "w.npy", w), "--out", tmp_path / "p.npy")
    expected = np.load(tmp_path / "p.npy")
    got = sat.prune(w, nm, axis=axis)
    assert got.dtype == np.float32 and got.shape == w.shape
    assert np.array_equal(got, expected)
    if nm != "dense":
        n, m = map(int, nm.split(":"))
        groups = (got != 0).reshape(16, 24 // m, m) if axis == "k" else (got != 0).T.reshape(24, 16 // m, m)
        assert (groups.sum(axis=2) == n).all()


@pytest.mark.parametrize("mode,nm", [("ff", "2:8"), ("bp", "2:8"), ("ff", "dense"), ("wu", None)])
def test_gemm_equals_cli(cli, tmp_path, mode, nm):
    rng = np.random.default_rng(3)
    batch, cout, k = 8, 16, 32
    a = rng.standard_normal((batch, k if mode == "ff" else cout)).astype(np.float32)
    b = rng.standard_normal((batch, k) if mode == "wu" else (cout, k)).astype(np.float32)
    args = ["op", "gemm", "--mode", mode, "--a", npy(tmp_path, "a.npy", a), "--b", npy(tmp_path, "b.npy", b),
            "--out", tmp_path / "c.npy"]
    if nm:
        args += ["--nm", nm]
    cli(*args)
    expected = np.load(tmp_path / "c.npy")
    got = sat.gemm(a, b, mode, nm)
    assert got.shape == expected.shape and np.array_equal(got, expected)
    # A sat.Backend object gives the same as the name.
    assert np.array_equal(sat.gemm(a, b, mode, nm, backend=sat.Backend("cpu")), expected)


def bf16(v):
    """Rounds float32 to the nearest BF16 value, ties to even (the products' input rounding)."""
    u = v.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def test_gemm_pruning_changes_the_product():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 16)).astype(np.float32)
    w = rng.standard_normal((8, 16)).astype(np.float32)
    dense = sat.gemm(x, w, "ff", "dense")
    sparse = sat.gemm(x, w, "ff", "2:8")
    wp = sat.prune(w, "2:8", axis="k")
    assert np.allclose(sparse, bf16(x) @ bf16(wp).T, rtol=1e-5, atol=1e-5)
    assert not np.allclose(dense, sparse)


def test_layer_equals_cli(cli, tmp_path):
    rng = np.random.default_rng(5)
    spec = '{"type": "conv2d", "out": 16, "kernel": 3, "padding": 1}'
    x = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
    dy = rng.standard_normal((2, 16, 6, 6)).astype(np.float32)
    cli("op", "layer", "--spec", spec, "--input-shape", "8,6,6", "--method", "bdwp", "--nm", "2:8",
        "--x", npy(tmp_path, "x.npy", x), "--dy", npy(tmp_path, "dy.npy", dy), "--out", tmp_path / "out")
    got = sat.layer(spec, (8, 6, 6), x, dy, method="bdwp", nm="2:8")
    names = {p.stem for p in (tmp_path / "out").glob("*.npy")}
    assert set(got) == names and {"y", "dx", "grad_weight"} <= names
    for name in names:
        assert np.array_equal(got[name], np.load(tmp_path / "out" / f"{name}.npy")), name


def test_layer_with_params_equals_cli(cli, tmp_path):
    rng = np.random.default_rng(6)
    spec = {"type": "linear", "out": 16}
    x = rng.standard_normal((4, 32)).astype(np.float32)
    dy = rng.standard_normal((4, 16)).astype(np.float32)
    params = {"weight": rng.standard_normal((16, 32)).astype(np.float32),
              "bias": rng.standard_normal(16).astype(np.float32)}
    (tmp_path / "params").mkdir()
    for name, value in params.items():
        np.save(tmp_path / "params" / f"{name}.npy", value)
    cli("op", "layer", "--spec", '{"type": "linear", "out": 16}', "--input-shape", "32", "--method", "srste",
        "--nm", "2:8", "--x", npy(tmp_path, "x.npy", x), "--dy", npy(tmp_path, "dy.npy", dy),
        "--params", tmp_path / "params", "--out", tmp_path / "out")
    got = sat.layer(spec, [32], x, dy, method="srste", nm="2:8", params=params)
    for name in ("y", "dx", "grad_weight", "grad_bias"):
        assert np.array_equal(got[name], np.load(tmp_path / "out" / f"{name}.npy")), name
    # The given weight was used: the seed-1 initialisation gives another output.
    assert not np.array_equal(sat.layer(spec, [32], x, dy, method="srste", nm="2:8")["y"], got["y"])


def test_layer_warns_where_nm_does_not_apply():
    # Cout 10 does not divide by 8: the CLI notes it on stderr, the module warns; the layer runs.
    x = np.ones((2, 16), dtype=np.float32)
    dy = np.ones((2, 10), dtype=np.float32)
    with pytest.warns(UserWarning, match=r"op\.weight: N:M does not apply .*it runs dense"):
        out = sat.layer({"type": "linear", "out": 10}, [16], x, dy, method="bdwp", nm="2:8")
    assert out["y"].shape == (2, 10) and out["grad_weight"].shape == (10, 16)
