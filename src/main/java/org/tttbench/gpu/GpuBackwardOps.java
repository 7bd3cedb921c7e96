package org.tttbench.gpu;

import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;

/**
 * The backward ops of the GPU backend, through the kernels of hip/*_backward.hip and
 * hip/reduce.hip: one launch per op, plus fixed-order reductions of float32 partials where an op
 * sums over many rows into a parameter gradient. Nothing uses float atomics, so gradients are
 * bit-identical from run to run. Scratch for partials and for the inner backward's workspace is
 * carved from the backend's arena on first use at a size (setup or warmup) and reused after.
 *
 * <p>Used by {@link GpuBackend}, which checks that tensors belong to it; this class checks
 * shapes and storage types.
 */
final class GpuBackwardOps {

    private static final List<String> MODULES = List.of("reduce", "elementwise_backward", "embedding_backward",
            "norms_backward", "ttt_inputs_backward", "ttt_linear_backward", "ttt_linear_backward_parallel",
            "ttt_mlp_backward", "ttt_mlp_backward_parallel");
    private static final int THREADS = 256;
    /** Threads of one inner-backward block: the kernels' launch bound. */
    private static final int SCAN_THREADS = 256;
    /** Rows per block of the norm backwards: enough blocks to fill a device at 2048 tokens, few partials. */
    private static final int NORM_CHUNK_ROWS = 16;
    /** Tokens per partial of the learning-rate weight gradient. */
    private static final int LR_CHUNK_TOKENS = 64;

    private final GpuRuntime rt;
    private final DeviceArena memory;
    private final Arena host;
    private final int maxBlocks;
    private final Map<String, Long> modules = new HashMap<>();
    private final Map<String, Long> functions = new HashMap<>();
    private final Map<Long, Long> sharedLimits = new HashMap<>();
    private final Map<String, long[]> scratch = new HashMap<>();
    private final KernelLaunch launch;
    private InnerPlacement forcedPlacement;
    /** Blocks of the TTT-MLP chain forced per (batch, head): 1, 2 or 4; null for the device's choice. */
    private Integer forcedChain = chainProperty();

    /** Token ids grouped by id in device memory (int32), from {@link TokenSegments}. */
    record DeviceSegments(long order, long ids, long start, int segments, int tokens) {
    }

    GpuBackwardOps(GpuRuntime rt, DeviceArena memory, Arena host, int maxBlocks) {
        this.rt = rt;
        this.memory = memory;
        this.host = host;
        this.launch = new KernelLaunch(rt, host);
        this.maxBlocks = maxBlocks;
        for (String m : MODULES) modules.put(m, KernelImages.load(rt, m));
    }

    // ---------------------------------------------------------------- embedding

    DeviceSegments uploadSegments(int[] tokens) {
        TokenSegments s = TokenSegments.of(tokens);
        return new DeviceSegments(uploadInts(s.order()), uploadInts(s.ids()), uploadInts(s.start()), s.segments(),
                tokens.length);
    }

