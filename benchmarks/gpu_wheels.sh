#!/usr/bin/env bash
# Download, on this machine, the wheels that benchmarks/gpu_run.sh installs on the GPU machine (which
# reaches no network): every name in benchmarks/gpu_wheels.txt at its requirements.lock pin, built for
# the image's CPython 3.12 on x86-64 Linux, into .whl/ (ignored by git; it travels with `carry`).
set -euo pipefail
cd "$(dirname "$0")/.."
pins=()
while read -r name; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    pattern="^$(sed -E 's/[-_.]+/[-_.]/g' <<<"$name")=="  # the lock spells some names with _ (pip freeze)
    pin=$(grep -i -m1 -E "$pattern" requirements.lock) || { echo "gpu_wheels.sh: $name is not pinned in requirements.lock" >&2; exit 1; }
    pins+=("$pin")
done < benchmarks/gpu_wheels.txt
rm -rf .whl && mkdir .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "${pins[@]}"
echo "gpu_wheels.sh: $(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1), in .whl/"
