#!/usr/bin/python3
"""Times one training epoch on Fashion-MNIST: SAT's CPU backend (dense and BDWP 2:8) side by side
with PyTorch (dense, CPU) training the same models, in one run, and prints the ratios.

Usage: bench/epoch_bench.py [--sat build/sat] [--models mlp,lenet5] [--repeats 1] [--threads 2]
                            [--simd avx512|avx2|portable] [--limit N]

PyTorch builds each model from the same models/<name>.json SAT reads, so the architectures cannot
drift apart. Each timed figure is the wall time of the training steps of one epoch (data already in
memory, no evaluation). Runs are interleaved per repeat and the fastest repeat is reported, since
the machine is shared. It prints the CPU model, the SIMD path SAT's kernels run (`sat info`; --simd
restricts it through SAT_SIMD, e.g. to time the AVX2 path on an AVX-512 machine; avx2 also caps
oneDNN and OpenBLAS, for SAT's dense layers and for PyTorch) and the figures;
it never passes or fails.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("SAT_DATA_DIR", "/usr/share/datasets/fashion-mnist")


def load_idx(images, labels):
    with gzip.open(images, "rb") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(labels, "rb") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x, y


def torch_model(desc):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Residual(nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + self.shortcut(x)

    # ViT's layers as SAT defines them (host/src/layers/): patches by a strided convolution plus a
    # learned position embedding; attention with four separate projections (each an nn.Linear, so
    # bf16-masked prunes all four, as SAT does) around PyTorch's fused scaled-dot-product kernel.
    class PatchEmbed(nn.Module):
        def __init__(self, c, patch, dim, tokens):
            super().__init__()
            self.proj = nn.Conv2d(c, dim, patch, patch)
            self.pos = nn.Parameter(torch.zeros(tokens, dim))

        def forward(self, x):
            return self.proj(x).flatten(2).transpose(1, 2) + self.pos

    class Attention(nn.Module):
        def __init__(self, d, heads, bias):
            super().__init__()
            self.heads = heads
            self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=bias) for _ in range(4))

        def forward(self, x):
            b, t, d = x.shape

            def split(z):
                return z.view(b, t, self.heads, d // self.heads).transpose(1, 2)

            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            if hasattr(F, "scaled_dot_product_attention"):   # PyTorch >= 2.0
                o = F.scaled_dot_product_attention(q, k, v)
            else:
                o = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1) @ v
            return self.o(o.transpose(1, 2).reshape(b, t, d))

    class TokenMean(nn.Module):
        def forward(self, x):
            return x.mean(1)

    def build(layers, shape):
        mods = []
        for l in layers:
            t = l["type"]
            if t == "linear":
                mods.append(nn.Linear(shape[-1], l["out"], bias=l.get("bias", True)))
                shape = shape[:-1] + [l["out"]]
            elif t == "conv2d":
                k, s, p = l["kernel"], l.get("stride", 1), l.get("padding", 0)
                mods.append(nn.Conv2d(shape[0], l["out"], k, s, p, bias=l.get("bias", True)))
                shape = [l["out"], (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]
            elif t == "relu":
                mods.append(nn.ReLU())
            elif t in ("maxpool2d", "avgpool2d"):
                k, s, p = l["kernel"], l.get("stride", l["kernel"]), l.get("padding", 0)
                mods.append((nn.MaxPool2d if t == "maxpool2d" else nn.AvgPool2d)(k, s, p))
                shape = [shape[0], (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]
            elif t == "flatten":
                mods.append(nn.Flatten())
                shape = [int(np.prod(shape))]
            elif t == "batchnorm2d":
                mods.append(nn.BatchNorm2d(shape[0]))
            elif t == "global_avgpool":
                mods.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
                shape = [shape[0]]
            elif t == "patch_embed":
                p, dim = l["patch"], l["dim"]
                tokens = (shape[1] // p) * (shape[2] // p)
                mods.append(PatchEmbed(shape[0], p, dim, tokens))
                shape = [tokens, dim]
            elif t == "layernorm":
                mods.append(nn.LayerNorm(shape[-1], eps=l.get("eps", 1e-5)))
            elif t == "attention":
                mods.append(Attention(shape[-1], l["heads"], l.get("bias", True)))
            elif t == "gelu":
                mods.append(nn.GELU(approximate=l.get("approximate", "none")))
            elif t == "token_mean":
                mods.append(TokenMean())
                shape = [shape[-1]]
            elif t == "residual":
                body, out = build(l["body"], shape)
                short, _ = build(l.get("shortcut", []), shape)
                mods.append(Residual(body, short))
                shape = out
            else:
                raise SystemExit(f"epoch_bench: layer type {t} has no PyTorch mapping here")
        return nn.Sequential(*mods), shape

    return build(desc["layers"], list(desc["input"]))[0]


def torch_epoch(name, x, y, threads):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    desc = json.load(open(os.path.join(ROOT, "models", name + ".json")))
    r = desc.get("recipe", {})
    batch, lr = r.get("batch", 128), r.get("lr", 0.05)
    model = torch_model(desc)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=r.get("momentum", 0.9),
                          weight_decay=r.get("weight_decay", 5e-4))
    xt = torch.from_numpy(((x.astype(np.float32) / 255 - 0.2860) / 0.3530))
    xt = xt.reshape([-1] + desc["input"])
    yt = torch.from_numpy(y.astype(np.int64))
    order = torch.randperm(len(yt))
    loss_fn = torch.nn.CrossEntropyLoss()
    steps = (len(yt) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    t0 = time.perf_counter()
    for i in range(steps):
        idx = order[i * batch:(i + 1) * batch]
        opt.zero_grad()
        loss = loss_fn(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
        sched.step()
    return time.perf_counter() - t0


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def torch_blas():
    """The BLAS PyTorch's dense products call: MKL when it was built with it, otherwise the
    system's libblas.so.3 (Debian's PyTorch; the reference BLAS there is several times slower than
    OpenBLAS, which install-deps.sh installs)."""
    import torch
    if torch.backends.mkl.is_available():
        return "MKL"
    lib = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
    return os.path.realpath(lib) if os.path.exists(lib) else "unknown"


def sat_simd_path(sat):
    out = subprocess.run([sat, "info"], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "SIMD path" in line:
            return line.split("SIMD path", 1)[1].strip()
    return "unknown (this sat predates `sat info`'s SIMD line)"


def sat_epoch(sat, name, method, threads, limit):
    out = subprocess.run([sat, "train", "--model", name, "--method", method, "--nm", "2:8",
                          "--epochs", "1", "--test-limit", "1000", "--threads", str(threads),
                          "--train-limit", str(limit),
                          "--no-progress", "--json", "--force", "--out", f"/tmp/sat-epoch-bench-{name}-{method}"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["train_seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sat", default=os.path.join(ROOT, "build", "sat"))
    ap.add_argument("--models", default="mlp,lenet5")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--simd", choices=("avx512", "avx2", "portable"),
                    help="restrict SAT's kernels to this SIMD path (sets SAT_SIMD); avx2 also caps "
                         "oneDNN (SAT's dense layers, PyTorch's convolutions) and OpenBLAS at AVX2, "
                         "so that both sides run as on a CPU without AVX-512")
    ap.add_argument("--limit", type=int, default=60000,
                    help="training images per epoch (default all 60000; fewer for a quick look)")
    a = ap.parse_args()
    caps = {}
    if a.simd:
        caps["SAT_SIMD"] = a.simd
        if a.simd == "avx2":   # oneDNN reads either name; OpenBLAS picks its kernels when loaded
            caps.update(ONEDNN_MAX_CPU_ISA="AVX2", DNNL_MAX_CPU_ISA="AVX2", OPENBLAS_CORETYPE="Haswell")
    os.environ.update(caps)   # before torch loads, and inherited by the sat runs
    import torch

    x, y = load_idx(os.path.join(DATA, "train-images-idx3-ubyte.gz"),
                    os.path.join(DATA, "train-labels-idx1-ubyte.gz"))
    x, y = x[:a.limit], y[:a.limit]
    print(f"epoch benchmark: {len(y)} training images, {a.threads} threads, "
          f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads by default, BLAS {torch_blas()}), "
          f"best of {a.repeats}")
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); SAT kernels: SIMD path "
          f"{sat_simd_path(a.sat)}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}"
          + "".join(f"; {k}={v}" for k, v in caps.items() if k != "SAT_SIMD"))
    rows = []
    for name in a.models.split(","):
        best = {}
        for _ in range(a.repeats):
            for key, fn in (("sat dense", lambda: sat_epoch(a.sat, name, "dense", a.threads, len(y))),
                            ("sat bdwp 2:8", lambda: sat_epoch(a.sat, name, "bdwp", a.threads, len(y))),
                            ("torch dense", lambda: torch_epoch(name, x, y, a.threads))):
                t = fn()
                best[key] = min(best.get(key, t), t)
        rows.append((name, best))
    print(f"\n{'model':<8} {'sat dense s':>12} {'sat bdwp s':>11} {'torch s':>9} "
          f"{'bdwp/torch':>11} {'dense/torch':>12} {'dense/bdwp':>11}")
    for name, b in rows:
        print(f"{name:<8} {b['sat dense']:12.2f} {b['sat bdwp 2:8']:11.2f} {b['torch dense']:9.2f} "
              f"{b['sat bdwp 2:8'] / b['torch dense']:11.2f} {b['sat dense'] / b['torch dense']:12.2f} "
              f"{b['sat dense'] / b['sat bdwp 2:8']:11.2f}")
    print("\nbdwp/torch <= 1.00 means SAT's BDWP 2:8 epoch is at most PyTorch's dense epoch time.")


if __name__ == "__main__":
    sys.exit(main())