    private long uploadInts(int[] values) {
        long bytes = 4L * Math.max(1, values.length);
        long ptr = memory.carve(bytes);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(bytes, 16);
            MemorySegment.copy(values, 0, s, JAVA_INT, 0, values.length);
            rt.copyToDevice(s, ptr, bytes);
        }
        return ptr;
    }

    void embeddingBackward(DeviceSegments seg, GpuTensor dOut, GpuTensor dTable) {
        String op = "embeddingBackward";
        if (dTable.shape().length != 2) throw new IllegalArgumentException(op + ": table must be [V, D], got " + dTable);
        int dim = dTable.shape()[1];
        requireSize(op, "dOut", dOut, (long) seg.tokens() * dim);
        sameType(op, dTable.dtype(), dOut);
        long n = (long) seg.segments() * dim;
        kernel("embedding_backward", dTable.dtype()).p(seg.order()).p(seg.ids()).p(seg.start()).i(seg.segments())
                .p(dOut).p(dTable).i(dim).launch(blocks(n), THREADS, 0);
    }

    // ---------------------------------------------------------------- norms

    void rmsNormBackward(GpuTensor x, GpuTensor gain, GpuTensor rstd, GpuTensor dOut, GpuTensor dx, GpuTensor dGain) {
        String op = "rmsNormBackward";
        int dim = elements(op, gain);
        int rows = rows(op, x, dim);
        requireSize(op, "dOut", dOut, x.elements());
        requireSize(op, "dx", dx, x.elements());
        requireSize(op, "dGain", dGain, dim);
        requireSize(op, "rstd", rstd, rows);
        sameType(op, x.dtype(), gain, dOut, dx, dGain);
        sameType(op, DType.FLOAT32, rstd);
        int chunks = (rows + NORM_CHUNK_ROWS - 1) / NORM_CHUNK_ROWS;
        long part = scratch("norm partials", 4L * chunks * dim);
        kernel("rmsnorm_backward", x.dtype()).p(x).p(gain).p(rstd).p(dOut).p(dx).p(part).i(rows).i(dim)
                .i(NORM_CHUNK_ROWS).launch(chunks, THREADS, 4 * dim);
        sumPartials(part, dGain, chunks, dim, 1, 0, dim, true);
    }

    void layerNormBackward(GpuTensor x, GpuTensor weight, GpuTensor mean, GpuTensor rstd, GpuTensor dOut, GpuTensor dx,
            GpuTensor dWeight, GpuTensor dBias) {
        String op = "layerNormBackward";
        int dim = elements(op, weight);
        int rows = rows(op, x, dim);
        requireSize(op, "dOut", dOut, x.elements());
        requireSize(op, "dx", dx, x.elements());
        requireSize(op, "dWeight", dWeight, dim);
        requireSize(op, "dBias", dBias, dim);
        requireSize(op, "mean", mean, rows);
        requireSize(op, "rstd", rstd, rows);
        sameType(op, x.dtype(), weight, dOut, dx, dWeight, dBias);
        sameType(op, DType.FLOAT32, mean, rstd);
        int chunks = (rows + NORM_CHUNK_ROWS - 1) / NORM_CHUNK_ROWS;
        long part = scratch("norm partials", 8L * chunks * dim);
        kernel("layernorm_backward", x.dtype()).p(x).p(weight).p(mean).p(rstd).p(dOut).p(dx).p(part).i(rows).i(dim)
                .i(NORM_CHUNK_ROWS).launch(chunks, THREADS, 8 * dim);
        sumPartials(part, dWeight, chunks, dim, 1, 0, dim, true);
        sumPartials(part + 4L * chunks * dim, dBias, chunks, dim, 1, 0, dim, true);
    }

    // ---------------------------------------------------------------- TTT layer inputs

    void splitHeadsBackward(GpuTensor dHeads, GpuTensor dx, int numHeads, int miniBatch, boolean rope) {
        String op = "splitHeadsBackward";
        int[] s = dHeads.shape();
        if (s.length != 4 || s[1] != numHeads) {
            throw new IllegalArgumentException(op + ": dHeads must be [B, " + numHeads + ", L, F], got " + dHeads);
        }
        if (s[3] % 2 != 0) throw new IllegalArgumentException(op + ": head dim must be even, got " + s[3]);
        requireSize(op, "dx", dx, dHeads.elements());
        sameType(op, dx.dtype(), dHeads);
        long pairs = dHeads.elements() / 2;
        kernel("split_heads_backward", dx.dtype()).p(dHeads).p(dx).i(s[0]).i(s[2]).i(numHeads).i(s[3]).i(miniBatch)
                .i(rope ? 1 : 0).f((float) ModelConfig.ROPE_THETA).launch(blocks(pairs), THREADS, 0);
    }

    void tttLearningRateBackward(GpuTensor x, GpuTensor weight, GpuTensor lr, GpuTensor dLr, GpuTensor dx,
            GpuTensor dWeight, GpuTensor dBias) {
        String op = "tttLearningRateBackward";
        int[] s = lr.shape();
        if (s.length != 3) throw new IllegalArgumentException(op + ": lr must be [B, H, L], got " + lr);
        int batch = s[0];
        int heads = s[1];
        int seqLen = s[2];
        int dim = Math.toIntExact(weight.elements() / heads);
        if (dim % heads != 0) throw new IllegalArgumentException(op + ": D " + dim + " not divisible by H " + heads);
        int tokens = batch * seqLen;
        requireSize(op, "weight", weight, (long) heads * dim);
        requireSize(op, "x", x, (long) tokens * dim);
        requireSize(op, "dx", dx, (long) tokens * dim);
        requireSize(op, "dLr", dLr, lr.elements());
        requireSize(op, "dWeight", dWeight, (long) heads * dim);
        requireSize(op, "dBias", dBias, heads);
        sameType(op, x.dtype(), weight, lr, dLr, dx, dWeight, dBias);
        float scale = (float) (ModelConfig.BASE_LR / (dim / heads));
        long dz = scratch("lr dz", 4L * tokens * heads);
        kernel("ttt_lr_backward", x.dtype()).p(weight).p(lr).p(dLr).p(dx).p(dz).i(batch).i(seqLen).i(heads).i(dim)
                .f(scale).launch(Math.min(tokens, 65535), THREADS, 4 * heads);
        int chunks = (tokens + LR_CHUNK_TOKENS - 1) / LR_CHUNK_TOKENS;
        int cols = dim + 1;
        long part = scratch("lr partials", 4L * chunks * heads * cols);
        kernel("ttt_lr_backward_params", x.dtype()).p(x).p(dz).p(part).i(tokens).i(heads).i(dim).i(LR_CHUNK_TOKENS)
                .launch(blocks((long) heads * cols), chunks, THREADS, 0);
        sumPartials(part, dWeight, chunks, heads * cols, heads, cols, dim, true);
        sumPartials(part + 4L * dim, dBias, chunks, heads * cols, heads, cols, 1, true);
    }

    void tokenEtaBackward(GpuTensor tokenIdx, GpuTensor dTok, GpuTensor dTokenIdx) {
        String op = "tokenEtaBackward";
        int k = elements(op, tokenIdx);
        requireSize(op, "dTok", dTok, k);
        requireSize(op, "dTokenIdx", dTokenIdx, k);
        sameType(op, tokenIdx.dtype(), dTok, dTokenIdx);
        kernel("token_eta_backward", tokenIdx.dtype()).p(tokenIdx).p(dTok).p(dTokenIdx).i(k).launch(blocks(k), THREADS, 0);
    }

    // ---------------------------------------------------------------- inner loop

    /**
     * Makes the inner backward run the one-launch walk with {@code placement} (null: the fastest
     * form that fits, which at interval 1 is the parallel one), for verification.
     */
    void forcePlacement(InnerPlacement placement) {
        this.forcedPlacement = placement;
    }

    /**
     * The blocks per (batch, head) that the chain of the TTT-MLP parallel backward runs on, from
     * the system property tttbench.mlp.chain (1: one block, the kernel for every device; 2, 4: a
     * thread block cluster; auto or unset: the device's choice).
     */
    private static Integer chainProperty() {
        String v = System.getProperty("tttbench.mlp.chain", "auto").strip();
        if (v.isEmpty() || v.equals("auto")) return null;
        int c = Integer.parseInt(v);
        if (c != 1 && c != 2 && c != 4) throw new IllegalArgumentException("tttbench.mlp.chain: auto, 1, 2 or 4, not " + v);
        return c;
    }

    /**
     * Makes the TTT-MLP inner backward at interval 1 run its chain on {@code blocks} blocks per
     * (batch, head) (1: one block; 2, 4: a cluster; null: the device's choice), for timing and
     * verification.
     */
    void forceChain(Integer blocks) {
        if (blocks != null && blocks != 1 && blocks != 2 && blocks != 4) {
            throw new IllegalArgumentException("chain blocks 1, 2 or 4, not " + blocks);
        }
        this.forcedChain = blocks;
    }

    /** Whether the device runs thread block clusters (NVIDIA sm_90 and newer). */
    private boolean clusters() {
        String arch = rt.architecture();
        if (!rt.name().equals("cuda") || !arch.startsWith("sm_")) return false;
        try {
            return Integer.parseInt(arch.substring(3).replaceAll("[^0-9].*$", "")) >= 90;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    /**
     * The chains (blocks per (batch, head)) the TTT-MLP parallel backward of this shape can run on
     * this device: 1, and clusters of 2 and 4 where the device has clusters and their shared memory
     * fits; empty for TTT-Linear or where the parallel form does not fit.
     */
    List<Integer> chains(TttType type, int headDim, int miniBatch) {
        InnerBackwardLayout layout = new InnerBackwardLayout(type, headDim, miniBatch);
        if (type != TttType.MLP || !layout.parallelFits(rt.maxSharedMemoryPerBlock())) return List.of();
        List<Integer> all = new java.util.ArrayList<>(List.of(1));
        if (clusters()) {
            for (int c : new int[] {2, 4}) {
                if (layout.chainClusterFits(c, rt.maxSharedMemoryPerBlock())) all.add(c);
            }
        }
        return all;
    }

    /**
     * The chain an inner backward over {@code pairs} (batch × heads) runs on: forced, or on a device
     * with clusters a cluster of 4 while the clusters fit on the device at once (a quarter of the
     * hidden columns a block: the least work and on-chip data a step, for three exchanges of [K, F]
     * partial sums), else of 2 (the state's gradient then just fits beside the step's buffers),
     * else one block.
     */
    private int chain(InnerBackwardLayout layout, int pairs) {
        List<Integer> can = chains(layout.type(), layout.headDim(), layout.miniBatch());
        if (forcedChain != null) {
            if (!can.contains(forcedChain)) {
                throw new IllegalArgumentException("the TTT-MLP backward chain on " + forcedChain + " blocks does not run on "
                        + rt.deviceName() + " (" + rt.architecture() + ") at this shape; it runs on " + can);
            }
            return forcedChain;
        }
        if (can.contains(4) && 4L * pairs <= rt.multiprocessorCount()) return 4;
        if (can.contains(2)) return 2;
        return 1;
    }

    /** Every placement an inner backward of this shape can run with on this device, fastest first. */
    List<InnerPlacement> placements(TttType type, int headDim, int miniBatch) {
        InnerBackwardLayout layout = new InnerBackwardLayout(type, headDim, miniBatch);
        return Arrays.stream(InnerPlacement.values())
                .filter(p -> layout.sharedBytes(p) <= rt.maxSharedMemoryPerBlock())
                .toList();
    }

    void innerBackward(InnerInputs in, GpuTensor checkpoints, int interval, GpuTensor dOut, InnerGrads grads) {
        String op = "innerBackward";
        boolean mlp = in.type() == TttType.MLP;
        int b = in.batch();
        int h = in.heads();
        int l = in.seqLen();
        int f = in.headDim();
        int k = in.miniBatch();
        if (l % k != 0) throw new IllegalArgumentException(op + ": seq len " + l + " not divisible by " + k);
        if (interval < 1) throw new IllegalArgumentException(op + ": checkpoint interval must be >= 1, got " + interval);
        int f1 = mlp ? 4 * f : f;
        long heads = (long) b * h * l * f;
        DType t = g(in.xq()).dtype();
        requireSize(op, "xq", g(in.xq()), heads);
        requireSize(op, "xk", g(in.xk()), heads);
        requireSize(op, "xv", g(in.xv()), heads);
        requireSize(op, "lr", g(in.lr()), (long) b * h * l);
        requireSize(op, "tok", g(in.tok()), k);
        requireSize(op, "normWeight", g(in.normWeight()), (long) h * f);
        requireSize(op, "normBias", g(in.normBias()), (long) h * f);
        requireSize(op, "dOut", dOut, heads);
        sameType(op, t, in.xk(), in.xv(), in.lr(), in.tok(), in.normWeight(), in.normBias(), dOut);
        requireSize(op, "dXQ", g(grads.xq()), heads);
        requireSize(op, "dXK", g(grads.xk()), heads);
        requireSize(op, "dXV", g(grads.xv()), heads);
        requireSize(op, "dlr", g(grads.lr()), (long) b * h * l);
        requireSize(op, "dtok", g(grads.tok()), k);
        requireSize(op, "dW1", g(grads.w1()), (long) h * f * f1);
        requireSize(op, "db1", g(grads.b1()), (long) h * f1);
        requireSize(op, "dγ", g(grads.normWeight()), (long) h * f);
        requireSize(op, "dβ", g(grads.normBias()), (long) h * f);
        sameType(op, t, grads.xq(), grads.xk(), grads.xv(), grads.lr(), grads.tok(), grads.w1(), grads.b1(),
                grads.normWeight(), grads.normBias());
        if (mlp) {
            requireSize(op, "dW2", g(grads.w2()), (long) h * f1 * f);
            requireSize(op, "db2", g(grads.b2()), (long) h * f);
            sameType(op, t, grads.w2(), grads.b2());
        }
        InnerBackwardLayout layout = new InnerBackwardLayout(in.type(), f, k);
        long stateFloats = layout.packedStateFloats();
        int slots = (l / k + interval - 1) / interval;
        requireSize(op, "checkpoints", checkpoints, slots * (long) b * h * stateFloats);
        sameType(op, DType.FLOAT32, checkpoints);

        if (interval == 1 && forcedPlacement == null && layout.parallelFits(rt.maxSharedMemoryPerBlock())) {
            innerBackwardParallel(in, layout, checkpoints, dOut, grads, t);
            return;
        }
        InnerPlacement p = forcedPlacement != null ? forcedPlacement : layout.choose(rt.maxSharedMemoryPerBlock());
        long shared = layout.sharedBytes(p);
        if (shared > rt.maxSharedMemoryPerBlock()) {
            throw new IllegalArgumentException("inner backward placement " + p + " needs " + shared
                    + " bytes of shared memory per block; this device allows " + rt.maxSharedMemoryPerBlock());
        }
        long wsFloats = layout.workspaceFloats(p);
        int rsSlots = InnerBackwardLayout.recomputedStates(interval);
        long ws = scratch("inner workspace", 4L * b * h * (wsFloats + rsSlots * stateFloats));
        long partFloats = layout.partialFloats();
        long part = scratch("inner partials", 4L * b * h * partFloats);
        long fn = function((mlp ? "ttt_mlp_backward_" : "ttt_linear_backward_") + p.kernelName(), t);
        raiseSharedLimit(fn, shared);
        launch.start(fn).p(in.xq()).p(in.xk()).p(in.xv()).p(in.lr()).p(in.tok()).p(in.normWeight()).p(in.normBias())
                .p(dOut).p(checkpoints).i(interval).p(grads.xq()).p(grads.xk()).p(grads.xv()).p(grads.lr()).p(part)
                .p(ws).i(Math.toIntExact(wsFloats)).i(rsSlots).i((int) shared).i(h).i(l).i(f).i(k)
                .f((float) ModelConfig.LAYER_NORM_EPS)
                .launch(Math.multiplyExact(b, h), SCAN_THREADS, (int) shared);

        // Parameter gradients: the per-(b, h) partials summed over b, in order, into each head's slice.
        int pf = Math.toIntExact(partFloats);
        long at = 0;
        at = sumPiece(part, at, g(grads.w1()), b, h, pf, f * f1);
        at = sumPiece(part, at, g(grads.b1()), b, h, pf, f1);
        if (mlp) {
            at = sumPiece(part, at, g(grads.w2()), b, h, pf, f1 * f);
            at = sumPiece(part, at, g(grads.b2()), b, h, pf, f);
        }
        at = sumPiece(part, at, g(grads.normWeight()), b, h, pf, f);
        at = sumPiece(part, at, g(grads.normBias()), b, h, pf, f);
        // dtok: every (b, h) summed, overwriting.
        sumPartials(part + 4 * at, g(grads.tok()), b * h, pf, 1, 0, k, false);
    }

    /**
     * Every state kept (interval 1): the local gradients of all mini-batches at once, the
     * sequential recurrence of the state's gradient, then the rest of each mini-batch's gradients
     * at once (hip/ttt_{linear,mlp}_backward_parallel.hip), and the fixed-order sums.
     */
    private void innerBackwardParallel(InnerInputs in, InnerBackwardLayout layout, GpuTensor checkpoints, GpuTensor dOut,
            InnerGrads grads, DType t) {
        boolean mlp = in.type() == TttType.MLP;
        String prefix = mlp ? "ttt_mlp_bwd_" : "ttt_linear_bwd_";
        int b = in.batch();
        int h = in.heads();
        int l = in.seqLen();
        int f = in.headDim();
        int k = in.miniBatch();
        int f1 = mlp ? 4 * f : f;
        int n = l / k;
        int pairs = Math.multiplyExact(b, h);
        float eps = (float) ModelConfig.LAYER_NORM_EPS;
        long records = scratch("inner records", 4L * n * pairs * layout.recordFloats());
        int stateFloats = Math.toIntExact(layout.packedStateFloats());
        long part = scratch("inner partials", 4L * pairs * stateFloats);
        int tail = 2 * f + k;  // dγ, dβ, dtok of one (mini-batch, batch·head)
        long finish = scratch("inner finish partials", 4L * n * pairs * tail);
        int local = Math.toIntExact(4 * layout.parallelLocalFloats());
        int chain = Math.toIntExact(4 * layout.parallelChainFloats());
        int fin = Math.toIntExact(4 * layout.parallelFinishFloats());

        long fn = function(prefix + "local", t);
        raiseSharedLimit(fn, local);
        launch.start(fn).p(in.xq()).p(in.xk()).p(in.xv()).p(in.lr()).p(in.tok()).p(in.normWeight()).p(in.normBias())
                .p(dOut).p(checkpoints).p(grads.xq()).p(records).i(local).i(h).i(l).i(f).i(k).f(eps)
                .launch(pairs, n, SCAN_THREADS, local);
        int blocks = mlp ? chain(layout, pairs) : 1;
        if (blocks > 1) {
            chain = Math.toIntExact(4 * layout.parallelChainClusterFloats(blocks));
            fn = function(prefix + "chain_cluster" + blocks, t);
        } else if (!mlp && LinearChain.fixed(f, k) && 4 * layout.parallelChainFixedFloats() <= rt.maxSharedMemoryPerBlock()) {
            chain = Math.toIntExact(4 * layout.parallelChainFixedFloats());
            fn = function("ttt_linear_bwd_chain_fixed", t);
        } else {
            fn = function(prefix + "chain", t);
        }
        raiseSharedLimit(fn, chain);
        KernelLaunch c = launch.start(fn).p(in.xq()).p(in.xk()).p(in.xv()).p(in.lr()).p(in.tok()).p(in.normWeight())
                .p(in.normBias());
        if (mlp) c.p(checkpoints);
        c.p(records).p(part).i(chain).i(h).i(l).i(f).i(k).f(eps).launch(Math.multiplyExact(pairs, blocks), SCAN_THREADS,
                chain);
        fn = function(prefix + "finish", t);
        raiseSharedLimit(fn, fin);
        launch.start(fn).p(in.xk()).p(in.xv()).p(in.lr()).p(in.tok()).p(in.normWeight()).p(in.normBias())
                .p(checkpoints).p(records).p(grads.xk()).p(grads.xv()).p(grads.lr()).p(finish).i(fin).i(h).i(l).i(f).i(k)
                .launch(pairs, n, SCAN_THREADS, fin);

        // The state's gradient of each (b, h), packed as a state, summed over b into each head's slice.
        long at = 0;
        at = sumPiece(part, at, g(grads.w1()), b, h, stateFloats, f * f1);
        at = sumPiece(part, at, g(grads.b1()), b, h, stateFloats, f1);
        if (mlp) {
            at = sumPiece(part, at, g(grads.w2()), b, h, stateFloats, f1 * f);
            sumPiece(part, at, g(grads.b2()), b, h, stateFloats, f);
        }
        sumPartials(finish, g(grads.normWeight()), n * b, h * tail, h, tail, f, true);
        sumPartials(finish + 4L * f, g(grads.normBias()), n * b, h * tail, h, tail, f, true);
        sumPartials(finish + 8L * f, g(grads.tok()), n * pairs, tail, 1, 0, k, false);
    }

    /** Adds floats [at, at + cols) of every (b, h) partial into grad [H, cols], summed over b; returns at + cols. */
    private long sumPiece(long part, long at, GpuTensor grad, int batch, int heads, int partFloats, int cols) {
        sumPartials(part + 4 * at, grad, batch, heads * partFloats, heads, partFloats, cols, true);
        return at + cols;
    }

    // ---------------------------------------------------------------- feed-forward

    void swigluBackward(GpuTensor gate, GpuTensor up, GpuTensor dOut, GpuTensor dGate, GpuTensor dUp) {
        String op = "swigluBackward";
        long n = gate.elements();
        for (GpuTensor t : new GpuTensor[] {up, dOut, dGate, dUp}) requireSize(op, "every tensor", t, n);
        sameType(op, gate.dtype(), up, dOut, dGate, dUp);
        kernel("swiglu_backward", gate.dtype()).p(gate).p(up).p(dOut).p(dGate).p(dUp).i(elements(op, gate))
                .launch(blocks(n), THREADS, 0);
    }

    // ---------------------------------------------------------------- helpers

    /**
     * out[r, c] (+)= Σ_t part[t·termStride + r·rowStride + c] (float32 partials at device address
     * {@code part}), t ascending: the fixed-order reduction of hip/reduce.hip.
     */
    private void sumPartials(long part, GpuTensor out, int terms, int termStride, int rows, int rowStride, int cols,
            boolean accumulate) {
        long n = (long) rows * cols;
        if (out.elements() < n) throw new IllegalArgumentException("sum of partials into " + out + ": " + n + " values");
        kernel("sum_partials", out.dtype()).p(part).p(out).i(terms).i(termStride).i(rows).i(rowStride).i(cols)
                .i(accumulate ? 1 : 0).launch(blocks(n), THREADS, 0);
    }

    /**
     * A named scratch buffer of at least {@code bytes} bytes, grown on first use of a larger size
     * (setup or warmup: the timed region repeats sizes already seen). Its contents are undefined.
     */
    private long scratch(String name, long bytes) {
        long[] s = scratch.get(name);
        if (s == null || s[1] < bytes) {
            s = new long[] {memory.carve(bytes), bytes};
            scratch.put(name, s);
        }
        return s[0];
    }

    private static GpuTensor g(Tensor t) {
        if (t instanceof GpuTensor gt) return gt;
        throw new IllegalArgumentException(t == null ? "a tensor is missing (null)"
                : "tensor " + t + " does not belong to the GPU backend");
    }

    private int blocks(long n) {
        return (int) Math.max(1, Math.min((n + THREADS - 1) / THREADS, maxBlocks));
    }

    private static int elements(String op, GpuTensor t) {
        if (t.elements() > Integer.MAX_VALUE) {
            throw new UnsupportedOperationException(op + ": " + t + " has more than 2^31-1 elements");
        }
        return (int) t.elements();
    }

    private static int rows(String op, GpuTensor x, int dim) {
        if (dim <= 0 || x.elements() % dim != 0) {
            throw new IllegalArgumentException(op + ": " + x + " is not a whole number of rows of " + dim);
        }
        return Math.toIntExact(x.elements() / dim);
    }

    private static void requireSize(String op, String what, GpuTensor t, long n) {
        if (t.elements() != n) throw new IllegalArgumentException(op + ": " + what + " must have " + n + " elements, got " + t);
    }

    private static void sameType(String op, DType type, Tensor... ts) {
        for (Tensor t : ts) {
            if (g(t).dtype() != type) {
                throw new IllegalArgumentException(op + ": " + t + " is not stored as " + type.flag() + " like the others");
            }
        }
    }

    private void raiseSharedLimit(long function, long bytes) {
        Long set = sharedLimits.get(function);
        if (set != null && set >= bytes) return;
        rt.setMaxDynamicSharedMemory(function, (int) bytes);
        sharedLimits.put(function, bytes);
    }

    private static String suffix(DType t) {
        return switch (t) {
            case FLOAT32 -> "f32";
            case BFLOAT16 -> "bf16";
            case FLOAT16 -> "f16";
        };
    }

    private long function(String name, DType t) {
        String full = name + "_" + suffix(t);
        Long f = functions.get(full);
        if (f != null) return f;
        long fn = rt.function(modules.get(moduleOf(name)), full);
        functions.put(full, fn);
        return fn;
    }

    private static String moduleOf(String kernel) {
        if (kernel.startsWith("ttt_linear_backward_")) return "ttt_linear_backward";
        if (kernel.startsWith("ttt_linear_bwd_")) return "ttt_linear_backward_parallel";
        if (kernel.startsWith("ttt_mlp_bwd_")) return "ttt_mlp_backward_parallel";
        if (kernel.startsWith("ttt_mlp_backward_")) return "ttt_mlp_backward";
        return switch (kernel) {
            case "sum_partials" -> "reduce";
            case "swiglu_backward" -> "elementwise_backward";
            case "embedding_backward" -> "embedding_backward";
            case "rmsnorm_backward", "layernorm_backward" -> "norms_backward";
            case "split_heads_backward", "ttt_lr_backward", "ttt_lr_backward_params", "token_eta_backward" ->
                    "ttt_inputs_backward";
            default -> throw new IllegalArgumentException("no module holds kernel " + kernel);
        };
    }

    private KernelLaunch kernel(String name, DType t) {
        return launch.start(function(name, t));
    }

    /**
     * Which kernel runs the TTT-Linear chain at interval 1: {@code fixed} (the default) picks
     * ttt_linear_bwd_chain_fixed where it is built for the shape (F 64 or 32, K 16 or 8) and its
     * shared memory fits (125m inner backward on an H100: 1.94 ms against 3.75, docs/perf.md);
     * {@code -Dtttbench.linear.chain=base} keeps ttt_linear_bwd_chain everywhere.
     */
    static final class LinearChain {
        static final String PROPERTY = "tttbench.linear.chain";

        private LinearChain() {
        }

        static boolean fixed(int headDim, int miniBatch) {
            String v = System.getProperty(PROPERTY, "fixed");
            return switch (v) {
                case "fixed" -> (headDim == 64 || headDim == 32) && (miniBatch == 16 || miniBatch == 8);
                case "base" -> false;
                default -> throw new IllegalArgumentException(PROPERTY + " must be fixed or base, got " + v);
            };
        }
    }
}
