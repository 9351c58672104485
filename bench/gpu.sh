#!/usr/bin/env bash
# One go on a GPU machine (issue #18): the CUDA smoke test, then timings (training steps/s with mixed precision,
# train.deterministic on and off; one predict of a 512 x 512 x 300 scan with its peak GPU memory).
# Run from the repository root with the venv active: bash bench/gpu.sh [OUT_DIR]   (default bench/out)
# Writes OUT_DIR/cuda_test.txt and OUT_DIR/gpu_timing.jsonl; record both in docs/benchmarks.md with the card's name.
set -euo pipefail
out="${1:-${OUT:-bench/out}}"
mkdir -p "$out"
nvidia-smi -L | tee "$out/nvidia-smi.txt"
python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'available', torch.cuda.is_available())" | tee -a "$out/nvidia-smi.txt"
python -m pytest tests/test_cuda.py -v -rs -p no:cacheprovider 2>&1 | tee "$out/cuda_test.txt"
python bench/gpu_timing.py --out "$out" | tee "$out/gpu_timing.jsonl"
