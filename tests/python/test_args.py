# Arguments: array-likes are converted to float32 C order like `sat op` converts .npy files, and
# what cannot be converted is refused with an error naming the function and the argument; the
# library's own errors come as sat.Error with the library's message, the one the CLI prints.
import numpy as np
import pytest

import sat
from conftest import run_cli


W = np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32)


def test_error_is_a_runtime_error():
    assert issubclass(sat.Error, RuntimeError)


@pytest.mark.parametrize("convert", [
    lambda w: w.astype(np.float64),                 # another float dtype
    lambda w: np.asfortranarray(w),                 # Fortran order
    lambda w: np.ascontiguousarray(np.repeat(w, 2, axis=1))[:, ::2],   # strided view
    lambda w: w.tolist(),                           # nested lists
])
def test_prune_converts_array_likes(convert):
    expected = sat.prune(W, "2:8")
    w = convert(W)
    got = sat.prune(w, "2:8")
    assert got.flags.c_contiguous and got.dtype == np.float32
    assert np.array_equal(got, expected)


def test_integer_arrays_convert():
    w = np.arange(-64, 64, dtype=np.int64).reshape(8, 16)
    assert np.array_equal(sat.prune(w, "2:8"), sat.prune(w.astype(np.float32), "2:8"))


@pytest.mark.parametrize("w,kind,words", [
    (np.ones((8, 16), dtype=bool), TypeError, "dtype bool"),
    (np.ones((8, 16), dtype=np.complex64), TypeError, "dtype complex64"),
    ("weights", TypeError, "dtype <U7"),
    (np.ones(16, dtype=np.float32), ValueError, "must be 2-D, got a 1-D array of shape (16,)"),
    (np.ones((2, 8, 16), dtype=np.float32), ValueError, "must be 2-D, got a 3-D array of shape (2, 8, 16)"),
])
def test_prune_refuses_naming_the_argument(w, kind, words):
    with pytest.raises(kind) as e:
        sat.prune(w, "2:8")
    assert "prune: argument 'w'" in str(e.value) and words in str(e.value)


def test_gemm_names_the_bad_operand():
    with pytest.raises(ValueError, match=r"gemm: argument 'b' must be 2-D"):
        sat.gemm(np.ones((4, 16)), np.ones(16), "ff", "2:8")
    with pytest.raises(ValueError, match=r"argument 'mode'.*'xx'"):
        sat.gemm(np.ones((4, 16)), np.ones((8, 16)), "xx", "2:8")
    with pytest.raises(ValueError, match=r"argument 'nm' is required for mode ff"):
        sat.gemm(np.ones((4, 16)), np.ones((8, 16)), "ff")
    with pytest.raises(ValueError, match=r"argument 'axis' must be 'k' or 'cout', got 'rows'"):
        sat.prune(W, "2:8", axis="rows")


def test_library_errors_carry_the_cli_message(cli, tmp_path):
    # Shapes that do not match: the library's message, printed by the CLI as "error: <message>".
    a = np.ones((4, 16), dtype=np.float32)
    b = np.ones((8, 24), dtype=np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    r = run_cli("op", "gemm", "--mode", "ff", "--nm", "2:8", "--a", tmp_path / "a.npy", "--b", tmp_path / "b.npy",
                "--out", tmp_path / "c.npy", check=False)
    assert r.returncode != 0
    with pytest.raises(sat.Error) as e:
        sat.gemm(a, b, "ff", "2:8")
    assert r.stderr.strip() == f"error: {e.value}"
    assert "[8, 24]" in str(e.value)


def test_bad_nm_and_indivisible_shape_raise_sat_error():
    with pytest.raises(sat.Error, match="3:7"):
        sat.prune(W, "3:7")
    with pytest.raises(sat.Error, match=r"N:M 2:8 along K: K = 12 does not divide by M = 8"):
        sat.prune(np.ones((8, 12)), "2:8")
    with pytest.raises(sat.Error, match="unknown backend .nosuch."):
        sat.Backend("nosuch")
