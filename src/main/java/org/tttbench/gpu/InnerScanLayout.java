package org.tttbench.gpu;

import org.tttbench.config.TttType;

/**
 * The memory one block of an inner-scan kernel needs, mirroring linear_state_floats,
 * linear_scratch_floats, mlp_state_floats and mlp_scratch_floats in hip/ttt_linear.hip and
 * hip/ttt_mlp.hip. The kernels recompute these and write NaN instead of running when the host
 * sized differently, so a mismatch fails verification rather than corrupting memory.
 */
record InnerScanLayout(TttType type, int headDim, int miniBatch) {

    /** kSplitW2 and kSplitAttn of hip/ttt_mlp.hip. */
    private static final int MLP_SPLIT_W2 = 2;
    private static final int MLP_SPLIT_ATTN = 4;

    InnerScanLayout {
        if (headDim % 4 != 0) {
            throw new UnsupportedOperationException("the GPU inner scan needs a head dim divisible by 4, got " + headDim);
        }
        if (miniBatch % 4 != 0 || miniBatch > 64) {
            throw new UnsupportedOperationException(
                    "the GPU inner scan needs a mini-batch that is a multiple of 4 and at most 64, got " + miniBatch);
        }
    }

    long stateFloats() {
        long f = headDim;
        return switch (type) {
            case LINEAR -> f * (f + 4) + f;
            case MLP -> f * (4 * f + 4) + 4 * f + 4 * f * (f + 4) + f;
        };
    }

    long scratchFloats() {
        long f = headDim;
        long k = miniBatch;
        return switch (type) {
            case LINEAR -> 5 * k * (f + 4) + k * (k + 4) + 2 * k + 2 * f;
            case MLP -> (5 + MLP_SPLIT_W2) * k * (f + 4) + 3 * k * (4 * f + 4) + (1 + MLP_SPLIT_ATTN) * k * (k + 4)
                    + 2 * k + 2 * f;
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
