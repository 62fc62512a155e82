#!/usr/bin/env python3
"""PyTorch side of the whole-model comparison in docs/performance.md ("CUDA on the H200"): one dense
training step (forward, loss, backward, SGD momentum + weight decay) of a model built from the same
models/<name>.json as SAT (bench/epoch_bench.py's builder), on the GPU, in FP32 and under BF16
autocast. Prints the mean wall-clock time per step; never passes or fails.

    bench/cuda_torch_step.py --model models/resnet18.json --batch 128 --steps 20
    bench/cuda_torch_step.py --model models/mlp.json --batch 512 --modes bf16-autocast,bf16-masked

Mode bf16-masked is the same bf16 autocast step with the model's N:M masks (top-N magnitudes of
each group of M along K, ties to the lower index, the rule of docs/nm-format.md) selected again
from the weights at every step and applied in FF (a weight parametrization: w * mask), on the
layers where SAT prunes (Cout and K divisible by M); the masked product itself still runs dense.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from epoch_bench import torch_model  # noqa: E402


def add_nm_masks(model, n, m):
    import torch
    import torch.nn.utils.parametrize as P

    class NMMask(torch.nn.Module):
        def forward(self, w):
            flat = w.reshape(w.shape[0], -1)
            groups = flat.reshape(flat.shape[0], -1, m)
            # stable descending sort: among equal magnitudes the lower index comes first
            order = torch.sort(groups.abs(), dim=-1, descending=True, stable=True).indices
            keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, order[..., :n], True)
            return (groups * keep).reshape(w.shape)

    for mod in model.modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            cout, k = mod.weight.shape[0], mod.weight[0].numel()
            if cout % m == 0 and k % m == 0:
                P.register_parametrization(mod, "weight", NMMask())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/resnet18.json")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--modes", default="fp32,bf16-autocast")
    args = ap.parse_args()
    import torch
    if not torch.cuda.is_available():
        print("cuda_torch_step: PyTorch sees no CUDA device; nothing measured")
        return 0
    desc = json.load(open(args.model))
    torch.manual_seed(1)
    shape = [args.batch] + list(desc["input"])
    x = torch.randn(*shape, device="cuda")
    y = torch.randint(0, desc["classes"], (args.batch,), device="cuda")
    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name(0)}: {args.model}, batch {args.batch}")
    n, m = (int(v) for v in desc.get("nm", "2:8").split(":"))
    for mode in args.modes.split(","):
        model = torch_model(desc).cuda()
        if mode == "bf16-masked":
            add_nm_masks(model, n, m)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(mode != "fp32")):
                loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()

        for _ in range(3):
            step()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1e3 / args.steps
        print(f"- PyTorch {mode}: {ms:.2f} ms per step, {args.batch * 1e3 / ms:.0f} img/s "
              f"(mean of {args.steps} after 3 warm-ups)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
