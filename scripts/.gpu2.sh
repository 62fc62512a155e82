SAT_GPU_FOCUS=resident SAT_GPU_SKIP_BENCH=1 SAT_GPU_SKIP_EPOCH=1 SAT_GPU_TEST_FILTER='CudaLayers.*:CudaBackend.GraphReplay*:CudaBackend.TrainStep*:CudaBackend.SplitStep*' timeout 300 scripts/gpu-run.sh $OUT/r || exit 1
B=build-gpu/bench/cuda_bench
{ timeout 60 $B --batchnorm --reps 20
  timeout 90 $B --steps "models/resnet18.json models/vit_tiny.json" --batches "128 512" --reps 20
  SAT_CUDA_PROFILE=1 timeout 60 $B --steps models/resnet18.json --batches 512 --reps 3
  SAT_CUDA_BN=cudnn timeout 60 $B --steps models/resnet18.json --batches "128 512" --reps 20
  for b in 128 512; do timeout 60 python3 bench/cuda_torch_step.py --model models/resnet18.json --batch $b --steps 20 --modes bf16-autocast; done
} 2>&1 | tee $OUT/bench.md | grep -v "^$"
