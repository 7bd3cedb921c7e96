#!/usr/bin/env bash
# Runs a sweep plan with the suite's jar, so users need not spell out the java command:
#   scripts/sweep.sh PLAN.json --results DIR [--status|--csv|--dry-run|…]
#   scripts/sweep.sh slurm PLAN.json --results DIR --shards 8 --out sweep.sbatch
# JAVA_HOME picks the JDK (25 or newer); TTTBENCH_JAR another jar than target/benchmarks.jar.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jar="${TTTBENCH_JAR:-$root/target/benchmarks.jar}"
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
if [ ! -f "$jar" ]; then
  echo "sweep.sh: $jar not found; build it with: ./mvnw -Pjmh package -DskipTests" >&2
  exit 2
fi
exec "$java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -jar "$jar" sweep "$@"
