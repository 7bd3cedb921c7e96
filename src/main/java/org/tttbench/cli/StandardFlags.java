package org.tttbench.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.tttbench.config.BackendKind;
import org.tttbench.config.DType;
import org.tttbench.config.MemoryEstimate;
import org.tttbench.config.Preset;
import org.tttbench.config.RunOptions;
import org.tttbench.config.TttType;
import org.tttbench.config.Workload;
import org.tttbench.io.Safetensors;

/**
 * The standard flags every implementation of the family accepts (SPEC §5), plus this suite's
 * {@code --backend}, {@code --tf32}, {@code --weights} and {@code --no-graph}. {@code --flag value}
 * and {@code --flag=value} are both accepted; a repeated flag takes its last value.
 */
public final class StandardFlags {

    /** Flags that take a value, with what the value may be (for messages). */
    static final Map<String, String> VALUED = Map.ofEntries(
            Map.entry("--model-size", Preset.names()),
            Map.entry("--ttt-type", "linear, mlp"),
            Map.entry("--batch", "a positive integer"),
            Map.entry("--seq-len", "a positive integer"),
            Map.entry("--mini-batch", "a positive integer"),
            Map.entry("--dtype", "float16, bfloat16, float32"),
            Map.entry("--warmup", "an integer >= 0"),
            Map.entry("--repeats", "a positive integer"),
            Map.entry("--checkpoint-interval", "a positive integer"),
            Map.entry("--comment", "any text"),
            Map.entry("--backend", "auto, cpu, hip, cuda"),
            Map.entry("--weights", "a safetensors file"));

    static final List<String> SWITCHES = List.of("--backward", "--json", "--inner-only", "--tf32", "--no-graph",
            "--verbose");

    /** A parsed command line: what is measured, and how it is run. */
    public record Options(Workload workload, RunOptions run) {
    }

    /**
     * How the user started the suite, for usage lines: the bundle's launcher sets
     * TTTBENCH_COMMAND to its own path; otherwise it is the jar.
     */
    static String command() {
        String c = System.getenv("TTTBENCH_COMMAND");
        return c == null || c.isBlank() ? "java -jar benchmarks.jar" : c;
    }

    public static String usage() {
        String pad = " ".repeat(Math.max(0, command().length() - "tttbench".length()));
        StringBuilder out = new StringBuilder();
        for (String line : USAGE.split("\n", -1)) {
            // Continuation lines of the first usage line stay under its first flag.
            String l = line.startsWith(" ".repeat(16) + "[") ? pad + line : line;
            out.append(l.replace("tttbench ", command() + " ")).append('\n');
        }
        return out.substring(0, out.length() - 1);
    }

    private static final String USAGE = """
            usage: tttbench [--model-size 125m] [--ttt-type linear|mlp] [--backward] [--batch 1]
                            [--seq-len 2048] [--mini-batch 16] [--dtype float32|bfloat16|float16]
                            [--warmup 3] [--repeats 5] [--json] [--inner-only] [--checkpoint-interval 1]
                            [--comment TEXT] [--backend auto|cpu|hip|cuda] [--tf32] [--weights FILE]
                            [--no-graph] [--verbose]
                   tttbench validate FILE.safetensors [--backend …] [--dtype …]
                   tttbench verify [--model-size …] [--ttt-type …] [--dtype …]
                   tttbench sweep PLAN.json --results DIR [...]
                   tttbench compare BASELINE CURRENT [--threshold 10]
                   tttbench report RESULTS_DIR
                   tttbench [JMH options]      (JMH's own command line: -h lists it; e.g. -l,
                                               -p modelSize=1.3b, -rf json, -prof gc)
            With no arguments it runs JMH's own command line: every benchmark at its default
            parameters (12m on the best backend present). --json prints the one-line result;
            stderr then carries one line per warmup and repeat and the setup notices (--verbose:
            JMH's full output).
            model sizes: %s
            """.formatted(Preset.names());

    private StandardFlags() {
    }

    /** True when the arguments are standard flags rather than JMH's own options. */
    public static boolean looksLikeStandardFlags(String[] args) {
        for (String a : args) {
            if (a.startsWith("--")) return true;
        }
        return false;
    }

    public static Workload parse(String[] args) throws UsageException {
        return parseOptions(args).workload();
    }

