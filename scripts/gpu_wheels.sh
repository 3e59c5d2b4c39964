#!/usr/bin/env bash
# Download the wheels the GPU machine lacks (cp312, manylinux) into an ignored folder and check they fit the carry.
#
#   bash scripts/gpu_wheels.sh            # -> .whl/ (ignored by .gitignore), prints the carry list
#   bash scripts/gpu_wheels.sh DIR        # another folder (it must be ignored by git too)
#   GPU_WHEELS_EXTRA="pyarrow==26.0.1" bash scripts/gpu_wheels.sh   # add packages (NAME==VERSION, space-separated)
#
# The GPU machine (../shared/design/platform-facts.md, .library/device/KINDS.md) has Python 3.12, torch 2.11 (CUDA
# 13), transformers 5.17, tokenizers 0.23.2, huggingface-hub 1.33, accelerate 1.15, pyarrow, pandas, xxhash, fsspec,
# psutil, ninja, msgpack, einops, py-cpuinfo, but not: trl, datasets (and its dill, multiprocess), deepspeed (and its
# hjson, pydantic), qwen-vl-utils, lmdeploy. We carry the pins of requirements.txt for what our code drives:
#   transformers 5.24 (our tested version; 5.17 is the floor) and peft (whatever peft the image has must import
#   beside transformers 5.24), trl, datasets, deepspeed (built here into a pure-Python wheel: DS_BUILD_OPS=0, its
#   CUDA ops compile just in time there; the sdist is carried instead if the build fails) and qwen-vl-utils (needed
#   only for video; its dependency av, ~40 MB, is left out).
# lmdeploy (~102 MiB) cannot be carried: its GPU test skips. pyarrow (~53 MiB) is not carried: datasets 5.2 needs
# pyarrow>=24; GPU_WHEELS_EXTRA="pyarrow==..." adds it if the image's is older (then drop transformers to fit).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEST="${1:-.whl}"
LIMIT_MIB=64

if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3)"; fi

pin() {  # the version pinned in requirements.txt
    local v
    v="$(grep -iE "^$1==" requirements.txt | head -1 | cut -d= -f3)"
    if [[ -z "$v" ]]; then echo "gpu_wheels.sh: $1 is not pinned in requirements.txt" >&2; exit 1; fi
    echo "$1==$v"
}

# Pinned like requirements.txt where it pins them; the others are the versions that venv resolved (pip check clean).
PACKAGES=(
    "$(pin transformers)" "$(pin peft)" "$(pin trl)" "$(pin datasets)" "$(pin qwen-vl-utils)"
    dill==0.4.1 multiprocess==0.70.19
    hjson==3.1.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
)
# shellcheck disable=SC2206
EXTRA=(${GPU_WHEELS_EXTRA:-})
DEEPSPEED="$(pin deepspeed)"

if git check-ignore -q "$DEST/x.whl"; then :; else
    echo "gpu_wheels.sh: $DEST is not ignored by git; add it to .gitignore or .git/info/exclude first" >&2
    exit 1
fi
mkdir -p "$DEST"
rm -f "$DEST"/*.whl "$DEST"/*.tar.gz

PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 manylinux_2_35_x86_64; do
    PLATFORMS+=(--platform "$p")
done
echo "downloading ${PACKAGES[*]} ${EXTRA[*]:-} (cp312, manylinux x86_64) into $DEST" >&2
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$DEST" "${PACKAGES[@]}" ${EXTRA[@]+"${EXTRA[@]}"}

# DeepSpeed ships only an sdist; build the pure-Python wheel here (no ops compiled), else carry the sdist.
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PY" -m pip download -q --no-deps --no-binary=:all: -d "$TMP" "$DEEPSPEED"
if DS_BUILD_OPS=0 DS_ACCELERATOR=cpu "$PY" -m pip wheel -q --no-deps --no-build-isolation --no-index \
        -w "$TMP/wheel" "$TMP"/deepspeed-*.tar.gz >"$TMP/build.log" 2>&1 \
        && ls "$TMP"/wheel/deepspeed-*-py3-none-any.whl >/dev/null 2>&1; then
    cp "$TMP"/wheel/deepspeed-*-py3-none-any.whl "$DEST"/
    echo "built $(basename "$TMP"/wheel/deepspeed-*.whl) (pure Python; ops compile just in time on the GPU)" >&2
else
    echo "could not build a deepspeed wheel here (see below); carrying the sdist, which builds there" >&2
    tail -5 "$TMP/build.log" >&2 || true
    cp "$TMP"/deepspeed-*.tar.gz "$DEST"/
fi

# One version of each package, or pip --target stops the whole install.
dups="$(ls "$DEST" | sed -E 's/^([A-Za-z0-9_.]+)-[0-9].*/\1/' | tr 'A-Z-' 'a-z_' | sort | uniq -d)"
if [[ -n "$dups" ]]; then echo "gpu_wheels.sh: several versions of: $dups" >&2; exit 1; fi

# Size check: the carried folder plus the working tree that travels (tracked + untracked-not-ignored files).
wheels_bytes="$(du -cb "$DEST"/* | tail -1 | cut -f1)"
tree_bytes="$(git ls-files -z -co --exclude-standard | xargs -0 -r du -cb 2>/dev/null | awk '/total$/ {s += $1} END {print s + 0}')"
total=$((wheels_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo >&2
ls -l "$DEST" | awk 'NR > 1 {printf "  %8.2f MiB  %s\n", $5 / 1048576, $9}' >&2
echo "wheels $(mib "$wheels_bytes") MiB + working tree $(mib "$tree_bytes") MiB = $(mib "$total") MiB (limit ${LIMIT_MIB} MiB)" >&2
if (( total > LIMIT_MIB * 1048576 )); then
    echo "gpu_wheels.sh: over the ${LIMIT_MIB} MiB carry limit" >&2
    exit 1
fi
CHECK="bash scripts/gpu_check.sh"
[[ "$DEST" == ".whl" ]] || CHECK="GPU_CHECK_WHEELS=$DEST $CHECK"
echo "device call: run(command=\"$CHECK\", carry=[\"$DEST\"], timeout_s=560)"
