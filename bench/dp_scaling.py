#!/usr/bin/python3
"""Data-parallel scaling of `sat train`: img/s of one process against `mpirun -np P` processes,
and the scaling efficiency, in one run (docs/distributed.md). It prints and never passes or fails.

Usage: bench/dp_scaling.py [--sat build/sat] [--backend cpu|cuda] [--models lenet5,resnet18,vit_tiny]
                           [--methods bdwp,dense] [--ranks 1,2] [--threads 1] [--batch 64]
                           [--samples 1024] [--repeats 2]

On the CPU --batch is the global batch; on cuda (one GPU per rank: --ranks 1,2,4,8 --batch 512
--per-rank) it may be per rank, as GPU scaling is usually quoted.

Each figure is the training steps' wall time of one epoch of --samples synthetic samples (the
epoch's own timer, which leaves out start-up and evaluation), the fastest of --repeats runs; runs
are interleaved per repeat since the machine is shared. Every rank runs --threads threads, so P
ranks use P times the cores of one: efficiency = img/s(P) / (P * img/s(1)). The row "1 x P
threads" is the other way to spend the same cores, for comparison.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMPI_MCA_btl_vader_single_copy_mechanism": "none"}


def run(sat, backend, model, method, ranks, threads, batch, samples, out):
    cmd = [sat, "train", "--backend", backend, "--model", model, "--method", method, "--data", "synthetic", "--epochs", "1",
           "--batch", str(batch), "--train-limit", str(samples), "--test-limit", str(batch),
           "--threads", str(threads), "--no-progress", "--json", "--force", "--out", out]
    if ranks > 1:
        mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
        if not mpirun:
            sys.exit("dp_scaling: no mpirun on PATH (scripts/install-deps.sh installs openmpi-bin)")
        cmd = [mpirun, "-np", str(ranks)] + cmd
    env = dict(os.environ, **MPI_ENV)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"dp_scaling: {' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    result = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")][-1]
    return samples / result["train_seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sat", default=os.path.join(ROOT, "build", "sat"))
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--per-rank", action="store_true", help="--batch and --samples per rank (weak scaling)")
    ap.add_argument("--models", default="lenet5,resnet18,vit_tiny")
    ap.add_argument("--methods", default="bdwp,dense")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    ranks = [int(r) for r in a.ranks.split(",")]
    scope = "per rank" if a.per_rank else "in all"
    print(f"# sat train --backend {a.backend}, synthetic data, {a.samples} samples per epoch and batch {a.batch} "
          f"{scope}, {a.threads} thread(s) per rank, {os.cpu_count()} cores; fastest of {a.repeats}")
    print(f"{'model':10} {'method':6} {'ranks':>14} {'img/s':>9} {'speed-up':>9} {'efficiency':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in a.models.split(","):
            for method in a.methods.split(","):
                configs = [(r, a.threads) for r in ranks]
                if max(ranks) > 1 and a.backend == "cpu":
                    configs.append((1, a.threads * max(ranks)))
                best = {}
                for _ in range(a.repeats):
                    for (r, t) in configs:
                        k = r if a.per_rank else 1
                        ips = run(a.sat, a.backend, model, method, r, t, a.batch * k, a.samples * k,
                                  os.path.join(tmp, "run"))
                        best[(r, t)] = max(best.get((r, t), 0), ips)
                base = best[(1, a.threads)]
                for (r, t) in configs:
                    label = f"{r} x {t} thread" + ("s" if t > 1 else "")
                    ips = best[(r, t)]
                    eff = f"{100 * ips / (r * base):.0f}%" if t == a.threads else "-"
                    print(f"{model:10} {method:6} {label:>14} {ips:9.0f} {ips / base:8.2f}x {eff:>11}")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
