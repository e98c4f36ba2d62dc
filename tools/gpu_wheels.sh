#!/usr/bin/env bash
# Gather, into .whl/, the wheels that let `axolotl train` run from this checkout on a GPU machine that has
# Python 3.12, torch, transformers' neighbours and no package index (the project's lent H200s): Axolotl 0.21
# and what it imports that such a machine lacks, at constraints/py312.txt's versions. About 31 MB.
#
#   tools/gpu_wheels.sh            # then, on the GPU machine, in the checkout:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
#   python3 -m bench.speed --gpu --no-profile --rows 512 --only kto-builtin,kto-plugin,sft
#
# The list is what a CPU run of the built-in KTO, the plugin and SFT imported, less what the H200 image already
# has (found on 2026-12-04 by hiding every other installed module from such runs). Two wheels are cut down to
# fit a 64 MiB transfer: bitsandbytes keeps its CPU and CUDA 13.0 libraries (the machine's torch is cu130), and
# wandb loses its Go binaries (only imported, never started: no run reports to wandb). The two
# axolotl-contribs packages have no wheel on PyPI and are built from their sources.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES="axolotl trl datasets dill multiprocess pydantic pydantic_core annotated-types typing-inspection addict fire
termcolor python-dotenv posthog backoff distro bitsandbytes kernels fastcore evaluate wandb platformdirs
opentelemetry-api opentelemetry-sdk opentelemetry-semantic-conventions opentelemetry-proto
opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-common transformers peft tokenizers"
FROM_SOURCE="axolotl-contribs-lgpl axolotl-contribs-mit"
PY312=$(tools/find_python.sh python3.12)

pin() {  # NAME -> NAME==VERSION from constraints/py312.txt (names compared as pip does: - _ . alike)
  local pattern
  pattern=$(echo "$1" | sed 's/[-_.]/[-_.]/g')
  grep -iE "^${pattern}==" constraints/py312.txt | head -1 || { echo "no pin for $1 in constraints/py312.txt" >&2; exit 1; }
}

rm -rf .whl && mkdir .whl
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
platforms=()
for tag in manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
pins=()
for name in $PACKAGES; do pins+=("$(pin "$name")"); done
"$PY312" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl "${pins[@]}"
sources=()
for name in $FROM_SOURCE; do sources+=("$(pin "$name")"); done
"$PY312" -m pip wheel -q --no-deps -w .whl "${sources[@]}"

zip -q -d .whl/bitsandbytes-*.whl 'bitsandbytes/libbitsandbytes_cuda1[12]*' 'bitsandbytes/libbitsandbytes_cuda132.so' \
  'bitsandbytes/libbitsandbytes_rocm*' 'bitsandbytes/libbitsandbytes_xpu*'
zip -q -d .whl/wandb-*.whl 'wandb/bin/*'
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1) in .whl/ (carry it: run's carry [\".whl\"])"
