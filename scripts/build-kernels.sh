#!/usr/bin/env bash
# Compiles every hip/*.hip (one file per op family) ahead of time, for both GPU vendors, into the
# folder the jar packs:
#   OUT/amd/<gfx>/<name>.co          hipcc --genco, one per gfx target
#   OUT/nvidia/sm_<NN>/<name>.cubin  nvcc -x cu, with hip/tttbench_hip.h mapping HIP to CUDA
#   OUT/nvidia/compute_90/<name>.ptx for NVIDIA devices newer than the cubins
#   OUT/index.txt                    every object, one VENDOR/ARCH/NAME.EXT a line
#   OUT/launch.txt                   the launch index: every TTT_LAUNCH and TTT_SIZE descriptor of
#                                    the sources, one a line, prefixed by its module (hip/README.md)
#
# usage: scripts/build-kernels.sh [SRC_DIR [OUT_DIR [REQUIRE]]]
#   SRC_DIR  default hip/      OUT_DIR  default target/classes/kernels
#   REQUIRE  none (default): a missing toolchain skips its vendor with a warning
#            all | amd | nvidia: that vendor's toolchain must be present (CI sets all)
# A kernel that fails to compile fails the script either way, and so does an entry point without
# a descriptor or a descriptor without an entry point. Objects newer than their source, the
# headers in SRC_DIR and this script are kept, so a rebuild only compiles what changed; the
# launch index is written every time (it takes a preprocessor pass per source).
# KERNELS_AMD_TARGETS / KERNELS_NVIDIA_TARGETS replace the target lists below;
# KERNELS_INDEX_ONLY=1 writes OUT/launch.txt and compiles nothing. The launch index is made with
# ${CXX:-c++} (else nvcc or hipcc) as a preprocessor only: no GPU toolchain is needed for it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
src="${1:-$here/../hip}"
out="${2:-$here/../target/classes/kernels}"
require="${3:-none}"
case "$require" in none|all|amd|nvidia) ;; *) echo "build-kernels: REQUIRE must be none, all, amd or nvidia, not '$require'" >&2; exit 2 ;; esac

# The data-center GPUs: gfx90a (MI200) always, gfx942 (MI300) and gfx950 (MI350) where this hipcc
# knows them. Any other device compiles each module at run time, once, with hipRTC / NVRTC into
# the kernel cache (gpu/KernelRegistry); KERNELS_AMD_TARGETS="gfx90a gfx1030 ..." builds others in.
# Each target costs about two minutes of compiler time on one core.
amd_required="gfx90a"
amd_optional="gfx942 gfx950"
nvidia_cubins="${KERNELS_NVIDIA_TARGETS:-sm_80 sm_90}"
nvidia_ptx="compute_90"

warn() { echo "build-kernels: WARNING: $*" >&2; }
die() { echo "build-kernels: ERROR: $*" >&2; exit 1; }