    public static Options parseOptions(String[] args) throws UsageException {
        boolean graph = true;
        String modelSize = "125m";
        TttType type = TttType.LINEAR;
        boolean backward = false;
        boolean json = false;
        boolean innerOnly = false;
        boolean tf32 = false;
        int batch = 1;
        int seqLen = 2048;
        int miniBatch = 16;
        DType dtype = DType.FLOAT32;
        int warmup = 3;
        int repeats = 5;
        int interval = 1;
        String comment = null;
        BackendKind backend = BackendKind.AUTO;
        Path weights = null;
        boolean verbose = false;
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.isBlank()) {
                throw new UsageException("argument " + (i + 1) + " is empty (a shell variable that expanded to nothing?)");
            }
            String flag = arg;
            String value = null;
            int eq = arg.indexOf('=');
            if (arg.startsWith("--") && eq > 0) {
                flag = arg.substring(0, eq);
                value = arg.substring(eq + 1);
            }
            if (SWITCHES.contains(flag)) {
                if (value != null) throw new UsageException(flag + " takes no value");
                switch (flag) {
                    case "--backward" -> backward = true;
                    case "--json" -> json = true;
                    case "--inner-only" -> innerOnly = true;
                    case "--tf32" -> tf32 = true;
                    case "--no-graph" -> graph = false;
                    case "--verbose" -> verbose = true;
                    default -> throw new IllegalStateException(flag);
                }
                continue;
            }
            if (!VALUED.containsKey(flag)) {
                throw new UsageException("unknown " + (arg.startsWith("-") ? "flag " : "argument ") + flag
                        + " (flags: " + String.join(", ", VALUED.keySet().stream().sorted().toList()) + ", "
                        + String.join(", ", SWITCHES) + ")");
            }
            if (value == null) {
                if (i + 1 >= args.length || (args[i + 1].startsWith("--") && !flag.equals("--comment"))) {
                    throw new UsageException(flag + " needs a value (" + VALUED.get(flag) + ")");
                }
                value = args[++i];
            }
            switch (flag) {
                case "--model-size" -> modelSize = parseWith(flag, value, v -> {
                    Preset.byName(v);
                    return v;
                });
                case "--ttt-type" -> type = parseWith(flag, value, TttType::parse);
                case "--batch" -> batch = positive(flag, value);
                case "--seq-len" -> seqLen = positive(flag, value);
                case "--mini-batch" -> miniBatch = positive(flag, value);
                case "--dtype" -> dtype = parseWith(flag, value, DType::parse);
                case "--warmup" -> warmup = integer(flag, value, 0);
                case "--repeats" -> repeats = positive(flag, value);
                case "--checkpoint-interval" -> interval = positive(flag, value);
                case "--comment" -> comment = value;
                case "--backend" -> backend = parseWith(flag, value, BackendKind::parse);
                case "--weights" -> {
                    weights = Path.of(value);
                    if (!Files.isRegularFile(weights) || !Files.isReadable(weights)) {
                        throw new UsageException("--weights: cannot read " + value);
                    }
                }
                default -> throw new IllegalStateException(flag);
            }
        }
        if (weights != null && innerOnly) {
            throw new UsageException("--weights applies to the full model; --inner-only times the inner loop on random"
                    + " inputs of the preset's shape (leave out one of the two)");
        }
        if (tf32 && backend == BackendKind.CPU) {
            throw new UsageException("--tf32: the cpu backend computes strict float32 only (allowed backends: auto, hip, cuda)");
        }
        Workload workload;
        try {
            workload = new Workload(modelSize, type, backward, innerOnly, batch, seqLen, miniBatch, dtype, interval, tf32,
                    weights);
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        if (workload.largestTensorElements() > Integer.MAX_VALUE) {
            throw new UsageException(String.format(java.util.Locale.ROOT,
                    "--batch %d --seq-len %d: its largest tensor would hold %,d elements (a tensor holds at most %,d),"
                            + " and the run would need about %s of memory", batch, seqLen,
                    workload.largestTensorElements(), Integer.MAX_VALUE,
                    MemoryEstimate.gib(MemoryEstimate.of(workload).total())));
        }
        if (weights != null) {
            // Every parameter of the chosen model, with its shape, from the header alone: before JMH starts.
            try {
                Safetensors.checkWeights(weights, workload.model());
            } catch (java.io.IOException e) {
                throw new UsageException("--weights: " + e.getMessage());
            }
        }
        try {
            return new Options(workload, new RunOptions(warmup, repeats, json, comment, backend, graph, true, verbose));
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
    }

    private static <T> T parseWith(String flag, String value, Function<String, T> parser) throws UsageException {
        try {
            return parser.apply(value);
        } catch (IllegalArgumentException e) {
            throw new UsageException(flag + ": " + e.getMessage());
        }
    }

    private static int positive(String flag, String value) throws UsageException {
        return integer(flag, value, 1);
    }

    private static int integer(String flag, String value, int min) throws UsageException {
        int v;
        try {
            // ASCII digits only: Integer.parseInt also takes other scripts' digits ("١٦").
            if (!value.strip().matches("[+-]?[0-9]+")) throw new NumberFormatException(value);
            v = Integer.parseInt(value.strip());
        } catch (NumberFormatException e) {
            throw new UsageException(flag + ": '" + value + "' is not an integer (" + VALUED.get(flag) + ")");
        }
        if (v < min) throw new UsageException(flag + " must be " + VALUED.get(flag) + ", got " + v);
        return v;
    }
}
