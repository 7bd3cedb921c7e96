package org.tttbench.sweep;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/** Fake external implementations (bash scripts) and helpers to call the commands in-process. */
final class Fakes {

    private Fakes() {}

    /**
     * A script that accepts the standard flags and prints a result line built from them,
     * after some noise on stdout and stderr. It appends its model size and flags to
     * {@code calls.log} beside it, sleeps FAKE_SLEEP seconds, and reports the visible GPU.
     */
    static Path okScript(Path dir, String name, double sleepSeconds) throws IOException {
        return script(dir, name, """
                #!/bin/bash
                set -e
                BW=false; INNER=false; C=1; DT=float32; T=linear
                echo "$*" >> "$(dirname "$0")/calls.log"
                while [ $# -gt 0 ]; do
                  case "$1" in
                    --model-size) S=$2; shift;; --ttt-type) T=$2; shift;; --batch) B=$2; shift;;
                    --seq-len) L=$2; shift;; --mini-batch) K=$2; shift;; --dtype) DT=$2; shift;;
                    --backward) BW=true;; --inner-only) INNER=true;; --checkpoint-interval) C=$2; shift;;
                    --json|--warmup|--repeats|--comment) [ "$1" = --json ] || shift;;
                    *) echo "unknown flag $1" >&2; exit 2;;
                  esac; shift
                done
                echo "warming up" >&2
                echo "not a result"
                sleep %s
                echo "{\\"implementation\\":\\"%s\\",\\"model_size\\":\\"$S\\",\\"ttt_type\\":\\"$T\\",\\"backward\\":$BW,\\"inner_only\\":$INNER,\\"batch\\":$B,\\"seq_len\\":$L,\\"mini_batch\\":$K,\\"checkpoint_interval\\":$C,\\"dtype\\":\\"$DT\\",\\"num_params\\":1000,\\"time_ms\\":$((B * 10 + K)).25,\\"throughput\\":$((L * 100)),\\"device\\":\\"cuda=${CUDA_VISIBLE_DEVICES:-none},hip=${HIP_VISIBLE_DEVICES:-none}\\"}"
                """.formatted(sleepSeconds, name));
    }

    /** A valid result line of 12m linear, seq-len 64, mini-batch 16, batch 1, float32, forward, full model. */
    static final String GOOD_LINE = "{\"implementation\":\"fake\",\"model_size\":\"12m\",\"ttt_type\":\"linear\","
            + "\"backward\":false,\"inner_only\":false,\"batch\":1,\"seq_len\":64,\"mini_batch\":16,"
            + "\"checkpoint_interval\":1,\"dtype\":\"float32\",\"num_params\":1000,\"time_ms\":12.5,"
            + "\"throughput\":5120.0,\"device\":\"cpu\"}";

    /** A script that exits 0 after printing {@code stdout} exactly (a file beside it holds the text). */
    static Path printingScript(Path dir, String name, String stdout) throws IOException {
        Path text = dir.resolve(name + ".out");
        Files.writeString(text, stdout);
        return script(dir, name, "#!/bin/bash\ncat '" + text + "'\n");
    }

    /**
     * A script like {@link #okScript} that appends one line per run to {@code runs.log} beside it:
     * its batch, start and end time in nanoseconds, and the device variables it saw.
     */
    static Path recordingScript(Path dir, String name, double sleepSeconds) throws IOException {
        Path ok = okScript(dir, name + "-inner", sleepSeconds);
        return script(dir, name, """
                #!/bin/bash
                START=$(date +%%s%%N)
                OUT=$(%s "$@") || exit $?
                END=$(date +%%s%%N)
                B=$(echo "$OUT" | tail -n 1 | sed 's/.*"batch":\\([0-9]*\\).*/\\1/')
                echo "batch=$B start=$START end=$END cuda=${CUDA_VISIBLE_DEVICES:-none} hip=${HIP_VISIBLE_DEVICES:-none}" \
                  >> "$(dirname "$0")/runs.log"
                echo "$OUT"
                """.formatted(ok));
    }

    /** A script that prints some output and exits with status 3. */
    static Path failingScript(Path dir, String name) throws IOException {
        StringBuilder body = new StringBuilder("#!/bin/bash\n");
        body.append("for i in $(seq 1 80); do echo \"line $i\"; done\n");
        body.append("echo 'java.lang.OutOfMemoryError: device memory' >&2\nexit 3\n");
        return script(dir, name, body.toString());
    }

    static Path script(Path dir, String name, String body) throws IOException {
        Path p = dir.resolve(name + ".sh");
        Files.writeString(p, body);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        return p;
    }

    /** Exit status and output of one in-process command. */
    record Result(int status, String out, String err) {}

    static Result sweep(String... args) {
        return call(Command.SWEEP, args);
    }

    static Result compare(String... args) {
        return call(Command.COMPARE, args);
    }

    enum Command { SWEEP, COMPARE }

    private static Result call(Command command, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            int status = switch (command) {
                case SWEEP -> SweepCommand.run(args, o, e);
                case COMPARE -> CompareCommand.run(args, o, e);
            };
            return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        }
    }
}