shopt -s nullglob
sources=("$src"/*.hip)
headers=("$src"/*.h)
mkdir -p "$out"

find_tool() {  # name, then folders to look in besides PATH
    local tool="$1" dir
    shift
    if command -v "$tool" >/dev/null 2>&1; then command -v "$tool"; return; fi
    for dir in "$@"; do
        [ -n "$dir" ] && [ -x "$dir/$tool" ] && { echo "$dir/$tool"; return; }
    done
    return 1
}

# ---- the launch index
# Each source preprocessed with TTT_LAUNCH_INDEX, under which tttbench_hip.h includes no vendor
# header and every descriptor becomes one line: @launch NAME "THREADS" "CLUSTER" "GRID_X" "GRID_Y"
# "SHARED_BYTES" or @size NAME "EXPR". Written to launch.txt as MODULE @launch NAME THREADS CLUSTER
# GRID_X GRID_Y SHARED_BYTES and MODULE @size NAME EXPR: fields one space apart, the quotes and
# every space inside an expression removed.
if cxx="$(find_tool "${CXX:-c++}")"; then
    preprocess() { "$cxx" -x c++ -std=c++17 -E -P -DTTT_LAUNCH_INDEX -I "$src" "$1"; }
elif pp="$(find_tool nvcc "${CUDA_PATH:+$CUDA_PATH/bin}" "${CUDA_HOME:+$CUDA_HOME/bin}" /usr/local/cuda/bin)"; then
    preprocess() { "$pp" -x c++ -std=c++17 -E -Xcompiler -P -DTTT_LAUNCH_INDEX -I "$src" "$1"; }
elif pp="$(find_tool hipcc "${ROCM_PATH:+$ROCM_PATH/bin}" "${HIP_PATH:+$HIP_PATH/bin}" /opt/rocm/bin)"; then
    # An offload target, or hipcc asks the (absent) device for one: only preprocessing follows.
    preprocess() { HIP_PLATFORM=amd "$pp" --offload-arch=gfx90a -x c++ -std=c++17 -E -P -DTTT_LAUNCH_INDEX -I "$src" "$1"; }
else
    die "no preprocessor for the launch index (\$CXX, c++, nvcc or hipcc)"
fi
launch_tmp="$out/.launch.txt.tmp"
: >"$launch_tmp"
index_failed=0
for s in "${sources[@]}"; do
    module="$(basename "${s%.hip}")"
    text="$(preprocess "$s")" || die "$s: the preprocessor failed on it (above)"
    # A descriptor must stand on a line of its own (not inside another macro, not beside code).
    misplaced="$(printf '%s\n' "$text" | grep -E '@(launch|size)' | grep -vE '^[[:space:]]*@(launch|size) [^@]*$' || true)"
    if [ -n "$misplaced" ]; then
        echo "build-kernels: ERROR: $s: a descriptor that is not on a line of its own:" >&2
        printf '  %s\n' "$misplaced" >&2
        index_failed=1
        continue
    fi
    lines="$(printf '%s\n' "$text" | grep -E '^[[:space:]]*@(launch|size) ' | awk '{
        out = ""; quoted = 0; gap = 0
        for (i = 1; i <= length($0); i++) {
            c = substr($0, i, 1)
            if (c == "\"") { quoted = !quoted; continue }
            if (c == " " || c == "\t") { if (!quoted) gap = 1; continue }
            if (gap && out != "") out = out " "
            gap = 0
            out = out c
        }
        print out
    }' || true)"
    # Well formed: the field count, literal threads and cluster, expressions of the index grammar.
    bad="$(printf '%s\n' "$lines" | awk '
        $1 == "@launch" && NF == 7 && $3 ~ /^[0-9]+$/ && $4 ~ /^[0-9]+$/ {
            ok = 1
            for (i = 5; i <= 7; i++) if ($i !~ /^[A-Za-z0-9_+*\/%(),=!<>&|-]+$/) ok = 0
            if (ok) next
        }
        $1 == "@size" && NF == 3 && $3 ~ /^[A-Za-z0-9_+*\/%(),=!<>&|-]+$/ { next }
        NF > 0 { print }')"
    if [ -n "$bad" ]; then
        echo "build-kernels: ERROR: $s: malformed descriptor(s):" >&2
        printf '  %s\n' "$bad" >&2
        index_failed=1
        continue
    fi
    described="$(printf '%s\n' "$lines" | awk '$1 == "@launch" { print $2 }' | LC_ALL=C sort)"
    dup="$(printf '%s\n' "$described" | uniq -d)"
    sizes_dup="$(printf '%s\n' "$lines" | awk '$1 == "@size" { print $2 }' | LC_ALL=C sort | uniq -d)"
    # The entry points, without their stored-type suffix.
    entries="$(printf '%s\n' "$text" | sed -E 's/__launch_bounds__ *\([^)]*\)//g' \
        | grep -oE 'extern "C" +__global__ +void +[A-Za-z_][A-Za-z0-9_]* *\(' \
        | sed -E 's/^.*void +([A-Za-z_][A-Za-z0-9_]*) *\($/\1/; s/_(f32|bf16|f16)$//' | LC_ALL=C sort -u)"
    undescribed="$(LC_ALL=C comm -23 <(printf '%s\n' "$entries") <(printf '%s\n' "$described" | uniq) | sed '/^$/d')"
    orphans="$(LC_ALL=C comm -13 <(printf '%s\n' "$entries") <(printf '%s\n' "$described" | uniq) | sed '/^$/d')"
    if [ -z "$entries" ]; then
        echo "build-kernels: ERROR: $s: no extern \"C\" __global__ entry point found" >&2
        index_failed=1
    fi
    for name in $undescribed; do
        echo "build-kernels: ERROR: $s: entry point $name has no TTT_LAUNCH descriptor" >&2
        index_failed=1
    done
    for name in $orphans; do
        echo "build-kernels: ERROR: $s: TTT_LAUNCH($name, ...) describes no entry point" >&2
        index_failed=1
    done
    for name in $dup $sizes_dup; do
        echo "build-kernels: ERROR: $s: $name is described twice" >&2
        index_failed=1
    done
    printf '%s\n' "$lines" | sed '/^$/d' | sed "s|^|$module |" >>"$launch_tmp"
done
if [ "$index_failed" -ne 0 ]; then
    rm -f "$launch_tmp"
    die "the launch index is incomplete (see above)"
fi
mv "$launch_tmp" "$out/launch.txt"
echo "build-kernels: $(grep -c ' @launch ' "$out/launch.txt") launch descriptor(s) and $(grep -c ' @size ' "$out/launch.txt") size(s) in $out/launch.txt"
if [ "${KERNELS_INDEX_ONLY:-0}" = 1 ]; then exit 0; fi

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

# Queues one compile: the output file, a tab, what the progress line calls it, a tab, then the
# command, shell-quoted.
job() {
    local o="$1" label="$2"
    shift 2
    printf '%s\t%s\t' "$o" "$label" >>"$jobs_file"
    printf '%q ' "$@" >>"$jobs_file"
    printf '\n' >>"$jobs_file"
}

# drop_others VENDOR TARGET...: removes the objects of targets an earlier build made and this one
# does not, so that the jar never packs objects of older sources.
drop_others() {
    local vendor="$1" d
    shift
    for d in "$out/$vendor"/*/; do
        case " $* " in *" $(basename "$d") "*) ;; *) rm -rf "$d" ;; esac
    done
}

