#!/usr/bin/env bash
# Every GPU figure this project claims, measured on one GPU in one go (under 10 minutes on an H200
# by the estimate in experiments/README.md; no network: the data is synthetic CIFAR-shaped images
# made here, and digits ships with scikit-learn).
#
#   experiments/gpu_check.sh [OUT]        # OUT: where the logs go (default gpu_check_<date>)
#
# 1. bench_score.py at its defaults (10 st-VGG members x 10 epochs, 50,000 + 10,000 images): the
#    plain loop, the engine one by one and stacked (grouped convolutions, and vmap); wall time, examples/s,
#    achieved TFLOP/s against the device's bf16 peak, and the stacked-vs-one-by-one agreement of
#    the predicted labels at every checkpoint.
# 2. The default `curriculum score --dataset cifar10` run, shaped alike on the synthetic images
#    (10 members x 20 epochs, a checkpoint every quarter epoch, records, states and report): its
#    time, its TFLOP/s, and the share of each part (training, predictions, records, states, report).
# 3. A stacked bf16 score run on digits killed with SIGKILL and resumed, against an uninterrupted
#    one: whether the resume is bit-exact on this GPU (cuDNN may pick nondeterministic kernels).
# 4. The same run's predicted labels against float32 one by one at every checkpoint
#    (experiments/record_agreement.py), beside two float32 runs that differ only in --seed.
# Set GPU_CHECK_TESTS=1 to also run the GPU-path tests (tests/test_budgets.py, test_gpu_policy.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${1:-gpu_check_$(date +%Y%m%d_%H%M%S)}
"$PYTHON" - <<'EOF' || exit 2
import sys
try:
    import torch
except ImportError:
    sys.exit("gpu_check.sh needs torch: run it with the project's environment (PYTHON=.venv/bin/python, after make venv).")
if not torch.cuda.is_available():
    sys.exit("gpu_check.sh needs a GPU that torch can see (torch.cuda.is_available() is False).")
EOF
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" CURRICULUM_CACHE="$OUT/cache"
started=$(date +%s)
section() { echo; echo "== $* ($(( $(date +%s) - started )) s)"; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; } 2>&1 | tee "$OUT/device.txt"

section "1. bench_score.py at its defaults"
"$PYTHON" experiments/bench_score.py --ways plain,one-by-one,stacked,vmap 2>&1 | tee "$OUT/bench_score.txt"

section "2. the default score run, CIFAR-shaped: 10 members x 20 epochs, a checkpoint every quarter epoch"
"$PYTHON" experiments/bench_score.py --ways stage --epochs 20 --eval-every 0.25 2>&1 | tee "$OUT/score_stage.txt"

section "3. a stacked bf16 score run killed and resumed, against an uninterrupted one"
args=(score --dataset digits --members 4 --epochs 2 --eval-every 0.25 --quiet)
"$PYTHON" -m curriculum "${args[@]}" --out "$OUT/resume/reference"
"$PYTHON" -m curriculum "${args[@]}" --out "$OUT/resume/run" &
pid=$!
progress="$OUT/resume/run/records/member_003/progress.json"
until [ -f "$progress" ] && [ "$("$PYTHON" -c "import json; print(json.load(open('$progress'))['checkpoints'])")" -ge 3 ]; do
    kill -0 "$pid" 2>/dev/null || { echo "the run ended before it could be killed" >&2; exit 1; }
    sleep 0.2
done
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
"$PYTHON" -m curriculum "${args[@]}" --out "$OUT/resume/run"
same=yes
for file in "$OUT"/resume/reference/records/*/*.npy; do
    cmp -s "$file" "${file/reference/run}" || { same=no; echo "differs after the resume: ${file#"$OUT"/resume/reference/}"; }
done
grep -o '"precision": "[a-z0-9]*", "layout": "[^"]*"' "$OUT/resume/run/run.json" | tee "$OUT/resume.txt"
echo "resumed record bit-exact: $same" | tee -a "$OUT/resume.txt"

section "4. labels of the bf16 stacked run against float32 one by one; float32 against another seed"
"$PYTHON" -m curriculum "${args[@]}" --precision no --stack off --out "$OUT/agreement/float32"
"$PYTHON" -m curriculum "${args[@]}" --precision no --stack off --seed 1 --out "$OUT/agreement/float32_seed1"
{ echo "bf16 stacked vs float32 one by one:"
  "$PYTHON" experiments/record_agreement.py "$OUT/resume/reference" "$OUT/agreement/float32"
  echo; echo "float32 --seed 1 vs float32 --seed 0 (the scale):"
  "$PYTHON" experiments/record_agreement.py "$OUT/agreement/float32_seed1" "$OUT/agreement/float32"
} 2>&1 | tee "$OUT/agreement.txt"

if [ "${GPU_CHECK_TESTS:-0}" = 1 ]; then
    section "tests of the GPU path"
    "$PYTHON" -m pytest -q tests/test_budgets.py tests/test_gpu_policy.py 2>&1 | tee "$OUT/tests.txt"
fi
section "done: logs in $OUT"
