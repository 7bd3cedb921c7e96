package org.tttbench.gpu;

import org.tttbench.config.TttType;

/**
 * The memory one block of an inner-scan kernel needs, mirroring the *_state_floats and
 * *_scratch_floats functions of hip/ttt_linear.hip and hip/ttt_mlp.hip. The kernels recompute these and write NaN instead of running when the host
 * sized differently, so a mismatch fails verification rather than corrupting memory.
 *
 * @param cluster blocks per (batch, head): 1, or on devices with thread block clusters 2 or 4
 *                (linear: each block holds 1/cluster of W's columns) or 2, 4, 8 (MLP: each
 *                block holds 1/cluster of the hidden layer)
 * @param fused   the fused schedule (ttt_linear_fused: one block, ZB double-buffered; ttt_mlp_fused and
 *                ttt_mlp_fusedclusterN: the inputs double-buffered)
 */
record InnerScanLayout(TttType type, int headDim, int miniBatch, int cluster, boolean fused) {

    /** kSplitW2 of hip/ttt_mlp.hip. */
    private static final int MLP_SPLIT_W2 = 2;
    /** kRowElems of hip/ttt_scan.h times the smaller warp: a row's elements per lane. */
    private static final int MAX_HEAD_DIM = 8 * 32;

    InnerScanLayout {
        if (headDim % 4 != 0 || headDim > MAX_HEAD_DIM) {
            throw new UnsupportedOperationException("the GPU inner scan needs a head dim divisible by 4 and at most "
                    + MAX_HEAD_DIM + ", got " + headDim);
        }
        if (miniBatch % 4 != 0 || miniBatch > 64) {
            throw new UnsupportedOperationException(
                    "the GPU inner scan needs a mini-batch that is a multiple of 4 and at most 64, got " + miniBatch);
        }
        boolean built = type == TttType.MLP ? cluster == 1 || cluster == 2 || cluster == 4 || cluster == 8
                : cluster == 1 || cluster == 2 || cluster == 4;
        if (!built) throw new IllegalArgumentException("no " + type.flag() + " scan kernel for clusters of " + cluster);
        if (type == TttType.MLP && (4 * headDim / cluster) % (4 * MLP_SPLIT_W2) != 0) {
            throw new UnsupportedOperationException("the GPU MLP scan on clusters of " + cluster
                    + " needs 4F/" + cluster + " divisible by " + 4 * MLP_SPLIT_W2 + ", got F=" + headDim);
        }
        if (type == TttType.LINEAR && (headDim / cluster) % 4 != 0) {
            throw new UnsupportedOperationException("the GPU linear scan on clusters of " + cluster
                    + " needs F/" + cluster + " divisible by 4, got F=" + headDim);
        }
        if (fused && type == TttType.LINEAR && cluster != 1) {
            throw new IllegalArgumentException("the fused TTT-Linear scan kernel runs on one block");
        }
    }

    InnerScanLayout(TttType type, int headDim, int miniBatch, int cluster) {
        this(type, headDim, miniBatch, cluster, false);
    }

    InnerScanLayout(TttType type, int headDim, int miniBatch) {
        this(type, headDim, miniBatch, 1);
    }

    /** The layout of {@code v}'s kernel for a scan of this shape. */
    static InnerScanLayout of(InnerVariant v, TttType type, int headDim, int miniBatch) {
        if (v.schedule() == InnerVariant.Schedule.FUSED_QB && (type != TttType.LINEAR || v.cluster() != 1)) {
            throw new IllegalArgumentException("kernel " + v + " is TTT-Linear on one block");
        }
        return new InnerScanLayout(type, headDim, miniBatch, v.cluster(), v.schedule() != InnerVariant.Schedule.BASE);
    }

    long stateFloats() {
        long f = headDim;
        long f1c = 4 * f / cluster;
        long fc = f / cluster;
        return switch (type) {
            case LINEAR -> f * (fc + 4) + fc;
            case MLP -> f * (f1c + 4) + f1c + f1c * (f + 4) + f;
        };
    }

    long scratchFloats() {
        long f = headDim;
        long k = miniBatch;
        long f1c = 4 * f / cluster;
        long partialSets = cluster == 1 ? 1 : 2;
        return switch (type) {
            case LINEAR -> fused ? 10 * k * (f + 4) + k * (k + 4) + 3 * k + 2 * f
                    : cluster == 1 ? 9 * k * (f + 4) + k * (k + 4) + 3 * k + 2 * f
                    : 10 * k * (f + 4) + 3 * k * (f / cluster + 4) + k * (k + 4) + 3 * k + 2 * f;
            case MLP -> (5 + partialSets * MLP_SPLIT_W2) * k * (f + 4) + 3 * k * (f1c + 4) + 2 * k * (k + 4)
                    + 2 * k + 2 * f + (fused ? 3 * k * (f + 4) + k : 0);
        };
    }

    /** Dynamic shared memory of one block. */
    long sharedBytes(InnerPlacement p) {
        return 4 * switch (p) {
            case SHARED -> stateFloats() + scratchFloats();
            case STATE_GLOBAL -> scratchFloats();
            case ALL_GLOBAL -> 0;
        };
    }

    /** Floats of global workspace one block (one (batch, head)) needs. */
    long workspaceFloats(InnerPlacement p) {
        return switch (p) {
            case SHARED -> 0;
            case STATE_GLOBAL -> stateFloats();
            case ALL_GLOBAL -> stateFloats() + scratchFloats();
        };
    }

    /** The fastest placement that fits {@code maxSharedBytes} of shared memory per block. */
    InnerPlacement choose(long maxSharedBytes) {
        for (InnerPlacement p : InnerPlacement.values()) {
            if (sharedBytes(p) <= maxSharedBytes) return p;
        }
        throw new IllegalStateException("unreachable: the global placement needs no shared memory");
    }
}
