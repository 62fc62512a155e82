#!/usr/bin/python3
"""Cross-checks `sat op` against PyTorch.

usage: /usr/bin/python3 tests/torch_crosscheck.py path/to/sat

Runs `sat op prune`, `sat op gemm` (ff, bp, wu at 2:8, 2:4, 1:8, 4:8 and dense) and `sat op layer`
(BDWP 2:8 linear and conv2d) on random data and compares every result with a reference PyTorch
computes independently: its own N:M mask (a stable sort by magnitude, so ties go to the lower
index, on the FP32 weights), its own BF16 rounding (x.bfloat16().float()), and autograd for the
layer gradients:
  y  = op(x, prune_k(W)) + b       (F.linear / F.conv2d, the forward form W_F)
  dx = autograd of op(x, prune_cout(W)) with dY          (the backward form W_B)
  dW, db = autograd of op(x, W) + b with dY              (dense weight update)
Masks must match exactly. Prints a summary; exits 1 on any mismatch, 77 when torch is missing.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # ctest treats 77 as skipped (SKIP_RETURN_CODE)
    print(f"SKIPPED: PyTorch/NumPy not importable by {sys.executable}: {e}")
    sys.exit(77)

torch.manual_seed(1234)
SAT = None
TMP = None
results = []          # (name, ok, detail)


def run_sat(*args):
    cmd = [SAT, "op", *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def path(name):
    return os.path.join(TMP, name)


def save(name, t):
    np.save(path(name), t.detach().cpu().numpy().astype(np.float32))
    return path(name)


def load(p):
    return torch.from_numpy(np.load(p)).double()


def bf16(t):
    """What the SAT path stores: round to nearest even BF16 (its FP32 value)."""
    return t.float().bfloat16().float()


def prune_k(w, n, m):
    """N:M along the last axis of w [Cout][K]: keep the n largest |w| of each group of m, ties to
    the lower index (a stable descending sort keeps equal keys in index order)."""
    cout, k = w.shape
    g = w.reshape(cout, k // m, m)
    order = torch.sort(g.abs(), dim=-1, descending=True, stable=True).indices
    mask = torch.zeros_like(g, dtype=torch.bool)
    mask.scatter_(-1, order[..., :n], True)
    return (g * mask).reshape(cout, k), mask.reshape(cout, k)


def prune_cout(w, n, m):
    wt, mask = prune_k(w.t().contiguous(), n, m)
    return wt.t().contiguous(), mask.t().contiguous()


def parse_nm(text):
    if text == "dense":
        return None
    n, m = map(int, text.split(":"))
    return (n, m)


def record(name, ok, detail=""):
    results.append((name, ok, detail))
    print(f"  {'ok  ' if ok else 'FAIL'} {name}{(': ' + detail) if detail else ''}")


def compare(name, got, ref, scale, rel_out):
    """|got - ref| <= rel_out * |ref| + 1e-5 * scale, where scale is the sum of |terms| of each
    output. rel_out is the rounding of the stored result: 0 for FP32 outputs (gemm, dW, db), and
    2^-8 for y and dx, which the layer stores as BF16: BF16 keeps 8 significant bits, so round to
    nearest is off by up to 2^-8 relative. The second term covers FP32 accumulation in another
    order than the reference's double sum (products of BF16 values are exact in FP32, and a sum of
    up to ~600 terms loses well under 1e-5 of its absolute sum)."""
    if tuple(got.shape) != tuple(ref.shape):
        record(name, False, f"shape {tuple(got.shape)} vs reference {tuple(ref.shape)}")
        return
    tol = rel_out * ref.abs() + 1e-5 * scale + 1e-12
    err = (got - ref).abs()
    bad = (err > tol) | ~torch.isfinite(got)
    worst = (err / tol).max().item()
    if bad.any():
        i = bad.nonzero()[0].tolist()
        record(name, False, f"{int(bad.sum())} of {got.numel()} outside tolerance; first at {i}: "
                            f"got {got[tuple(i)].item():.7g}, reference {ref[tuple(i)].item():.7g}")
    else:
        record(name, True, f"max |err| {err.max().item():.2e}, worst err/tol {worst:.2f}")


def check_prune(w, nm_text, axis, label):
    n, m = parse_nm(nm_text)
    out = path("wp.npy")
    run_sat("prune", "--nm", nm_text, "--axis", axis, "--in", save("w.npy", w), "--out", out)
    got = torch.from_numpy(np.load(out))
    ref, mask = (prune_k if axis == "k" else prune_cout)(w.float(), n, m)
    same_zeros = torch.equal(got == 0, ref == 0)
    same_values = torch.equal(got, ref.float())
    record(f"prune {nm_text} axis {axis} ({label}): mask and values",
           same_zeros and same_values,
           "" if same_zeros and same_values else
           f"{int(((got == 0) != (ref == 0)).sum())} entries differ in the zero pattern")


def check_gemm(nm_text, label, B=16, K=64, cout=32, ties=False):
    nm = parse_nm(nm_text)
    x = torch.randn(B, K)
    w = torch.randn(cout, K)
    if ties:                                   # a coarse grid: many equal magnitudes in a group
        w = torch.round(w * 2) / 2
    dy = torch.randn(B, cout)
    fx, fw, fdy, fc = save("x.npy", x), save("w.npy", w), save("dy.npy", dy), path("c.npy")

    wf = bf16(prune_k(w, *nm)[0] if nm else w).double()
    wb = bf16(prune_cout(w, *nm)[0] if nm else w).double()
    xb, dyb = bf16(x).double(), bf16(dy).double()

    run_sat("gemm", "--mode", "ff", "--nm", nm_text, "--a", fx, "--b", fw, "--out", fc)
    compare(f"gemm ff {nm_text} ({label})", load(fc), xb @ wf.t(), xb.abs() @ wf.abs().t(), 0)
    run_sat("gemm", "--mode", "bp", "--nm", nm_text, "--a", fdy, "--b", fw, "--out", fc)
    compare(f"gemm bp {nm_text} ({label})", load(fc), dyb @ wb, dyb.abs() @ wb.abs(), 0)
    run_sat("gemm", "--mode", "wu", "--nm", nm_text, "--a", fdy, "--b", fx, "--out", fc)
    compare(f"gemm wu {nm_text} ({label})", load(fc), dyb.t() @ xb, dyb.abs().t() @ xb.abs(), 0)


def check_layer(label, spec, input_shape, x, w, b, op, n, m):
    """`op(x, weight4d_or_2d, bias)` is F.linear or a partial of F.conv2d; w is [Cout][K]."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label)
    params = path(f"{slug}-params")
    out = path(f"{slug}-out")
    os.makedirs(params, exist_ok=True)
    # The layer's weight Param is [Cout][K] (K flattened (cin, kh, kw), as weight.reshape(Cout, -1)).
    save(os.path.join(params, "weight.npy"), w)
    save(os.path.join(params, "bias.npy"), b)
    wshape = (w.shape[0],) + tuple(input_shape[:1]) + spec_kernel(spec)

    xb = bf16(x).double().requires_grad_(True)
    wf = bf16(prune_k(w, n, m)[0]).double().reshape(wshape)
    wb = bf16(prune_cout(w, n, m)[0]).double().reshape(wshape)
    wd = w.double().reshape(wshape).requires_grad_(True)
    bd = b.double().requires_grad_(True)

    y_ref = op(xb.detach(), wf, bd.detach())
    dy = torch.randn(y_ref.shape)
    dyb = bf16(dy).double()
    fx, fdy = save(f"{slug}-x.npy", x), save(f"{slug}-dy.npy", dy)
    run_sat("layer", "--spec", json.dumps(spec), "--input-shape", ",".join(map(str, input_shape)),
            "--method", "bdwp", "--nm", f"{n}:{m}", "--x", fx, "--dy", fdy, "--params", params,
            "--out", out)

    op(xb, wb, None).backward(dyb)              # dx through the backward form W_B
    dx_ref = xb.grad
    (op(xb.detach(), wd, None) + bias_term(bd, y_ref)).backward(dyb)   # dW, db: dense
    ax = xb.detach().abs()
    compare(f"layer {label}: y", load(os.path.join(out, "y.npy")), y_ref,
            op(ax, wf.abs(), bd.detach().abs()), 2.0 ** -8)
    xg = ax.clone().requires_grad_(True)
    op(xg, wb.abs(), None).backward(dyb.abs())
    compare(f"layer {label}: dx", load(os.path.join(out, "dx.npy")), dx_ref, xg.grad, 2.0 ** -8)
    wg = wd.detach().abs().clone().requires_grad_(True)
    op(ax, wg, None).backward(dyb.abs())
    compare(f"layer {label}: dW", load(os.path.join(out, "grad_weight.npy")),
            wd.grad.reshape(w.shape), wg.grad.reshape(w.shape), 0)
    db_scale = dyb.abs().sum(dim=[d for d in range(dyb.dim()) if d != 1])
    compare(f"layer {label}: db", load(os.path.join(out, "grad_bias.npy")), bd.grad, db_scale, 0)


