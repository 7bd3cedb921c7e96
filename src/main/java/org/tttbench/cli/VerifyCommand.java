package org.tttbench.cli;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.tttbench.backend.Backend;
import org.tttbench.config.BackendKind;
import org.tttbench.config.BenchmarkKind;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.Preset;
import org.tttbench.config.TttType;
import org.tttbench.config.Workload;
import org.tttbench.harness.Backends;
import org.tttbench.verify.Row;
import org.tttbench.verify.Verifier;

/**
 * {@code tttbench verify …}: every check of {@link Verifier#check} for each model size and dtype
 * asked for, or with {@code --gate} the check a benchmark runs in its setup ({@link Verifier#gate}),
 * one row per comparison and a summary.
 */
public final class VerifyCommand {

    static final String USAGE = """
            usage: tttbench verify [--model-size S[,S…]] [--ttt-type linear|mlp|both] [--dtype D[,D…]|all]
                                   [--backend auto|cuda|hip|cpu] [--batch N[,N…]] [--seq-len N] [--mini-batch N[,N…]]
                                   [--layers N] [--seed N] [--tf32] [--no-model] [--no-backward] [--no-intervals]
                   tttbench verify --gate forward|backward|innerForward|innerBackward --model-size S --ttt-type T
                                   --dtype D [--batch N] [--seq-len N] [--mini-batch N] [--checkpoint-interval C]
                                   [--tf32] [--seed N] [--backend …]
              Every forward and backward op of the backend (default: the GPU that auto finds), the inner scans
              with every kernel the device runs, the whole forward and the whole training step, on random
              inputs, against the CPU reference backend at the same storage type; then, on the backend alone,
              that gradients at checkpoint intervals 1, 2, 4, 8, 16 agree (one sequence of 16 mini-batches)
              and that a second run gives the same bits. A bfloat16 or float16 check first runs the same checks
              with the backend's kernels instantiated for float32 on the same (rounded) inputs, at float32
              tolerance; its own rows are held to 3 × the CPU reference's 16-bit-versus-float32 spread
              (15 × for the token-index and learning-rate-bias gradients, sums of cancelling terms).
              --no-backward skips the backward, --no-intervals the last two checks. Lists of model sizes,
              batches and mini-batches check every combination (the grid of a sweep: --model-size
              125m-h32,125m,760m --mini-batch 8,16,32,64 --batch 1,4,16). Defaults: --model-size 12m,
              --ttt-type both, --dtype all, --batch 2, --seq-len 64 or 4 mini-batches if longer,
              --mini-batch 16, the preset's layer count. --backend cpu checks the CPU backend against
              itself (the harness, not a device).
              --gate runs what a benchmark of that configuration checks in setup before it is timed (the
              flags as the standard flags give them, and with their defaults: --batch 1, --seq-len 2048,
              --mini-batch 16, --checkpoint-interval 1); with the seed of a failed setup it repeats that check.
              Exit status 1 if any comparison fails, 2 for bad input or a backend that cannot be opened.
            """;

    private VerifyCommand() {
    }

