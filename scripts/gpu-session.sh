#!/usr/bin/env bash
# One session on a GPU machine: unpack the bundle, then run the steps named on the command line,
# each under its own time limit, logging into $OUT (default ./gpu-out): STEP.log for each, and
# runs.jsonl with every standard-flag result line. What ran comes back even when the session is
# cut short: logs.tgz is refreshed after every step.
#
#   info                  the card and its clocks (nvidia-smi)
#   verify:SIZES:DTYPES   verify at those sizes and dtypes (comma lists), both ttt-types
#   smoke                 the runtime checks and graph replays of every benchmark (GpuSmoke, 12m)
#   runs:FILE             every line of FILE is a label and standard flags; each runs with the
#                         bundle (--json, 2 warmups, 5 repeats unless the line says) into runs.jsonl
#   before:JAR:FILE       the same lines with another build's benchmarks.jar (run on the bundle's
#                         Java), labelled before, for comparisons in one sitting
#   validate:DTYPES       validate every golden case of src/test/resources/golden on the GPU
#   timing:ARGS           tools.Timing with ARGS (commas for spaces)
#   memcheck              verify at 12m, float32, under compute-sanitizer memcheck
#   planted:JAR           a jar of planted kernel objects first on the class path: every run of
#                         runs must refuse (no result line, non-zero exit)
#   refs:PLAN             a sweep of PLAN with the reference drivers beside this suite (refs/)
#
# usage: scripts/gpu-session.sh BUNDLE.tar.xz STEP...
set -uo pipefail

bundle="$1"
shift
out="${OUT:-$PWD/gpu-out}"
logs=/tmp/tttbench-session
work=/tmp/tttbench-run
mkdir -p "$out" "$logs"
rm -rf "$work" && mkdir -p "$work" && tar -xJf "$bundle" -C "$work" || { echo "cannot unpack $bundle"; exit 1; }
home="$work/tttbench"
jvm=("$home/runtime/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow)
cli="$home/bin/tttbench"
export TTTBENCH_CACHE_DIR="$work/kernel-cache"

# step NAME SECONDS COMMAND...: runs COMMAND with its output in NAME.log, says how it ended.
step() {
    local name="$1" limit="$2" start rc
    shift 2
    start=$(date +%s)
    timeout "$limit" "$@" >"$logs/$name.log" 2>&1
    rc=$?
    echo "== $name: exit $rc after $(($(date +%s) - start)) s" | tee -a "$logs/steps.txt"
    tar -czf "$out/logs.tgz" -C "$logs" .
    return $rc
}

# runs LABEL_PREFIX FILE COMMAND...: each line "label flags..." of FILE through COMMAND.
runs() {
    local prefix="$1" file="$2" label flags line
    shift 2
    while read -r label flags; do
        [ -z "$label" ] || [ "${label#\#}" != "$label" ] && continue
        # shellcheck disable=SC2086
        if step "$prefix-$label" 180 "$@" $flags --warmup 2 --repeats 5 --json; then
            line="$(grep '^{' "$logs/$prefix-$label.log" | tail -n 1)"
            echo "{\"label\":\"$prefix-$label\",\"result\":$line}" >>"$out/runs.jsonl"
            echo "$prefix-$label $(echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["time_ms"], r.get("kernel"))')"
        else
            tail -n 3 "$logs/$prefix-$label.log"
        fi
    done <"$file"
}

for s in "$@"; do
    IFS=: read -r what a b <<<"$s"
    case "$what" in
        info)
            step info 30 nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu --format=csv
            cat "$logs/info.log" ;;
        verify)
            step "verify-${a//,/-}-${b//,/-}" 400 "$cli" verify --model-size "$a" --dtype "$b" --backend cuda
            grep -E "FAIL|ERROR|verify:" "$logs/verify-${a//,/-}-${b//,/-}.log" | tail -n 15 ;;
        validate)
            for d in ${a//,/ }; do
                for g in src/test/resources/golden/*.safetensors; do
                    step "validate-$d-$(basename "$g" .safetensors)" 120 "$cli" validate "$g" --backend cuda --dtype "$d"
                done
            done
            grep -h -E "FAIL|validate" "$logs"/validate-*.log | tail -n 12 ;;
        smoke)
            step smoke 240 "${jvm[@]}" -cp "$home/lib/benchmarks.jar" org.tttbench.tools.GpuSmoke cuda --seq-len 256
            grep -E "FAIL|smoke:" "$logs/smoke.log" | tail -n 10 ;;
        runs)
            runs after "$a" "$cli" --backend cuda ;;
        before)
            runs before "$b" "${jvm[@]}" -jar "$a" --backend cuda ;;
        timing)
            step "timing" 300 "${jvm[@]}" -cp "$home/lib/benchmarks.jar" org.tttbench.tools.Timing ${a//,/ }
            sed -n '/^summary/,$p' "$logs/timing.log" ;;
        memcheck)
            step memcheck 300 compute-sanitizer --tool memcheck --leak-check no --error-exitcode 9 \
                "${jvm[@]}" -cp "$home/lib/benchmarks.jar" org.tttbench.cli.Main verify --model-size 12m --dtype float32
            grep -E "ERROR SUMMARY|verify:|FAIL" "$logs/memcheck.log" | tail -n 5 ;;
        planted)
            while read -r label flags; do
                [ -z "$label" ] || [ "${label#\#}" != "$label" ] && continue
                # shellcheck disable=SC2086
                step "planted-$label" 180 "${jvm[@]}" -cp "$a:$home/lib/benchmarks.jar" org.tttbench.cli.Main \
                    --backend cuda $flags --warmup 1 --repeats 1 --json
                echo "planted-$label: exit $?, result lines: $(grep -c '^{' "$logs/planted-$label.log")"
                grep -m 2 -E "does not match|refusing|FAIL" "$logs/planted-$label.log"
            done <"$b" ;;
        refs)
            step "refs" 560 "${jvm[@]}" -jar "$home/lib/benchmarks.jar" sweep "$a" --results "$out/refs-results" \
                --devices 0 --timeout 240
            "${jvm[@]}" -jar "$home/lib/benchmarks.jar" sweep "$a" --results "$out/refs-results" --csv \
                >"$out/refs.csv" 2>>"$logs/refs.log"
            tar -czf "$out/refs-results.tgz" -C "$out" refs-results && rm -rf "$out/refs-results"
            cat "$out/refs.csv" ;;
        *)
            echo "unknown step $s" ;;
    esac
done
tar -czf "$out/logs.tgz" -C "$logs" .