def spec_kernel(spec):
    return (spec["kernel"], spec["kernel"]) if spec["type"] == "conv2d" else ()


def bias_term(b, y):
    """b broadcast over y's channel axis (1)."""
    return b.reshape((1, -1) + (1,) * (y.dim() - 2))


def check_linear():
    B, cin, cout = 16, 64, 32
    x = torch.randn(B, cin)
    w = torch.randn(cout, cin) / cin ** 0.5
    b = torch.randn(cout) * 0.1
    check_layer("linear 64->32 bdwp 2:8", {"type": "linear", "out": cout}, [cin], x, w, b,
                lambda x, w, b: F.linear(x, w, b), 2, 8)


def check_conv(stride):
    B, cin, cout, k, hw = 4, 16, 32, 3, 8
    x = torch.randn(B, cin, hw, hw)
    w = torch.randn(cout, cin * k * k) / (cin * k * k) ** 0.5
    b = torch.randn(cout) * 0.1
    spec = {"type": "conv2d", "out": cout, "kernel": k, "stride": stride, "padding": 1}
    check_layer(f"conv2d 16->32 3x3 s{stride} p1 bdwp 2:8", spec, [cin, hw, hw], x, w, b,
                lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=1), 2, 8)


def guarded(name, fn, *args):
    try:
        fn(*args)
    except Exception as e:    # a failed run is a failed check, and the others still run
        record(name, False, str(e))


