package org.tttbench.gpu;

import static org.tttbench.gpu.Checks.gpu;
import static org.tttbench.gpu.Checks.requireSize;
import static org.tttbench.gpu.Checks.sameType;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.KernelChoice;
import org.tttbench.backend.ScanShape;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;

/**
 * What the launchers of the two inner-scan families ({@link TttLinear} for hip/ttt_linear.hip,
 * {@link TttMlp} for hip/ttt_mlp.hip) share: the argument checks, the launch of a forward scan,
 * of the backward's one-launch walk and of its parallel form, and the fixed-order sums of their
 * partials. Each family supplies its two variant tables, one per direction: rows in order, the
 * first whose condition holds at a {@link ScanShape} on this device is the kernel that runs.
 */
abstract class TttScan {

    /**
     * One row of a variant table: a kernel, when it can run a shape on this device at all, and
     * when it is also the one to prefer (the first row that runs and is preferred is chosen;
     * checks run every row that runs).
     */
    record Row(String kernel, Predicate<ScanShape> runs, Predicate<ScanShape> preferred) {
        Row(String kernel, Predicate<ScanShape> runs) {
            this(kernel, runs, s -> true);
        }

        boolean chosen(ScanShape s) {
            return runs.test(s) && preferred.test(s);
        }
    }

    protected final KernelRegistry kernels;
    private final Scratch scratch;
    private final Elementwise elementwise;
    private final TttType type;
    private final String family;
    private String forcedForward;
    private String forcedBackward;

    TttScan(TttType type, String family, KernelRegistry kernels, Scratch scratch, Elementwise elementwise) {
        this.type = type;
        this.family = family;
        this.kernels = kernels;
        this.scratch = scratch;
        this.elementwise = elementwise;
    }

    /** The forward table of this family on this device. */
    abstract List<Row> forwardTable();

    /** The backward table: rows whose kernel is a chain run the parallel form, the others the walk. */
    abstract List<Row> backwardTable();

    /** The family's extra forward arguments after b1 (TTT-MLP: W2, b2). */
    abstract void innerModelArgs(KernelLaunch launch, InnerInputs in);

    /** Whether the chain kernel of the parallel form reads the checkpoints (TTT-MLP's recomputes its hidden layer). */
    abstract boolean chainReadsCheckpoints();

    // ---------------------------------------------------------------- the tables

    /** Launch variables of a scan: the shape, the pairs, and what the descriptors name. */
    static LaunchVars vars(ScanShape s) {
        return LaunchVars.of("F", s.headDim()).and("K", s.miniBatch()).and("PAIRS", s.pairs())
                .and("INTERVAL", s.interval());
    }

    boolean runs(String kernel, ScanShape s) {
        return kernels.runs(kernel, vars(s));
    }

    /**
     * The three kernels of the parallel backward with this chain all fit (at any interval: above 1
     * the backward first recomputes every state, see {@link #recomputeEveryState}).
     */
    boolean parallelRuns(String chain, ScanShape s) {
        return local(s) != null && runs(chain, s) && runs(family + "_backward_finish", s);
    }

    /** The parallel backward's local kernels, in order of preference (the first that runs a shape is used). */
    abstract List<String> localKernels();

    /** The first of {@link #localKernels} that runs {@code s} on this device, or null. */
    private String local(ScanShape s) {
        for (String k : localKernels()) {
            if (runs(k, s)) return k;
        }
        return null;
    }

    /** Whether the clusters of a kernel all fit on the device at once, with room to spare. */
    boolean clustersFit(int cluster, ScanShape s) {
        return s.pairs() * cluster <= kernels.multiprocessors() * 3L / 4;
    }

    /**
     * The shapes every scan kernel takes: a row's elements spread over a warp (at most 8 a lane
     * of 32), 4-wide tiles.
     *
     * @throws UnsupportedOperationException for any other
     */
    static void requireSupported(ScanShape s) {
        if (s.headDim() % 4 != 0 || s.headDim() > 256) {
            throw new UnsupportedOperationException("the GPU inner scan needs a head dim divisible by 4 and at most 256, got "
                    + s.headDim());
        }
        if (s.miniBatch() % 4 != 0 || s.miniBatch() > 64) {
            throw new UnsupportedOperationException(
                    "the GPU inner scan needs a mini-batch that is a multiple of 4 and at most 64, got " + s.miniBatch());
        }
    }

