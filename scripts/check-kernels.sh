#!/usr/bin/env bash
# Runs every kernel of hip/ on the CPU, through the emulation of src/test/emu, against the CPU
# reference backend: every op forward and backward, the inner scans with every kernel the
# variant tables can choose (on an emulated sm_80 device, without clusters, and an sm_90 one, with
# thread block clusters), the fused scans compiled for one shape as a run-time compile builds
# them, the inner problems, the model forward and the training step; bfloat16 and float32.
# Exit status 1 when any comparison fails.
#
#   scripts/check-kernels.sh                  the checks (under 10 minutes on 2 cores)
#   scripts/check-kernels.sh --plant sqrt     the same kernels with every square root 1% off: the
#   scripts/check-kernels.sh --plant tanh     checks must fail (exit status 1), which shows they can
#
# Needs g++, python3, a JDK 25 (JAVA_HOME) and the Maven build's classes (it runs
# ./mvnw -Pjmh -Dkernels.skip=true test-compile first). Output under target/check-kernels/.
set -euo pipefail
cd "$(dirname "$0")/.."

plant=""
if [ "${1:-}" = "--plant" ]; then
    case "${2:-}" in
        sqrt) plant="-DTTT_EMU_PLANT_SQRT" ;;
        tanh) plant="-DTTT_EMU_PLANT_TANH" ;;
        *) echo "check-kernels: --plant takes sqrt or tanh" >&2; exit 2 ;;
    esac
fi
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
out="target/check-kernels${plant:+-planted}"
mkdir -p "$out"
start=$(date +%s)

./mvnw -B -ntp -q -Pjmh -Dkernels.skip=true test-compile dependency:build-classpath \
    -Dmdep.outputFile="$out/classpath.txt" >"$out/maven.log" 2>&1 || { cat "$out/maven.log"; exit 1; }
cp="target/test-classes:target/classes:$(cat "$out/classpath.txt")"

# build DIR SM [FLAGS [MODULES]]: hip/ (or those modules of it) for an emulated device of that sm, with the
# launch index; the builds run side by side.
build() {
    # shellcheck disable=SC2086
    EMU_CXXFLAGS="$plant ${3:-}" python3 src/test/emu/build.py --sm "$2" hip "$out/$1" ${4:-} >"$out/$1.log" \
        && KERNELS_INDEX_ONLY=1 bash scripts/build-kernels.sh hip "$out/$1/kernels" none >>"$out/$1.log"
}
echo "check-kernels: building hip/ for emulated sm_80 and sm_90 devices${plant:+ ($plant)}"
build emu80 80 & b80=$!
if [ -z "$plant" ]; then
    build emu90 90 & b90=$!
    # The fused scans compiled for one shape, as a module compiled at run time is (K = 32 has no instance of its own).
    build emu90k32 90 "-DTTT_SHAPE_F=64 -DTTT_SHAPE_K=32" & bk32=$!
    # K = 64: TTT-Linear's fused scan, whose row groups take two rows each in turn, and TTT-MLP's.
    build emu90k64 90 "-DTTT_SHAPE_F=64 -DTTT_SHAPE_K=64" "ttt_linear ttt_mlp ttt_inputs elementwise norms embedding" & bk64=$!
    wait "$b90" "$bk32" "$bk64"
fi
wait "$b80"

failed=0
# check NAME EMU SM PARTS DTYPE TYPES [F K]: one run of the emulated verification on the kernels built
# into EMU, its rows in NAME.log. A 16-bit run also checks the float32 instantiation of each kernel.
check() {
    local name="$1" emu="$2" sm="$3" parts="$4" dtype="$5" types="$6" f="${7:-64}" k="${8:-16}" rc=0 t0
    t0=$(date +%s)
    "$java" -Dtttbench.emu.arch="sm_$sm" --enable-native-access=ALL-UNNAMED -cp "$out/$emu:$cp" \
        org.tttbench.verify.EmulatedVerify "$parts" "$dtype" 232448 "$types" "$f" "$k" >"$out/$name.log" 2>&1 || rc=$?
    echo "check-kernels: $name: $(grep -E 'comparisons passed' "$out/$name.log" || echo 'no summary') ($(($(date +%s) - t0)) s)"
    grep -E 'FAIL|Exception|ERROR' "$out/$name.log" | head -n 5 || true
    [ "$rc" -eq 0 ] || failed=1
}

if [ -n "$plant" ]; then
    # The ops and inner scans at float32 on one device are enough to show the planted error is caught.
    check planted-sm80 emu80 80 ops,inner float32 linear,mlp
    if [ "$failed" -eq 0 ]; then
        echo "check-kernels: the planted error ($plant) was NOT caught" >&2
        exit 1
    fi
    echo "check-kernels: the planted error ($plant) was caught ($(($(date +%s) - start)) s)"
    exit 1
fi

# sm_80: every op and every scan kernel without clusters, bfloat16 and float32; the benchmarks' own
# problems, the model forward and the training step. sm_90: the scan kernels on clusters (TTT-MLP's).
# Each check keeps about one core busy: two lanes of them run side by side, of about equal length.
(
    check sm90-cluster-scans emu90 90 inner bfloat16 mlp
    check sm80-problems-model emu80 80 problem,model float32 linear,mlp
    check sm90-generic-k64 emu90 90 inner float32 mlp 64 64
    exit "$failed"
) & lane1=$!
(
    check sm80-ops-scans emu80 80 ops,inner bfloat16 linear,mlp
    check sm90-compiled-k32 emu90k32 90 inner float32 linear,mlp 64 32
    check sm90-compiled-k64 emu90k64 90 inner float32 linear,mlp 64 64
    exit "$failed"
) & lane2=$!
wait "$lane1" || failed=1
wait "$lane2" || failed=1
echo "check-kernels: $([ "$failed" -eq 0 ] && echo 'every check passed' || echo 'FAILED') in $(($(date +%s) - start)) s"
exit "$failed"
