#!/usr/bin/env bash
# One session on a GPU machine for the GPU backward: unpack the bundle, then run the steps named
# on the command line, each under its own time limit, logging into $OUT (default ./gpu-out):
#   info         the card (nvidia-smi)
#   verify12     verify at 12m, both ttt-types, float32 and bfloat16 (forward, backward, training step,
#                checkpoint intervals, reruns)
#   memcheck12   verify at 12m, float32, under compute-sanitizer --tool memcheck (no interval sweep)
#   racecheck12  the inner backward at 12m under compute-sanitizer --tool racecheck
#   verify125    verify at 125m, both ttt-types, float32 and bfloat16
#   jmh          standard-flag runs, B=1 L=2048 float32 --json: 125m linear and mlp inner and full
#                backward, 1b linear full backward
#   breakdown    device-event timings of the backward with a per-op breakdown, 125m linear and mlp
#   memory       125m linear full and inner backward at checkpoint intervals 1, 2, 4, 8, 16 (time, peak memory)
# A step's log is STEP.log; logs.tgz holds them all, refreshed after every step, and jmh.jsonl the
# result lines, so that what ran comes back even when the session is cut short.
#
# usage: scripts/gpu-backward-check.sh BUNDLE.tar.xz STEP...
set -uo pipefail

bundle="$1"
shift
out="${OUT:-$PWD/gpu-out}"
logs=/tmp/tttbench-bwd-logs
work=/tmp/tttbench-bwd
mkdir -p "$out" "$logs"
rm -rf "$work" && mkdir -p "$work" && tar -xJf "$bundle" -C "$work" || { echo "cannot unpack $bundle"; exit 1; }
home="$work/tttbench"
java=("$home/runtime/bin/java" --enable-native-access=ALL-UNNAMED -cp "$home/lib/benchmarks.jar")
cli="$home/bin/tttbench"

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

summary() {  # the lines of a verify log worth reading in the reply
    grep -E "FAIL|ERROR|verify:|Exception" "$logs/$1.log" | tail -n "${2:-15}"
}

for s in "$@"; do
    case "$s" in
        info)
            step info 30 nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu --format=csv
            cat "$logs/info.log" ;;
        verify12)
            step verify12 120 "${java[@]}" org.tttbench.verify.Verifier --model-size 12m --dtype float32,bfloat16
            summary verify12 ;;
        memcheck12)
            step memcheck12 150 compute-sanitizer --tool memcheck --leak-check no --error-exitcode 9 \
                "${java[@]}" org.tttbench.verify.Verifier --model-size 12m --dtype float32 --no-intervals
            grep -E "ERROR SUMMARY|verify:|FAIL" "$logs/memcheck12.log" | tail -n 10 ;;
        racecheck12)
            step racecheck12 150 compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 \
                "${java[@]}" org.tttbench.verify.Verifier --model-size 12m --dtype float32 --no-model --no-intervals
            grep -E "RACECHECK SUMMARY|ERROR SUMMARY|verify:|FAIL" "$logs/racecheck12.log" | tail -n 10 ;;
        verify125)
            step verify125 150 "${java[@]}" org.tttbench.verify.Verifier --model-size 125m --dtype float32,bfloat16
            summary verify125 ;;
        jmh)
            : >"$out/jmh.jsonl"
            for run in "125m linear --inner-only" "125m mlp --inner-only" "125m linear" "125m mlp" "1b linear"; do
                set -- $run
                name="jmh-$1-$2${3:+-inner}"
                step "$name" 90 "$cli" --backend cuda --model-size "$1" --ttt-type "$2" --backward ${3:-} --json
                grep '^{' "$logs/$name.log" | tee -a "$out/jmh.jsonl"
                grep -E "FAILED|refusing|Exception" "$logs/$name.log" | head -n 3
            done ;;
        breakdown)
            step breakdown 120 "${java[@]}" org.tttbench.gpu.BackwardTiming --model-size 125m --ttt-type linear,mlp \
                --what inner,full --breakdown --repeats 5
            sed -n '/^summary/,$p' "$logs/breakdown.log"
            grep -E "^    " "$logs/breakdown.log" | head -n 60 ;;
        memory)
            step memory 120 "${java[@]}" org.tttbench.gpu.BackwardTiming --model-size 125m --ttt-type linear \
                --what full,inner --intervals 1,2,4,8,16 --repeats 5 --no-graph
            sed -n '/^summary/,$p' "$logs/memory.log" ;;
        *)
            echo "unknown step $s" ;;
    esac
done
