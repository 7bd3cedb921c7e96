#!/usr/bin/env bash
# Makes a self-contained bundle that runs on a GPU machine with no JDK installed:
#   dist/tttbench/bin/tttbench          launcher: bundled java + the jar, from wherever it is unpacked
#   dist/tttbench/lib/benchmarks.jar    the suite (JMH, the kernels of every vendor)
#   dist/tttbench/runtime/              a jlink'd Java runtime with only the modules the jar uses
#   dist/tttbench.tar.xz                the same folder, packed
#
# usage: scripts/bundle.sh
#   BUILD_DIR  Maven build folder to build into / take the jar from (default target)
#   JAR        an already built benchmarks.jar to bundle instead of building one
#   DIST_DIR   where to write (default dist)
#   JAVA_HOME  the JDK 25 whose jlink and jdeps are used (default: the one on PATH)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/target}"
dist="${DIST_DIR:-$root/dist}"
bin="${JAVA_HOME:+$JAVA_HOME/bin/}"
# The unpacked bundle; the packed .tar.xz, what travels to a GPU machine, is about two thirds of it
# (the jar and the runtime are compressed already).
limit_mb=60

die() { echo "bundle: ERROR: $*" >&2; exit 1; }

"${bin}jlink" --version >/dev/null 2>&1 || die "jlink not found: set JAVA_HOME to a JDK 25"
jdk_major="$("${bin}java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
[ "$jdk_major" -ge 25 ] 2>/dev/null || die "JDK 25 or newer needed for jlink, found ${jdk_major:-none} (set JAVA_HOME)"

if [ -n "${JAR:-}" ]; then
    jar="$JAR"
else
    (cd "$root" && ./mvnw -q -B -Pjmh -DskipTests "-Dtttbench.buildDir=$build_dir" package)
    jar="$build_dir/benchmarks.jar"
fi
[ -f "$jar" ] || die "no jar at $jar"

# The modules the jar's classes use, plus what the JVM that JMH forks needs to report on itself.
# java.desktop (AWT, for the charts of `report`) is left out: it alone would take the bundle over
# its size limit, and a GPU machine only needs to run benchmarks; `report` runs on a full JDK.
# java.sql is left out too, and with it java.xml (4.4 MB of the runtime): only the chart library
# needs it, which cannot run without java.desktop anyway; Jackson uses both only when present.
# java.logging, which JMH and Jackson need and java.sql brought in, is named instead.
modules="$("${bin}jdeps" --ignore-missing-deps --print-module-deps --multi-release 25 "$jar")"
modules="$(echo "$modules,java.logging,java.management,jdk.management,jdk.unsupported" | tr ',' '\n' \
    | grep -v -x -e 'java.desktop' -e 'java.sql' | sort -u | paste -sd, -)"
echo "bundle: modules $modules"

out="$dist/tttbench"
rm -rf "$out" "$dist/tttbench.tar.xz"
mkdir -p "$out/bin" "$out/lib"
"${bin}jlink" --add-modules "$modules" --output "$out/runtime" \
    --strip-debug --no-header-files --no-man-pages --compress=zip-9
# The JVM's own symbol table only names frames in crash logs; without it the runtime is 4 MB smaller.
if command -v strip >/dev/null 2>&1; then
    strip --strip-unneeded "$out/runtime/lib/server/libjvm.so"
fi
# The jar, rewritten at the strongest deflate level and without the chart library (1.5 MB), which
# needs java.desktop and so cannot run on this runtime: `report` runs from the full build. Each
# kernel object is stored xz-compressed as NAME.xz (KernelImages reads either): the many variants
# of one kernel family share most of their bytes, which xz finds and deflate does not (kernels
# 23 MB deflated, 7 MB as xz).
slim_src="$(mktemp -d)"
trap 'rm -rf "$slim_src"' EXIT
cat >"$slim_src/SlimJar.java" <<'EOF'
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.Deflater;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;

public class SlimJar {
    public static void main(String[] args) throws Exception {
        try (ZipInputStream in = new ZipInputStream(new BufferedInputStream(Files.newInputStream(Path.of(args[0]))));
             ZipOutputStream out = new ZipOutputStream(new BufferedOutputStream(Files.newOutputStream(Path.of(args[1]))))) {
            out.setLevel(Deflater.BEST_COMPRESSION);
            for (ZipEntry e; (e = in.getNextEntry()) != null; ) {
                String name = e.getName();
                if (name.startsWith("org/jfree/") || name.startsWith("META-INF/maven/org.jfree/")) continue;
                // Kernel objects only: the sources under kernels/src/ stay as they are, for run-time compiles.
                boolean kernel = name.startsWith("kernels/") && !name.startsWith("kernels/src/") && !name.endsWith("/")
                        && !name.endsWith(".txt");
                ZipEntry copy = new ZipEntry(kernel ? name + ".xz" : name);
                copy.setTime(e.getTime());
                out.putNextEntry(copy);
                if (kernel) {
                    XZOutputStream xz = new XZOutputStream(out, new LZMA2Options(9));
                    in.transferTo(xz);
                    xz.finish();
                } else {
                    in.transferTo(out);
                }
                out.closeEntry();
            }
        }
    }
}
EOF
"${bin}java" -cp "$jar" "$slim_src/SlimJar.java" "$jar" "$out/lib/benchmarks.jar" || die "could not rewrite $jar"
cat >"$out/bin/tttbench" <<'EOF'
#!/bin/sh
# Runs the suite with the bundled Java runtime, from wherever the bundle is unpacked or linked.
here="$(dirname "$(readlink -f "$0")")/.."
# Usage lines name the command the user typed. verify and validate hold a whole model's weights
# and gradients on the host several times over (12 GB and more at 760m), past Java's default of a
# quarter of the memory on a node that has plenty: the suite may take three quarters.
TTTBENCH_COMMAND="${TTTBENCH_COMMAND:-tttbench}" exec "$here/runtime/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -XX:MaxRAMPercentage=75 -jar "$here/lib/benchmarks.jar" "$@"
EOF
chmod +x "$out/bin/tttbench"

# The launcher must work before the bundle goes anywhere.
"$out/bin/tttbench" --help >/dev/null || die "the bundled launcher failed: $out/bin/tttbench --help"

size_mb=$(( $(du -sk "$out" | cut -f1) / 1024 ))
[ "$size_mb" -lt "$limit_mb" ] || die "bundle is ${size_mb} MB, over the ${limit_mb} MB limit"
(cd "$dist" && tar -cf - tttbench | xz -9 -T0 >tttbench.tar.xz)
echo "bundle: $out (${size_mb} MB), $dist/tttbench.tar.xz ($(( $(stat -c %s "$dist/tttbench.tar.xz") / 1024 / 1024 )) MB)"
