#!/usr/bin/env bash
# One go on a GPU machine (issues #18, #15): the CUDA smoke test, timings (training steps/s with mixed precision,
# train.deterministic on and off; one predict of a 512 x 512 x 300 scan with its peak GPU memory), then the real-CT
# check trained on CUDA: the 120 phantoms (bench/data_step.py, in the background from the start), the default
# schedule and one 4x as long, seeds interleaved so that a cut-off run still compares the two.
# Run from the repository root with python3 holding torch and abdoseg importable:
#   bash bench/gpu.sh [OUT_DIR]   (default $OUT, else bench/out)
# Writes OUT_DIR/{nvidia-smi.txt,cuda_test.txt,gpu_timing.jsonl,data.log,real_ct_gpu.md}; record them in
# docs/benchmarks.md with the card's name.
set -uo pipefail
out="${1:-${OUT:-bench/out}}"
py="${PYTHON:-python3}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$out/nvidia-smi.txt"
"$py" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'available', torch.cuda.is_available())" | tee -a "$out/nvidia-smi.txt"
"$py" bench/data_step.py >"$out/data.log" 2>&1 &
data=$!
timeout 240 "$py" -m pytest tests/test_cuda.py -v -rs -p no:cacheprovider 2>&1 | tee "$out/cuda_test.txt"
timeout 180 "$py" bench/gpu_timing.py --out "$out" | tee "$out/gpu_timing.jsonl"
wait "$data" || { echo "data step failed: $out/data.log"; exit 1; }
# 16 cores: 8 workers sample, augmentation on the GPU (24 patches per CPU second instead of 3: docs/benchmarks.md)
gpu="train.workers=8 train.augment_on=device"
for seed in 0 1 2; do
  for arm in "default:" "4x-steps:train.epochs=200 train.val_every=40"; do
    echo "## ${arm%%:*} seed $seed"
    "$py" bench/real_ct_seeds.py $gpu ${arm#*:} --seeds "$seed" 2>&1 | grep -v '^epoch'
  done
done | tee "$out/real_ct_gpu.md"