    /** The parsed command line; nulls are left to the mode's defaults. */
    record Options(List<String> sizes, List<TttType> types, List<DType> dtypes, BackendKind backend,
            List<Integer> batches, Integer seqLen, List<Integer> miniBatches, Integer interval, int layers, long seed,
            boolean tf32, boolean model,
            boolean backward, boolean intervals, BenchmarkKind gate, boolean help) {

        static Options parse(String[] args) {
            List<String> sizes = List.of("12m");
            List<TttType> types = List.of(TttType.LINEAR, TttType.MLP);
            List<DType> dtypes = List.of(DType.values());
            BackendKind backend = BackendKind.AUTO;
            List<Integer> batches = null;
            Integer seqLen = null;
            List<Integer> miniBatches = null;
            Integer interval = null;
            int layers = 0;
            long seed = System.nanoTime();
            boolean tf32 = false;
            boolean model = true;
            boolean backward = true;
            boolean intervals = true;
            BenchmarkKind gate = null;
            boolean help = false;
            List<String> listOnly = new ArrayList<>();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                String v = null;
                int eq = a.indexOf('=');
                if (a.startsWith("--") && eq > 0) {
                    v = a.substring(eq + 1);
                    a = a.substring(0, eq);
                }
                switch (a) {
                    case "--help", "-h" -> help = true;
                    case "--tf32" -> tf32 = true;
                    case "--no-model", "--no-backward", "--no-intervals" -> {
                        listOnly.add(a);
                        model &= !a.equals("--no-model");
                        backward &= !a.equals("--no-backward");
                        intervals &= !a.equals("--no-intervals");
                    }
                    case "--model-size", "--ttt-type", "--dtype", "--backend", "--batch", "--seq-len", "--mini-batch",
                            "--layers", "--seed", "--gate", "--checkpoint-interval" -> {
                        if (v == null) {
                            if (i + 1 >= args.length) throw new IllegalArgumentException(a + " needs a value");
                            v = args[++i];
                        }
                        switch (a) {
                            case "--model-size" -> {
                                sizes = selection(a, v);
                                sizes.forEach(Preset::byName);
                            }
                            case "--ttt-type" -> types = v.equals("both") ? List.of(TttType.LINEAR, TttType.MLP)
                                    : selection(a, v).stream().map(TttType::parse).toList();
                            case "--dtype" -> dtypes = v.equals("all") ? List.of(DType.values())
                                    : selection(a, v).stream().map(DType::parse).toList();
                            case "--backend" -> backend = BackendKind.parse(v);
                            case "--batch" -> batches = positives(a, v);
                            case "--seq-len" -> seqLen = positive(a, v);
                            case "--mini-batch" -> miniBatches = positives(a, v);
                            case "--checkpoint-interval" -> interval = positive(a, v);
                            case "--layers" -> {
                                layers = positive(a, v);
                                listOnly.add(a);
                            }
                            case "--seed" -> seed = parseSeed(v);
                            case "--gate" -> gate = BenchmarkKind.byMethod(v);
                            default -> throw new IllegalStateException(a);
                        }
                    }
                    default -> throw new IllegalArgumentException("unknown option '" + args[i] + "'");
                }
            }
            if (gate != null) {
                if (!listOnly.isEmpty()) throw new IllegalArgumentException(listOnly.get(0) + " does not apply to --gate");
                if (sizes.size() != 1 || types.size() != 1 || dtypes.size() != 1
                        || batches != null && batches.size() != 1 || miniBatches != null && miniBatches.size() != 1) {
                    throw new IllegalArgumentException("--gate checks one configuration: give one --model-size, "
                            + "--ttt-type and --dtype, and at most one --batch and --mini-batch");
                }
            } else {
                if (interval != null) throw new IllegalArgumentException("--checkpoint-interval applies to --gate only");
                if (seqLen != null) {
                    for (int k : miniBatches == null ? List.of(16) : miniBatches) {
                        if (seqLen % k != 0) {
                            throw new IllegalArgumentException("--seq-len " + seqLen + " is not divisible by --mini-batch " + k);
                        }
                    }
                }
            }
            return new Options(sizes, types, dtypes, backend, batches, seqLen, miniBatches, interval, layers, seed, tf32, model,
                    backward, intervals, gate, help);
        }

        /** The comma-separated values of a selecting flag; none is an error. */
        private static List<String> selection(String flag, String v) {
            List<String> values = Arrays.stream(v.split(",", -1)).map(String::trim).filter(s -> !s.isEmpty()).toList();
            if (values.isEmpty()) throw new IllegalArgumentException(flag + " '" + v + "' selects nothing");
            return values;
        }

        /** The comma-separated positive integers of a list flag. */
        private static List<Integer> positives(String flag, String v) {
            return selection(flag, v).stream().map(x -> positive(flag, x)).toList();
        }