    private static String first(List<Row> table, ScanShape s, String direction) {
        requireSupported(s);
        for (Row r : table) {
            if (r.chosen(s)) return r.kernel();
        }
        throw new IllegalStateException("no " + direction + " kernel for " + s);
    }

    private static void requireOption(List<Row> table, String kernel, ScanShape s) {
        for (Row r : table) {
            if (r.kernel().equals(kernel)) {
                if (!r.runs().test(s)) {
                    throw new IllegalArgumentException("kernel " + kernel + " does not run " + s + " on this device");
                }
                return;
            }
        }
        throw new IllegalArgumentException("no kernel " + kernel + " in the table of " + s.type().flag() + " scans");
    }

    KernelChoice chosen(ScanShape s) {
        return new KernelChoice(forcedForward != null ? forcedForward : first(forwardTable(), s, "forward"),
                forcedBackward != null ? forcedBackward : first(backwardTable(), s, "backward"));
    }

    /** Every row's kernel that can run at {@code s}, either direction. */
    List<KernelChoice> options(ScanShape s) {
        requireSupported(s);
        List<KernelChoice> all = new ArrayList<>();
        for (Row r : forwardTable()) if (r.runs().test(s)) all.add(KernelChoice.forward(r.kernel()));
        for (Row r : backwardTable()) if (r.runs().test(s)) all.add(KernelChoice.backward(r.kernel()));
        return all;
    }

    /** Forces the kernels of {@code choice} that belong to this family; the others are another family's. */
    /** The kernels chosen at {@code s}, each with how it was built (for the result line). */
    String describe(ScanShape s, boolean backward) {
        KernelChoice c = chosen(s);
        return describe(c.forward(), s) + (backward ? " / " + describe(c.backward(), s) : "");
    }

    private String describe(String kernel, ScanShape s) {
        String d = kernel + " (" + kernels.kernel(kernel, s.dtype(), s.headDim(), s.miniBatch()).build() + ")";
        String local = kernel.contains("_chain") ? local(s) : null;
        return local != null && !local.equals(localKernels().getFirst()) ? d + " after " + local : d;
    }

    void force(KernelChoice choice) {
        forcedForward = mine(choice.forward());
        forcedBackward = mine(choice.backward());
    }

    private String mine(String kernel) {
        return kernel != null && kernel.startsWith(family + "_") ? kernel : null;
    }

    // ---------------------------------------------------------------- forward

    void forward(InnerInputs in, Tensor out, Tensor checkpoints, int interval, Tensor lastState) {
        String op = "innerForward";
        DType t = gpu(out).dtype();
        checkInputs(op, in, t);
        requireSize(op, "out", out, (long) in.batch() * in.heads() * in.seqLen() * in.headDim());
        long state = stateFloats(in);
        if (checkpoints != null) {
            if (interval < 1) throw new IllegalArgumentException(op + ": checkpoint interval must be >= 1");
            int slots = (in.miniBatches() + interval - 1) / interval;
            requireSize(op, "checkpoints", checkpoints, slots * (long) in.batch() * in.heads() * state);
            sameType(op, DType.FLOAT32, checkpoints);
        }
        if (lastState != null) {
            requireSize(op, "lastState", lastState, (long) in.batch() * in.heads() * state);
            sameType(op, DType.FLOAT32, lastState);
        }
        ScanShape s = ScanShape.of(in, t, checkpoints == null ? 1 : interval);
        String kernel = forcedForward != null ? forcedForward : first(forwardTable(), s, "forward");
        if (forcedForward != null) requireOption(forwardTable(), kernel, s);
        launchForward(kernel, in, t, gpu(out).ptr(), checkpoints == null ? 0 : gpu(checkpoints).ptr(),
                checkpoints == null ? 1 : interval, lastState == null ? 0 : gpu(lastState).ptr());
    }

