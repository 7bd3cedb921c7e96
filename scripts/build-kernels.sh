#!/usr/bin/env bash
# Compiles every hip/*.hip ahead of time, for both GPU vendors, into the folder the jar packs:
#   OUT/amd/<gfx>/<name>.co          hipcc --genco, one per gfx target
#   OUT/nvidia/sm_<NN>/<name>.cubin  nvcc -x cu, with hip/tttbench_hip.h mapping HIP to CUDA
#   OUT/nvidia/compute_90/<name>.ptx for NVIDIA devices newer than the cubins
#   OUT/index.txt                    every object, one VENDOR/ARCH/NAME.EXT a line
#
# usage: scripts/build-kernels.sh [SRC_DIR [OUT_DIR [REQUIRE]]]
#   SRC_DIR  default hip/      OUT_DIR  default target/classes/kernels
#   REQUIRE  none (default): a missing toolchain skips its vendor with a warning
#            all | amd | nvidia: that vendor's toolchain must be present (CI sets all)
# A kernel that fails to compile fails the script either way. Objects newer than their source,
# the headers in SRC_DIR and this script are kept, so a rebuild only compiles what changed.
# KERNELS_AMD_TARGETS / KERNELS_NVIDIA_TARGETS replace the target lists below.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
src="${1:-$here/../hip}"
out="${2:-$here/../target/classes/kernels}"
require="${3:-none}"
case "$require" in none|all|amd|nvidia) ;; *) echo "build-kernels: REQUIRE must be none, all, amd or nvidia, not '$require'" >&2; exit 2 ;; esac

# gfx90a (MI200) and gfx1030 (RDNA2) are always built; the others where this hipcc knows them.
amd_required="gfx90a gfx1030"
amd_optional="gfx908 gfx940 gfx941 gfx942 gfx950 gfx1100 gfx1101 gfx1102 gfx1200 gfx1201"
nvidia_cubins="${KERNELS_NVIDIA_TARGETS:-sm_80 sm_90}"
nvidia_ptx="compute_90"

warn() { echo "build-kernels: WARNING: $*" >&2; }
die() { echo "build-kernels: ERROR: $*" >&2; exit 1; }

