#!/usr/bin/env bash
# Issue 12's GPU check as one command on the lent GPU machine, prepared so that a session that draws
# one spends its device time on the run alone. Here, first: `bash benchmarks/gpu_wheels.sh` (fills
# .whl/). Then one device call from the repository root:
#
#     run(command="bash benchmarks/gpu_run.sh", carry=[".whl"], timeout_s=600)
#
# It installs the wheels beside the image's torch, then executes the whole collection in full mode with
# benchmarks/gpu_collection.py: the paper preset for one epoch on a 10x pretraining set first (the
# issue's target: <= 3 minutes), then the tiny presets while time is left. Everything comes back in
# $OUT: gpu_collection.json (written after every notebook, so a run cut short still reports), the
# executed notebooks of each run, the log. Then, here: copy gpu_collection.json to docs/ and run
# `python -m hdcid.runtimes`, which writes the table in docs/notebooks.md.
# RUNS (default "paper tiny") and DEADLINE (seconds after which no notebook starts, default 470) override.
set -uo pipefail
out=${OUT:?"OUT: the folder whose files come back (the device tool sets it)"}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_run.sh: installing .whl/ failed: run benchmarks/gpu_wheels.sh here and carry .whl" >&2; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia-smi.csv"
# SIGTERM at 560 s: gpu_collection.py records how long the notebook in progress had run
timeout 560 python3 benchmarks/gpu_collection.py --work /tmp/gpu --out "$out" --runs ${RUNS:-paper tiny} \
    --deadline "${DEADLINE:-470}" 2>&1 | tee "$out/log.txt"