    /** One forward scan with {@code kernel}; a pointer of 0 is a buffer the scan does not write. */
    private void launchForward(String kernel, InnerInputs in, DType t, long out, long checkpoints, int interval,
            long lastState) {
        ScanShape s = ScanShape.of(in, t, interval);
        LaunchVars v = vars(s);
        int shared = Math.toIntExact(kernels.sharedBytes(kernel, v));
        long wsFloats = kernels.size(kernel + "_workspace_floats", v);
        long ws = scratch.get("inner workspace", 4 * wsFloats * s.pairs());
        KernelLaunch c = kernels.start(kernel, t, in.headDim(), in.miniBatch()).p(in.xq()).p(in.xk()).p(in.xv()).p(in.lr()).p(in.tok()).p(in.w1())
                .p(in.b1());
        innerModelArgs(c, in);
        c.p(in.normWeight()).p(in.normBias()).p(out).p(checkpoints).i(interval).p(lastState).p(ws)
                .i(Math.toIntExact(wsFloats)).i(shared).i(in.heads()).i(in.seqLen()).i(in.headDim()).i(in.miniBatch())
                .f((float) ModelConfig.LAYER_NORM_EPS).launch(v);
    }

    /** Floats of one packed state (the checkpoints' unit): W1, b1 (W2, b2). */
    private long stateFloats(InnerInputs in) {
        return kernels.size(family + "_state_floats", LaunchVars.of("F", in.headDim()));
    }

    private void checkInputs(String op, InnerInputs in, DType t) {
        if (in.type() != type) throw new IllegalArgumentException(op + ": a " + in.type().flag() + " scan given to " + family);
        int b = in.batch();
        int h = in.heads();
        int l = in.seqLen();
        int f = in.headDim();
        int k = in.miniBatch();
        if (l % k != 0) throw new IllegalArgumentException(op + ": seq len " + l + " not divisible by " + k);
        int f1 = type == TttType.MLP ? 4 * f : f;
        long heads = (long) b * h * l * f;
        requireSize(op, "xq", in.xq(), heads);
        requireSize(op, "xk", in.xk(), heads);
        requireSize(op, "xv", in.xv(), heads);
        requireSize(op, "lr", in.lr(), (long) b * h * l);
        requireSize(op, "tok", in.tok(), k);
        requireSize(op, "w1", in.w1(), (long) h * f * f1);
        requireSize(op, "b1", in.b1(), (long) h * f1);
        requireSize(op, "normWeight", in.normWeight(), (long) h * f);
        requireSize(op, "normBias", in.normBias(), (long) h * f);
        sameType(op, t, in.xq(), in.xk(), in.xv(), in.lr(), in.tok(), in.w1(), in.b1(), in.normWeight(), in.normBias());
        if (type == TttType.MLP) {
            requireSize(op, "w2", in.w2(), (long) h * f1 * f);
            requireSize(op, "b2", in.b2(), (long) h * f);
            sameType(op, t, in.w2(), in.b2());
        }
    }

    // ---------------------------------------------------------------- backward

    void backward(InnerInputs in, Tensor checkpoints, int interval, Tensor dOut, InnerGrads grads) {
        String op = "innerBackward";
        DType t = gpu(in.xq()).dtype();
        checkInputs(op, in, t);
        if (interval < 1) throw new IllegalArgumentException(op + ": checkpoint interval must be >= 1, got " + interval);
        int b = in.batch();
        int h = in.heads();
        int l = in.seqLen();
        int f = in.headDim();
        int k = in.miniBatch();
        int f1 = type == TttType.MLP ? 4 * f : f;
        long heads = (long) b * h * l * f;
        requireSize(op, "dOut", dOut, heads);
        requireSize(op, "dXQ", grads.xq(), heads);
        requireSize(op, "dXK", grads.xk(), heads);
        requireSize(op, "dXV", grads.xv(), heads);
        requireSize(op, "dlr", grads.lr(), (long) b * h * l);
        requireSize(op, "dtok", grads.tok(), k);
        requireSize(op, "dW1", grads.w1(), (long) h * f * f1);
        requireSize(op, "db1", grads.b1(), (long) h * f1);
        requireSize(op, "dγ", grads.normWeight(), (long) h * f);
        requireSize(op, "dβ", grads.normBias(), (long) h * f);
        sameType(op, t, dOut, grads.xq(), grads.xk(), grads.xv(), grads.lr(), grads.tok(), grads.w1(), grads.b1(),
                grads.normWeight(), grads.normBias());
        if (type == TttType.MLP) {
            requireSize(op, "dW2", grads.w2(), (long) h * f1 * f);
            requireSize(op, "db2", grads.b2(), (long) h * f);
            sameType(op, t, grads.w2(), grads.b2());
        }
        int slots = (in.miniBatches() + interval - 1) / interval;
        requireSize(op, "checkpoints", checkpoints, slots * (long) b * h * stateFloats(in));
        sameType(op, DType.FLOAT32, checkpoints);

        ScanShape s = ScanShape.of(in, t, interval);
        String kernel = forcedBackward != null ? forcedBackward : first(backwardTable(), s, "backward");
        if (forcedBackward != null) requireOption(backwardTable(), kernel, s);
        if (kernel.contains("_chain") && interval > 1) {
            parallel(in, s, kernel, recomputeEveryState(in, t), dOut, grads, t);
        } else if (kernel.contains("_chain")) {
            parallel(in, s, kernel, gpu(checkpoints).ptr(), dOut, grads, t);
        } else {
            walk(in, s, kernel, checkpoints, interval, dOut, grads, t);
        }
    }

