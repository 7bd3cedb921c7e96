package org.tttbench.verify;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;
import org.tttbench.backend.Backend;
import org.tttbench.backend.KernelChoice;
import org.tttbench.backend.ScanShape;
import org.tttbench.config.BackendKind;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.config.Workload;
import org.tttbench.cpu.CpuBackend;
import org.tttbench.harness.Backends;
import org.tttbench.validate.Tolerances;

/**
 * Checks a backend (a GPU's) against the CPU reference backend, the same host data uploaded to
 * both: every forward and backward op, the inner scans with every kernel the device can run, the
 * inner problems, the whole forward and training step ({@link #check}); and, in a benchmark's setup,
 * the work that benchmark times at a reduced size ({@link #checkConfig}).
 *
 * <p>In float32 every comparison is held to float32's tolerance for that kind of work. A 16-bit
 * check runs twice on the same inputs (rounded to the 16-bit type): first the backend opened in
 * float32, whose kernels are the same templates instantiated for float32, against the CPU backend
 * in float32 at float32 tolerance, so that a kernel error 16-bit rounding would hide is caught; then
 * the 16-bit backend against the CPU backend in the same 16-bit storage, each comparison held to
 * {@link Tolerances#SPREAD_FACTOR} times the spread of the two CPU runs, 16-bit against float32
 * ({@link Tolerances#reduced}).
 */
public final class Verifier {

    private Verifier() {
    }

    /** Opens the backend under test again with another storage type: the same kernels, instantiated for it. */
    @FunctionalInterface
    public interface Opener {
        Backend open(DType storage);
    }

    /** The parts of {@link #check}. */
    public enum Part {
        /** Every op outside the inner loop. */
        OPS,
        /** The inner scan with every kernel the backend can run. */
        INNER,
        /** The inner benchmarks' own problem. */
        PROBLEM,
        /** The whole forward (and training step). */
        MODEL,
        /** Backward only: gradients at checkpoint intervals 1 to 16 agree; reruns give the same bits. */
        INTERVALS
    }

    /**
     * What {@link #check} covers.
     *
     * @param shapes   the shapes of every op and layer, and the layer count of the whole-model checks
     *                 (its ttt-type is replaced by each of {@code types})
     * @param backward the backward of each part too
     */
    public record Scope(ModelConfig shapes, List<TttType> types, int batch, int seqLen, Set<Part> parts,
            boolean backward) {

        public Scope {
            types = List.copyOf(types);
            parts = Set.copyOf(parts);
        }
    }

    /**
     * What a benchmark's check verified.
     *
     * @param kernel the inner-scan kernels forced for the check, those the timed run uses ("forward /
     *               backward" for a training benchmark), or null where the backend has no choice of kernels
     * @param seed   the seed of the check's inputs: {@link #reproduce} runs it again
     * @param rows   every comparison
     */
    public record Verified(String kernel, long seed, List<Row> rows) {

        public boolean passed() {
            return rows.stream().allMatch(Row::passed);
        }
    }

    // ---------------------------------------------------------------- every op

    /**
     * The checks of {@code scope} on {@code test} against the CPU backend at its storage type.
     *
     * @param opener opens {@code test}'s backend in float32 for a 16-bit check (unused in float32)
     * @param tf32   float32 products ran on TF32 matrix units (float32 only)
     * @param log    where each row is printed as it is made, or null
     * @return every row; an op that threw ends its pass with a failed row
     */
    public static List<Row> check(Backend test, Opener opener, Scope scope, boolean tf32, long seed, PrintStream log) {
        return passes(test, opener, tf32, seed, log, null, c -> {
            ModelConfig s = scope.shapes();
            Set<Part> parts = scope.parts();
            int batch = scope.batch();
            int seqLen = scope.seqLen();
            if (parts.contains(Part.OPS)) {
                c.forward().checkOps(s, batch, seqLen);
                if (scope.backward()) c.backward().checkOps(s, batch, seqLen);
            }
            for (TttType type : scope.types()) {
                ModelConfig cfg = new ModelConfig(s.vocab(), s.hidden(), s.layers(), s.heads(), s.ffn(), s.miniBatch(),
                        type);
                if (parts.contains(Part.INNER)) c.forward().checkInner(cfg, batch, seqLen);
                if (parts.contains(Part.PROBLEM)) c.forward().checkInnerProblem(cfg, batch, seqLen, 1);
                if (parts.contains(Part.MODEL)) c.forward().checkModel(cfg, batch, seqLen, 1);
                if (!scope.backward()) continue;
                if (parts.contains(Part.INNER)) c.backward().checkInner(cfg, batch, seqLen);
                if (parts.contains(Part.PROBLEM)) c.backward().checkInnerProblem(cfg, batch, seqLen, 1);
                if (parts.contains(Part.MODEL)) c.backward().checkModel(cfg, batch, seqLen, 1);
                // One sequence of 16 mini-batches: every interval has whole segments and a shorter last one.
                if (parts.contains(Part.INTERVALS)) {
                    c.backward().checkIntervalsAndDeterminism(cfg, 1, 16 * cfg.miniBatch());
                }
            }
        });
    }

