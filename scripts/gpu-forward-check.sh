#!/usr/bin/env bash
# One session on a GPU machine for the GPU forward: unpack the bundle, then run the steps named
# on the command line, each under its own time limit, logging into $OUT (default ./gpu-out).
# The verify steps check the forward (--no-backward); the backward has a session script of its own.
#   info       the card and its clocks (nvidia-smi)
#   verify12   verify at 12m, both ttt-types, all dtypes
#   verify     verify at 125m, 125m-h32 and 760m, both ttt-types, all dtypes
#   timing     device copy and GEMM ceilings, then forward and inner forward at B=1, L=2048, float32:
#              125m linear and mlp, 1b linear (GpuTiming), with every inner-scan kernel
#   memcheck   verify at 12m under compute-sanitizer --tool memcheck
#   racecheck  the inner scans at 12m under compute-sanitizer --tool racecheck
#   ncu        the first launch of each inner scan at 125m (the kernel chosen) under Nsight Compute
#   sass       instruction counts of the inner-scan kernels' SASS
#   phases     cycles per phase of each inner-scan kernel (hip/tools/scan_phases.cu, built here
#              with nvcc unless $SCAN_PHASES names a built one)
# A step's log is STEP.log; logs.tgz holds them all, refreshed after every step, so that what
# ran comes back even when the session is cut short.
#
# usage: scripts/gpu-forward-check.sh BUNDLE.tar.xz STEP...
set -uo pipefail

bundle="$1"
shift
out="${OUT:-$PWD/gpu-out}"
logs=/tmp/tttbench-logs
work=/tmp/tttbench-run
mkdir -p "$out" "$logs"
rm -rf "$work" && mkdir -p "$work" && tar -xJf "$bundle" -C "$work" || { echo "cannot unpack $bundle"; exit 1; }
home="$work/tttbench"
java=("$home/runtime/bin/java" --enable-native-access=ALL-UNNAMED -cp "$home/lib/benchmarks.jar")

# step NAME SECONDS COMMAND...: runs COMMAND with its output in NAME.log, says how it ended.
step() {
    local name="$1" limit="$2" start rc
    shift 2
    start=$(date +%s)
    timeout "$limit" "$@" >"$logs/$name.log" 2>&1
    rc=$?
    echo "== $name: exit $rc after $(($(date +%s) - start)) s" | tee -a "$logs/steps.txt"
    tar -czf "$out/logs.tgz" -C "$logs" .
}

for s in "$@"; do
    case "$s" in
        info)
            step info 30 nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu --format=csv
            cat "$logs/info.log" ;;
        verify12)
            step verify12 150 "${java[@]}" org.tttbench.verify.Verifier --model-size 12m --no-backward
            grep -E "FAIL|ERROR|verify:" "$logs/verify12.log" | tail -n 20 ;;
        verify)
            step verify 330 "${java[@]}" org.tttbench.verify.Verifier --model-size 125m,125m-h32,760m --no-backward
            grep -E "FAIL|ERROR|verify:" "$logs/verify.log" | tail -n 30 ;;
        timing)
            step timing 300 "${java[@]}" org.tttbench.gpu.GpuTiming --ceilings --variants --model-size 125m \
                --ttt-type linear,mlp
            step timing1b 200 "${java[@]}" org.tttbench.gpu.GpuTiming --variants --model-size 1b --ttt-type linear
            sed -n '/^summary/,$p' "$logs/timing.log" "$logs/timing1b.log" ;;
        memcheck)
            step memcheck 300 compute-sanitizer --tool memcheck --leak-check no --error-exitcode 9 \
                "${java[@]}" org.tttbench.verify.Verifier --model-size 12m --no-backward
            grep -E "ERROR SUMMARY|verify:|FAIL" "$logs/memcheck.log" | tail -n 10 ;;
        racecheck)
            step racecheck 300 compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 \
                "${java[@]}" org.tttbench.verify.Verifier --model-size 12m --no-model --no-backward
            grep -E "RACECHECK SUMMARY|ERROR SUMMARY|verify:|FAIL" "$logs/racecheck.log" | tail -n 10 ;;
        ncu)
            for t in linear mlp; do
                step "ncu-$t" 150 ncu --target-processes all --kernel-name "regex:ttt_${t}_" --launch-count 1 \
                    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section LaunchStats \
                    --section Occupancy --section MemoryWorkloadAnalysis \
                    "${java[@]}" org.tttbench.gpu.GpuTiming --model-size 125m --ttt-type "$t" --what inner \
                    --warmup 0 --repeats 1 --no-check
            done
            grep -E "Duration|Issue Slots Busy|Stall|SM Busy|Executed Ipc" "$logs"/ncu-*.log | head -n 40 ;;
        sass)
            mkdir -p "$work/sass"
            # The bundle's jar holds the kernels xz-compressed (NAME.cubin.xz).
            python3 -c 'import sys, zipfile, lzma, os
z = zipfile.ZipFile(sys.argv[1])
for n in z.namelist():
    if n.startswith("kernels/nvidia/sm_90/"):
        data = z.read(n)
        if n.endswith(".xz"): n, data = n[:-3], lzma.decompress(data)
        p = os.path.join(sys.argv[2], n); os.makedirs(os.path.dirname(p), exist_ok=True); open(p, "wb").write(data)' \
                "$home/lib/benchmarks.jar" "$work/sass"
            for k in ttt_linear ttt_mlp; do
                cuobjdump -sass "$work/sass/kernels/nvidia/sm_90/$k.cubin" >"$logs/$k.sass" 2>&1
            done
            for f in ttt_linear_shared_f32 ttt_mlp_cluster8_f32; do
                echo "$f:"
                awk "/Function : $f\$/{p=1;next} /Function :/{p=0} p" "$logs"/ttt_*.sass \
                    | grep -oE '^ +/\*[0-9a-f]+\*/ +[A-Z0-9_.]+' | awk '{print $2}' | sort | uniq -c | sort -rn | head -n 12
            done | tee "$logs/sass-summary.txt"
            tar -czf "$out/logs.tgz" -C "$logs" . ;;
        phases)
            probe="${SCAN_PHASES:-}"
            if [ -z "$probe" ]; then
                probe=/tmp/scan_phases
                nvcc -O3 -std=c++17 -arch=sm_90 -DTTT_PHASE_CLOCKS -I hip hip/tools/scan_phases.cu -o "$probe" \
                    >"$logs/phases-build.log" 2>&1 || { echo "scan_phases did not build"; continue; }
            fi
            chmod +x "$probe"
            step phases 120 bash -c "$probe linear 64 12 2048 16 256 shared cluster2 cluster4 \
                && $probe mlp 64 12 2048 16 256 shared cluster2 cluster4 cluster8 \
                && $probe linear 64 32 2048 16 256 shared cluster2 \
                && $probe mlp 96 16 2048 16 256 cluster4 cluster8"
            cat "$logs/phases.log" ;;
        *)
            echo "unknown step $s" ;;
    esac
done