    /**
     * The state before every mini-batch (the checkpoints of interval 1), recomputed by one
     * forward scan from the inner model's parameters into scratch shared by all layers: the
     * parallel form then runs at any interval, for the cost of one forward scan a layer, while
     * the forward keeps only every c-th state per layer (the memory checkpointing saves). The
     * recomputed states are the bits the forward computed: the same kernel on the same inputs.
     */
    private long recomputeEveryState(InnerInputs in, DType t) {
        ScanShape s = ScanShape.of(in, t, 1);
        String kernel = first(forwardTable(), s, "forward");
        long states = scratch.get("inner recomputed states", 4L * in.miniBatches() * s.pairs() * stateFloats(in));
        long out = scratch.get("inner recomputed out",
                (long) t.bytes() * in.batch() * in.heads() * in.seqLen() * in.headDim());
        launchForward(kernel, in, t, out, states, 1, 0);
        return states;
    }

    /** The one-launch walk over the segments in reverse, recomputing each segment's states from its checkpoint. */
    private void walk(InnerInputs in, ScanShape s, String kernel, Tensor checkpoints, int interval, Tensor dOut,
            InnerGrads grads, DType t) {
        LaunchVars v = vars(s);
        int shared = Math.toIntExact(kernels.sharedBytes(kernel, v));
        long wsFloats = kernels.size(kernel + "_workspace_floats", v);
        int rsSlots = Math.toIntExact(kernels.size(family + "_backward_walk_recomputed_states", v));
        long ws = scratch.get("inner workspace", 4L * s.pairs() * kernels.size(kernel + "_buffer_floats", v));
        int partFloats = Math.toIntExact(kernels.size(family + "_backward_walk_partial_floats", v));
        long part = scratch.get("inner partials", 4L * s.pairs() * partFloats);
        kernels.start(kernel, t, in.headDim(), in.miniBatch()).p(in.xq()).p(in.xk()).p(in.xv()).p(in.lr()).p(in.tok()).p(in.normWeight())
                .p(in.normBias()).p(dOut).p(checkpoints).i(interval).p(grads.xq()).p(grads.xk()).p(grads.xv())
                .p(grads.lr()).p(part).p(ws).i(Math.toIntExact(wsFloats)).i(rsSlots).i(shared).i(in.heads())
                .i(in.seqLen()).i(in.headDim()).i(in.miniBatch()).f((float) ModelConfig.LAYER_NORM_EPS).launch(v);

        // Parameter gradients: the per-(b, h) partials summed over b, in order, into each head's slice.
        int b = in.batch();
        int h = in.heads();
        long at = sumStateGradient(part, in, grads, partFloats);
        int f = in.headDim();
        at = sumPiece(part, at, grads.normWeight(), b, h, partFloats, f);
        at = sumPiece(part, at, grads.normBias(), b, h, partFloats, f);
        // dtok: every (b, h) summed, overwriting.
        elementwise.sumPartials(part + 4 * at, grads.tok(), b * h, partFloats, 1, 0, in.miniBatch(), false);
    }