    // ---------------------------------------------------------------- a benchmark's check

    /**
     * The check a benchmark of {@code w} runs in setup, on the backend that will time it: the same
     * variant-table entry as the timed run (the kernels {@code test} chooses for the run's
     * {@link ScanShape}, forced, so that the reduced problem runs them whatever it would choose) at a
     * size that reaches it. The batch, and so batch × heads, stays the run's; the sequence shrinks to
     * 64 tokens (at least one mini-batch), for a backward at interval c to at least two segments
     * (2·c·K tokens, or the run's own length when shorter), and the model to at most 2 layers. The
     * inner benchmarks check their own problem; the others the whole forward and, for a backward, the
     * training step at the run's interval.
     *
     * @param log where each row is printed as it is made, or null
     */
    public static Verified gate(Backend test, Opener opener, Workload w, long seed, PrintStream log) {
        ModelConfig full = w.model();
        int batch = w.batch();
        int interval = w.checkpointInterval();
        int seqLen = reducedLength(w);
        ModelConfig reduced = new ModelConfig(full.vocab(), full.hidden(), Math.min(full.layers(), 2), full.heads(),
                full.ffn(), full.miniBatch(), full.tttType());
        ScanShape shape = new ScanShape(w.tttType(), full.headDim(), full.miniBatch(), w.dtype(),
                (long) batch * full.heads(), interval);
        KernelChoice forced = null;
        if (!test.kernelOptions(shape).isEmpty()) {
            KernelChoice chosen = test.kernels(shape);
            forced = w.backward() ? chosen : KernelChoice.forward(chosen.forward());
        }
        List<Row> rows = passes(test, opener, w.tf32(), seed, log, forced, c -> {
            if (w.innerOnly()) {
                c.forward().checkInnerProblem(full, batch, seqLen, interval);
                if (w.backward()) c.backward().checkInnerProblem(full, batch, seqLen, interval);
            } else {
                c.forward().checkModel(reduced, batch, seqLen, interval);
                if (w.backward()) c.backward().checkModel(reduced, batch, seqLen, interval);
            }
        });
        return new Verified(forced == null ? null : forced.label(), seed, rows);
    }

    /** The sequence length of a benchmark's check (see {@link #gate}). */
    static int reducedLength(Workload w) {
        int k = w.miniBatch();
        int forward = Math.max(k, Math.min(w.seqLen(), 64) / k * k);
        if (!w.backward()) return forward;
        return Math.min(w.seqLen(), Math.max(forward, 2 * w.checkpointInterval() * k));
    }

    /**
     * {@link #gate}, silently, as a benchmark's setup runs it (see {@link Backend#runReleasing} for
     * keeping its buffers out of the benchmark's memory).
     *
     * @throws IllegalStateException naming every failed comparison and the command that reproduces
     *                               them: do not time that kernel
     */
    public static Verified checkConfig(Backend test, Opener opener, Workload w, long seed) {
        Verified v = gate(test, opener, w, seed, null);
        if (v.passed()) return v;
        List<String> failed = v.rows().stream().filter(r -> !r.passed()).map(Row::format).toList();
        throw new IllegalStateException("the " + test.name() + " backend does not match the CPU reference for "
                + w.modelSize() + " " + w.tttType().flag() + " " + w.dtype().flag() + " " + w.benchmark().method()
                + (v.kernel() == null ? "" : " (kernels " + v.kernel() + ")") + "; refusing to time it"
                + (w.dtype() == DType.FLOAT32 ? "" : " (rows in float32 ran the same kernels instantiated for float32)")
                + ":\n" + Row.HEADER + "\n"
                + String.join("\n", failed) + "\nreproduce with: " + reproduce(test.name(), w, seed));
    }