def main():
    global SAT, TMP
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2])
        return 2
    SAT = os.path.abspath(sys.argv[1])
    print(f"torch {torch.__version__}, numpy {np.__version__}, sat {SAT}")
    with tempfile.TemporaryDirectory(prefix="sat-torch-") as tmp:
        TMP = tmp
        for nm_text in ["2:8", "2:4", "1:8", "4:8"]:
            for label, ties in [("random", False), ("ties", True)]:
                w = torch.randn(32, 64)
                if ties:
                    w = torch.round(w * 2) / 2
                for axis in ["k", "cout"]:
                    guarded(f"prune {nm_text} {axis} ({label})", check_prune, w, nm_text, axis, label)
        for nm_text in ["2:8", "2:4", "1:8", "4:8", "dense"]:
            guarded(f"gemm {nm_text}", check_gemm, nm_text, "random")
            guarded(f"gemm {nm_text} ties", check_gemm, nm_text, "ties", 16, 64, 32, True)
        guarded("gemm odd sizes", check_gemm, "2:8", "B 3, K 24, Cout 40", 3, 24, 40)
        guarded("layer linear", check_linear)
        guarded("layer conv2d s1", check_conv, 1)
        guarded("layer conv2d s2", check_conv, 2)

    failed = [r for r in results if not r[1]]
    print(f"\ntorch cross-check: {len(results) - len(failed)} of {len(results)} checks passed")
    for name, _, detail in failed:
        print(f"FAILED: {name}: {detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