    /**
     * Every state kept (interval 1): the local gradients of all mini-batches at once, the
     * sequential recurrence of the state's gradient, then the rest of each mini-batch's
     * gradients at once, and the fixed-order sums.
     */
    private void parallel(InnerInputs in, ScanShape s, String chain, long checkpoints, Tensor dOut, InnerGrads grads,
            DType t) {
        LaunchVars v = vars(s).and("MB", in.miniBatches());
        int b = in.batch();
        int h = in.heads();
        int f = in.headDim();
        int k = in.miniBatch();
        int n = in.miniBatches();
        float eps = (float) ModelConfig.LAYER_NORM_EPS;
        long records = scratch.get("inner records",
                4L * n * s.pairs() * kernels.size(family + "_backward_record_floats", v));
        int stateFloats = Math.toIntExact(kernels.size(family + "_backward_chain_partial_floats", v));
        long part = scratch.get("inner partials", 4L * s.pairs() * stateFloats);
        // dγ, dβ, dtok of one (mini-batch, pair)
        int tail = Math.toIntExact(kernels.size(family + "_backward_finish_partial_floats", v));
        long finish = scratch.get("inner finish partials", 4L * n * s.pairs() * tail);

        String local = local(s);
        kernels.start(local, t, in.headDim(), in.miniBatch()).p(in.xq()).p(in.xk()).p(in.xv()).p(in.lr()).p(in.tok()).p(in.normWeight())
                .p(in.normBias()).p(dOut).p(checkpoints).p(grads.xq()).p(records)
                .i(Math.toIntExact(kernels.sharedBytes(local, v))).i(h).i(in.seqLen()).i(f).i(k).f(eps).launch(v);
        KernelLaunch c = kernels.start(chain, t, in.headDim(), in.miniBatch()).p(in.xq()).p(in.xk()).p(in.xv()).p(in.lr()).p(in.tok())
                .p(in.normWeight()).p(in.normBias());
        if (chainReadsCheckpoints()) c.p(checkpoints);
        c.p(records).p(part).i(Math.toIntExact(kernels.sharedBytes(chain, v))).i(h).i(in.seqLen()).i(f).i(k).f(eps)
                .launch(v);
        String fin = family + "_backward_finish";
        kernels.start(fin, t, in.headDim(), in.miniBatch()).p(in.xk()).p(in.xv()).p(in.lr()).p(in.tok()).p(in.normWeight()).p(in.normBias())
                .p(checkpoints).p(records).p(grads.xk()).p(grads.xv()).p(grads.lr()).p(finish)
                .i(Math.toIntExact(kernels.sharedBytes(fin, v))).i(h).i(in.seqLen()).i(f).i(k).launch(v);

        // The state's gradient of each (b, h), packed as a state, summed over b into each head's slice.
        sumStateGradient(part, in, grads, stateFloats);
        elementwise.sumPartials(finish, grads.normWeight(), n * b, h * tail, h, tail, f, true);
        elementwise.sumPartials(finish + 4L * f, grads.normBias(), n * b, h * tail, h, tail, f, true);
        elementwise.sumPartials(finish + 8L * f, grads.tok(), Math.toIntExact(n * s.pairs()), tail, 1, 0, k, false);
    }

    /** Adds the packed state gradient W1, b1 (W2, b2) of every (b, h) partial into the grads; returns the float after it. */
    private long sumStateGradient(long part, InnerInputs in, InnerGrads grads, int partFloats) {
        int b = in.batch();
        int h = in.heads();
        int f = in.headDim();
        int f1 = type == TttType.MLP ? 4 * f : f;
        long at = 0;
        at = sumPiece(part, at, grads.w1(), b, h, partFloats, f * f1);
        at = sumPiece(part, at, grads.b1(), b, h, partFloats, f1);
        if (type == TttType.MLP) {
            at = sumPiece(part, at, grads.w2(), b, h, partFloats, f1 * f);
            at = sumPiece(part, at, grads.b2(), b, h, partFloats, f);
        }
        return at;
    }

    /** Adds floats [at, at + cols) of every (b, h) partial into grad [H, cols], summed over b; returns at + cols. */
    private long sumPiece(long part, long at, Tensor grad, int batch, int heads, int partFloats, int cols) {
        elementwise.sumPartials(part + 4 * at, grad, batch, heads * partFloats, heads, partFloats, cols, true);
        return at + cols;
    }
}