shopt -s nullglob
sources=("$src"/*.hip)
headers=("$src"/*.h)
mkdir -p "$out"

# True when $1 exists and is newer than the source $2, every header and this script.
fresh() {
    local obj="$1" dep
    [ -e "$obj" ] || return 1
    for dep in "$2" "${headers[@]}" "$here/build-kernels.sh"; do
        [ "$obj" -nt "$dep" ] || return 1
    done
}

# Objects whose source is gone would still be packed and listed: remove them.
for obj in "$out"/*/*/*.co "$out"/*/*/*.cubin "$out"/*/*/*.ptx; do
    name="$(basename "${obj%.*}")"
    [ -e "$src/$name.hip" ] || rm -f "$obj"
done

jobs_file="$(mktemp)"
trap 'rm -f "$jobs_file"' EXIT

# Queues one compile: the output file, a tab, then the command, shell-quoted.
job() {
    local o="$1"
    shift
    printf '%s\t' "$o" >>"$jobs_file"
    printf '%q ' "$@" >>"$jobs_file"
    printf '\n' >>"$jobs_file"
}

find_tool() {  # name, then folders to look in besides PATH
    local tool="$1" dir
    shift
    if command -v "$tool" >/dev/null 2>&1; then command -v "$tool"; return; fi
    for dir in "$@"; do
        [ -n "$dir" ] && [ -x "$dir/$tool" ] && { echo "$dir/$tool"; return; }
    done
    return 1
}

# ---- AMD
if hipcc="$(find_tool hipcc "${ROCM_PATH:+$ROCM_PATH/bin}" "${HIP_PATH:+$HIP_PATH/bin}" /opt/rocm/bin)"; then
    if [ -n "${KERNELS_AMD_TARGETS:-}" ]; then
        amd_targets="$KERNELS_AMD_TARGETS"
    else
        # Which optional targets this hipcc accepts, remembered per compiler version.
        version="$(HIP_PLATFORM=amd "$hipcc" --version 2>/dev/null | head -n 3 | tr -s ' \n' ' ')"
        cache="$out/amd/.targets"
        if [ -f "$cache" ] && [ "$(head -n 1 "$cache")" = "$version" ]; then
            amd_targets="$(tail -n 1 "$cache")"
        else
            probe_dir="$(mktemp -d)"
            printf '#include <hip/hip_runtime.h>\nextern "C" __global__ void probe(int* p) { *p = 1; }\n' >"$probe_dir/p.hip"
            amd_targets="$amd_required"
            for t in $amd_optional; do
                if HIP_PLATFORM=amd "$hipcc" --genco --offload-arch="$t" "$probe_dir/p.hip" -o "$probe_dir/p.co" >/dev/null 2>&1; then
                    amd_targets="$amd_targets $t"
                fi
            done
            rm -rf "$probe_dir"
            mkdir -p "$out/amd"
            printf '%s\n%s\n' "$version" "$amd_targets" >"$cache"
        fi
    fi
    echo "build-kernels: AMD targets: $amd_targets ($hipcc)"
    for t in $amd_targets; do
        mkdir -p "$out/amd/$t"
        for s in "${sources[@]}"; do
            o="$out/amd/$t/$(basename "${s%.hip}").co"
            fresh "$o" "$s" && continue
            job "$o" HIP_PLATFORM=amd "$hipcc" --genco --offload-arch="$t" -O3 -std=c++17 -I "$src" "$s" -o "$o"
        done
    done
else
    case "$require" in all|amd) die "hipcc not found (PATH, \$ROCM_PATH/bin, /opt/rocm/bin): install Debian's hipcc package, or ROCm" ;; esac
    warn "hipcc not found: AMD kernels are not built (install Debian's hipcc package, or ROCm)"
fi

# ---- NVIDIA
if nvcc="$(find_tool nvcc "${CUDA_PATH:+$CUDA_PATH/bin}" "${CUDA_HOME:+$CUDA_HOME/bin}" /usr/local/cuda/bin)"; then
    echo "build-kernels: NVIDIA targets: $nvidia_cubins $nvidia_ptx ($nvcc)"
    for t in $nvidia_cubins; do
        mkdir -p "$out/nvidia/$t"
        for s in "${sources[@]}"; do
            o="$out/nvidia/$t/$(basename "${s%.hip}").cubin"
            fresh "$o" "$s" && continue
            job "$o" "$nvcc" -x cu -cubin -arch="$t" -O3 -std=c++17 -I "$src" "$s" -o "$o"
        done
    done
    for t in $nvidia_ptx; do
        mkdir -p "$out/nvidia/$t"
        for s in "${sources[@]}"; do
            o="$out/nvidia/$t/$(basename "${s%.hip}").ptx"
            fresh "$o" "$s" && continue
            job "$o" "$nvcc" -x cu -ptx -arch="$t" -O3 -std=c++17 -I "$src" "$s" -o "$o"
        done
    done
else
    case "$require" in all|nvidia) die "nvcc not found (PATH, \$CUDA_PATH/bin, /usr/local/cuda/bin): install nvidia-cuda-toolkit, or NVIDIA's CUDA toolkit" ;; esac
    warn "nvcc not found: NVIDIA kernels are not built (install nvidia-cuda-toolkit, or NVIDIA's CUDA toolkit)"
fi

# ---- compile, one job per core; a failed compile removes its partial output and fails the build
count="$(wc -l <"$jobs_file")"
if [ "$count" -gt 0 ]; then
    echo "build-kernels: compiling $count object(s) from ${#sources[@]} source(s)"
    # shellcheck disable=SC2016
    if ! xargs -d '\n' -P "$(nproc 2>/dev/null || echo 2)" -I{} bash -c '
            o="${1%%$(printf "\t")*}"; cmd="${1#*$(printf "\t")}"
            if ! eval "$cmd"; then rm -f "$o"; echo "build-kernels: FAILED: $cmd" >&2; exit 1; fi' _ {} <"$jobs_file"; then
        die "a kernel failed to compile (see above)"
    fi
fi

# ---- the index the runtime reads
(cd "$out" && find . -mindepth 3 -maxdepth 3 -type f \( -name '*.co' -o -name '*.cubin' -o -name '*.ptx' \) \
    | sed 's|^\./||' | LC_ALL=C sort) >"$out/index.txt"
echo "build-kernels: $(wc -l <"$out/index.txt") object(s) listed in $out/index.txt"