    /** {@link #checkConfig} on a backend {@link Backends} opens by its name (cuda, hip), its float32 twin opened the same way. */
    public static Verified checkConfig(Backend test, Workload w, long seed) {
        BackendKind kind = BackendKind.parse(test.name());
        return checkConfig(test, storage -> Backends.open(kind, storage, false), w, seed);
    }

    /** {@link #checkConfig} with a fresh seed. */
    public static Verified checkConfig(Backend test, Workload w) {
        return checkConfig(test, w, ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE);
    }

    /** The command line that runs a benchmark's check again, rows printed: {@code tttbench verify --gate …}. */
    public static String reproduce(String backend, Workload w, long seed) {
        return "tttbench verify --model-size " + w.modelSize() + " --ttt-type " + w.tttType().flag() + " --dtype "
                + w.dtype().flag() + " --seed " + seed + " --gate " + w.benchmark().method() + " --batch " + w.batch()
                + " --seq-len " + w.seqLen() + " --mini-batch " + w.miniBatch() + " --checkpoint-interval "
                + w.checkpointInterval() + (w.tf32() ? " --tf32" : "") + " --backend " + backend;
    }

    // ---------------------------------------------------------------- passes

    /** The forward and backward checks of one pass. */
    record Checks(ForwardChecks forward, BackwardChecks backward) {
    }

    /**
     * Runs {@code body} in one float32 pass, or for a 16-bit {@code test} in a twin pass and a 16-bit
     * pass with the same seed, each with {@code forced} (when not null) forced on its tested backend.
     */
    private static List<Row> passes(Backend test, Opener opener, boolean tf32, long seed, PrintStream log,
            KernelChoice forced, Consumer<Checks> body) {
        List<Row> rows = new ArrayList<>();
        DType dtype = test.dtype();
        if (dtype == DType.FLOAT32) {
            heading(log, "float32 against the CPU reference in float32");
            try (CpuBackend cpu = new CpuBackend(DType.FLOAT32)) {
                run(new Pass(Pass.Role.FLOAT32, test, cpu, test, tf32, null, rows, log), seed, forced, body);
            }
            return rows;
        }
        Map<String, float[]> float32Refs = new HashMap<>();
        heading(log, "the kernels instantiated for float32, on inputs rounded to " + dtype.flag()
                + ", against the CPU reference in float32");
        try (Backend twin = opener.open(DType.FLOAT32); CpuBackend cpu = new CpuBackend(DType.FLOAT32)) {
            run(new Pass(Pass.Role.TWIN, twin, cpu, test, false, float32Refs, rows, log), seed, forced, body);
        }
        heading(log, dtype.flag() + " against the CPU reference in " + dtype.flag() + "; tolerance "
                + (int) Tolerances.SPREAD_FACTOR + " × that reference's spread against float32 ("
                + (int) Tolerances.CANCELLING_SPREAD_FACTOR + " × for the token-index and learning-rate-bias gradients),"
                + " at least float32's");
        try (CpuBackend cpu = new CpuBackend(dtype)) {
            run(new Pass(Pass.Role.REDUCED, test, cpu, test, false, float32Refs, rows, log), seed, forced, body);
        }
        return rows;
    }

    private static void run(Pass pass, long seed, KernelChoice forced, Consumer<Checks> body) {
        if (forced != null) pass.test().force(forced);
        try {
            body.accept(new Checks(new ForwardChecks(pass, seed), new BackwardChecks(pass, ~seed)));
        } catch (RuntimeException e) {
            pass.add(Row.error(pass.test().dtype(), e));
        } finally {
            if (forced != null) pass.test().force(KernelChoice.OWN);
        }
    }

    private static void heading(PrintStream log, String text) {
        if (log == null) return;
        log.println("-- " + text);
        log.println(Row.HEADER);
    }
}