        private static int positive(String flag, String v) {
            int n;
            try {
                n = Integer.parseInt(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(flag + " must be a positive integer, got '" + v + "'");
            }
            if (n <= 0) throw new IllegalArgumentException(flag + " must be a positive integer, got " + n);
            return n;
        }

        private static long parseSeed(String v) {
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--seed must be an integer, got '" + v + "'");
            }
        }
    }

    /** For running without the CLI: {@code java -cp benchmarks.jar org.tttbench.cli.VerifyCommand …}. */
    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /**
     * @return 0 when everything passed, 1 when a comparison failed, 2 for bad input or a backend that
     *         cannot be opened
     */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        Options o;
        try {
            o = Options.parse(args);
        } catch (IllegalArgumentException e) {
            err.println("verify: " + e.getMessage() + " (tttbench verify --help lists the options)");
            return 2;
        }
        if (o.help()) {
            out.print(USAGE);
            return 0;
        }
        return o.gate() != null ? gate(o, out, err) : checkAll(o, out, err);
    }

    /** The backend under test, or null after saying on {@code err} why there is none. */
    private static Backend open(Options o, DType dtype, PrintStream err) {
        Backend b;
        try {
            b = Backends.open(o.backend(), dtype, o.tf32());
        } catch (RuntimeException e) {
            err.println("verify: cannot open backend " + o.backend().flag() + ": " + e.getMessage());
            return null;
        }
        if (o.backend() != BackendKind.CPU && b.name().equals("cpu")) {
            b.close();
            err.println("verify: no GPU backend could be opened, so there is nothing to check against the CPU reference"
                    + " (--backend cpu checks the CPU backend against itself)");
            return null;
        }
        return b;
    }

    /** Opens the kind {@code t} is again, in another storage type: its kernels' float32 instantiation. */
    private static Verifier.Opener twinOf(Backend t) {
        BackendKind kind = BackendKind.parse(t.name());
        return storage -> Backends.open(kind, storage, false);
    }

    private static int checkAll(Options o, PrintStream out, PrintStream err) {
        List<Integer> batches = o.batches() == null ? List.of(2) : o.batches();
        List<Integer> miniBatches = o.miniBatches() == null ? List.of(16) : o.miniBatches();
        int failed = 0;
        int total = 0;
        boolean first = true;
        for (String size : o.sizes()) {
            int point = 0;  // which (mini-batch, batch) of the lists: the first keeps the seeds of a single point
            for (int miniBatch : miniBatches) {
                for (int batch : batches) {
                    for (DType dtype : o.dtypes()) {
                        try (Backend t = open(o, dtype, err)) {
                            if (t == null) return 2;
                            if (first) {
                                out.println("verify: " + t.name() + " backend on " + t.device() + " against the CPU reference; seed "
                                        + o.seed() + (o.tf32() ? "; TF32 allowed" : ""));
                                first = false;
                            }
                            long seed = o.seed() ^ (31L * size.hashCode() + dtype.ordinal()) ^ (1_000_003L * point);
                            List<Row> rows = checkPoint(o, t, size, miniBatch, batch, dtype, seed, out);
                            total += rows.size();
                            failed += (int) rows.stream().filter(r -> !r.passed()).count();
                        }
                    }
                    point++;
                }
            }
        }
        out.println();
        out.println(failed == 0 ? "verify: all " + total + " comparisons passed"
                : "verify: " + failed + " of " + total + " comparisons FAILED");
        return failed == 0 ? 0 : 1;
    }

    /** Every check of one model size, mini-batch, batch and dtype on backend {@code t}. */
    private static List<Row> checkPoint(Options o, Backend t, String size, int miniBatch, int batch, DType dtype, long seed,
            PrintStream out) {
        Preset preset = Preset.byName(size);
        int seqLen = o.seqLen() != null ? o.seqLen() : Math.max(64, 4 * miniBatch);
        int layers = o.layers() > 0 ? o.layers() : preset.layers();
        ModelConfig p = preset.model(o.types().get(0), miniBatch);
        ModelConfig shapes = new ModelConfig(p.vocab(), p.hidden(), layers, p.heads(), p.ffn(), miniBatch, p.tttType());
        Set<Verifier.Part> parts = EnumSet.of(Verifier.Part.OPS, Verifier.Part.INNER, Verifier.Part.PROBLEM);
        if (o.model()) parts.add(Verifier.Part.MODEL);
        // The CPU reference against itself checks the harness; its intervals have tests of their own.
        if (o.intervals() && !t.name().equals("cpu")) parts.add(Verifier.Part.INTERVALS);
        out.println();
        out.println("== " + size + " " + dtype.flag() + ": D " + shapes.hidden() + ", H " + shapes.heads() + ", F "
                + shapes.headDim() + ", I " + shapes.ffn() + ", batch " + batch + ", seq-len " + seqLen + ", mini-batch "
                + miniBatch + ", " + layers + " layers in the model check");
        return Verifier.check(t, twinOf(t), new Verifier.Scope(shapes, o.types(), batch, seqLen, parts, o.backward()),
                o.tf32(), seed, out);
    }

    private static int gate(Options o, PrintStream out, PrintStream err) {
        Workload w;
        try {
            w = new Workload(o.sizes().get(0), o.types().get(0), false, false, o.batches() == null ? 1 : o.batches().get(0),
                    o.seqLen() == null ? 2048 : o.seqLen(), o.miniBatches() == null ? 16 : o.miniBatches().get(0),
                    o.dtypes().get(0), o.interval() == null ? 1 : o.interval(), o.tf32(), null).as(o.gate());
        } catch (IllegalArgumentException e) {
            err.println("verify: " + e.getMessage());
            return 2;
        }
        try (Backend t = open(o, w.dtype(), err)) {
            if (t == null) return 2;
            out.println("verify: the setup check of " + w.modelSize() + " " + w.tttType().flag() + " " + w.dtype().flag()
                    + " " + w.benchmark().method() + ", batch " + w.batch() + ", seq-len " + w.seqLen() + ", c="
                    + w.checkpointInterval() + " on the " + t.name() + " backend (" + t.device() + "); seed " + o.seed());
            Verifier.Verified v = Verifier.gate(t, twinOf(t), w, o.seed(), out);
            long failed = v.rows().stream().filter(r -> !r.passed()).count();
            out.println();
            out.println("verify: kernels " + (v.kernel() == null ? "(the backend has no choice)" : v.kernel()) + "; "
                    + (failed == 0 ? "all " + v.rows().size() + " comparisons passed"
                            : failed + " of " + v.rows().size() + " comparisons FAILED"));
            return failed == 0 ? 0 : 1;
        }
    }
}