# ---- AMD
if hipcc="$(find_tool hipcc "${ROCM_PATH:+$ROCM_PATH/bin}" "${HIP_PATH:+$HIP_PATH/bin}" /opt/rocm/bin)"; then
    if [ -n "${KERNELS_AMD_TARGETS:-}" ]; then
        amd_targets="$KERNELS_AMD_TARGETS"
    else
        # Which optional targets this hipcc accepts, remembered per compiler version and target list.
        version="$(HIP_PLATFORM=amd "$hipcc" --version 2>/dev/null | head -n 3 | tr -s ' \n' ' ') [$amd_required; $amd_optional]"
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
    drop_others amd $amd_targets
    for t in $amd_targets; do
        mkdir -p "$out/amd/$t"
        for s in "${sources[@]}"; do
            o="$out/amd/$t/$(basename "${s%.hip}").co"
            fresh "$o" "$s" && continue
            job "$o" "$(basename "$s") $t" HIP_PLATFORM=amd "$hipcc" --genco --offload-arch="$t" -O3 -std=c++17 -I "$src" "$s" -o "$o"
        done
    done
else
    case "$require" in all|amd) die "hipcc not found (PATH, \$ROCM_PATH/bin, /opt/rocm/bin): install Debian's hipcc package, or ROCm" ;; esac
    warn "hipcc not found: AMD kernels are not built (install Debian's hipcc package, or ROCm)"
fi

# ---- NVIDIA
if nvcc="$(find_tool nvcc "${CUDA_PATH:+$CUDA_PATH/bin}" "${CUDA_HOME:+$CUDA_HOME/bin}" /usr/local/cuda/bin)"; then
    echo "build-kernels: NVIDIA targets: $nvidia_cubins $nvidia_ptx ($nvcc)"
    drop_others nvidia $nvidia_cubins $nvidia_ptx
    for t in $nvidia_cubins; do
        mkdir -p "$out/nvidia/$t"
        for s in "${sources[@]}"; do
            o="$out/nvidia/$t/$(basename "${s%.hip}").cubin"
            fresh "$o" "$s" && continue
            job "$o" "$(basename "$s") $t" "$nvcc" -x cu -cubin -arch="$t" -O3 -std=c++17 -I "$src" "$s" -o "$o"
        done
    done
    for t in $nvidia_ptx; do
        mkdir -p "$out/nvidia/$t"
        for s in "${sources[@]}"; do
            o="$out/nvidia/$t/$(basename "${s%.hip}").ptx"
            fresh "$o" "$s" && continue
            job "$o" "$(basename "$s") $t" "$nvcc" -x cu -ptx -arch="$t" -O3 -std=c++17 -I "$src" "$s" -o "$o"
        done
    done
else
    case "$require" in all|nvidia) die "nvcc not found (PATH, \$CUDA_PATH/bin, /usr/local/cuda/bin): install nvidia-cuda-toolkit, or NVIDIA's CUDA toolkit" ;; esac
    warn "nvcc not found: NVIDIA kernels are not built (install nvidia-cuda-toolkit, or NVIDIA's CUDA toolkit)"
fi

# ---- compile, one job per core; a failed compile removes its partial output and fails the build.
# Each job prints one line when it is done (the compilers' own output goes to stderr), which the
# loop numbers: [12/49] ttt_mlp.hip sm_90 ... 41.2 s
count="$(wc -l <"$jobs_file")"
if [ "$count" -gt 0 ]; then
    echo "build-kernels: compiling $count object(s) from ${#sources[@]} source(s)"
    # shellcheck disable=SC2016
    if ! xargs -d '\n' -P "$(nproc 2>/dev/null || echo 2)" -I{} bash -c '
            tab="$(printf "\t")"
            o="${1%%"$tab"*}"; rest="${1#*"$tab"}"; label="${rest%%"$tab"*}"; cmd="${rest#*"$tab"}"
            start="$(date +%s.%N)"
            if ! eval "$cmd" >&2; then rm -f "$o"; echo "build-kernels: FAILED: $cmd" >&2; exit 1; fi
            echo "$label $start $(date +%s.%N)"' _ {} <"$jobs_file" \
        | { done_jobs=0; while read -r name target start end; do
                done_jobs=$((done_jobs + 1))
                echo "[$done_jobs/$count] $name $target ... $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s"
            done; }; then
        die "a kernel failed to compile (see above)"
    fi
fi

# ---- the index the runtime reads
(cd "$out" && find . -mindepth 3 -maxdepth 3 -type f \( -name '*.co' -o -name '*.cubin' -o -name '*.ptx' \) \
    | sed 's|^\./||' | LC_ALL=C sort) >"$out/index.txt"
echo "build-kernels: $(wc -l <"$out/index.txt") object(s) listed in $out/index.txt"
