#!/usr/bin/env python3
"""PyTorch side of the whole-model comparison in docs/performance.md ("CUDA on the H200"): one dense
training step (forward, loss, backward, SGD momentum + weight decay) of a model built from the same
models/<name>.json as SAT (bench/epoch_bench.py's builder), on the GPU, in FP32 and under BF16
autocast. Prints the mean wall-clock time per step; never passes or fails.

    bench/cuda_torch_step.py --model models/resnet18.json --batch 128 --steps 20
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from epoch_bench import torch_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/resnet18.json")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
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
    for mode in ("fp32", "bf16-autocast"):
        model = torch_model(desc).cuda()
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
        print(f"- PyTorch dense {mode}: {ms:.2f} ms per step (mean of {args.steps} after 3 warm-ups)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
