package org.tttbench.gpu;

import org.tttbench.config.TttType;

/**
 * The memory one block of an inner-scan backward kernel needs, mirroring linear_bwd_state_floats,
 * linear_bwd_scratch_floats, mlp_bwd_state_floats and mlp_bwd_scratch_floats in
 * hip/ttt_linear_backward.hip and hip/ttt_mlp_backward.hip. The kernels recompute these and
 * write NaN instead of running when the host sized differently.
 *
 * <p>"State" is the inner state and its gradient, padded on chip; a packed state (the
 * checkpoints' layout) has {@link #packedStateFloats()} floats.
 */
record InnerBackwardLayout(TttType type, int headDim, int miniBatch) {

    InnerBackwardLayout {
        if (headDim % 4 != 0) {
            throw new UnsupportedOperationException("the GPU inner backward needs a head dim divisible by 4, got " + headDim);
        }
        if (miniBatch % 4 != 0 || miniBatch > 64) {
            throw new UnsupportedOperationException(
                    "the GPU inner backward needs a mini-batch that is a multiple of 4 and at most 64, got " + miniBatch);
        }
    }

    /** Floats of one packed state: W1, b1 (W2, b2). */
    long packedStateFloats() {
        long f = headDim;
        return switch (type) {
            case LINEAR -> f * f + f;
            case MLP -> 8 * f * f + 5 * f;
        };
    }

    /** Floats of one (batch, head)'s partial: the packed state's gradient, dγ, dβ, dtok. */
    long partialFloats() {
        return packedStateFloats() + 2L * headDim + miniBatch;
    }

    long stateFloats() {
        long f = headDim;
        return switch (type) {
            case LINEAR -> 2 * (f * (f + 4) + f);
            case MLP -> 2 * (f * (4 * f + 4) + 4 * f + 4 * f * (f + 4) + f);
        };
    }

    long scratchFloats() {
        long f = headDim;
        long k = miniBatch;
        return switch (type) {
            case LINEAR -> 14 * k * (f + 4) + 5 * k * (k + 4) + 4 * k + 4 * f;
            case MLP -> 13 * k * (f + 4) + 9 * k * (4 * f + 4) + 9 * k * (k + 4) + 4 * k + 4 * f;
        };
    }

    long sharedBytes(InnerPlacement p) {
        return 4 * switch (p) {
            case SHARED -> stateFloats() + scratchFloats();
            case STATE_GLOBAL -> scratchFloats();
            case ALL_GLOBAL -> 0;
        };
    }

    long workspaceFloats(InnerPlacement p) {
        return switch (p) {
            case SHARED -> 0;
            case STATE_GLOBAL -> stateFloats();
            case ALL_GLOBAL -> stateFloats() + scratchFloats();
        };
    }

    // The parallel form of the backward for interval 1 (hip/ttt_linear_backward_parallel.hip:
    // par_record_floats, par_local_floats, par_chain_floats, par_finish_floats; hip/ttt_mlp_backward_parallel.hip:
    // mpar_record_floats, mpar_local_floats, mpar_chain_floats, mpar_finish_floats).

    /** Floats of the record one (mini-batch, batch·head) passes between the three launches. */
    long recordFloats() {
        long f = headDim;
        long k = miniBatch;
        return switch (type) {
            case LINEAR -> 8 * k * f + k * k + k + 2 * f;
            case MLP -> 9 * k * 4 * f + 7 * k * f + k * k + k + 2 * f;
        };
    }

    long parallelLocalFloats() {
        long f = headDim;
        long k = miniBatch;
        return switch (type) {
            case LINEAR -> f * (f + 4) + f + 10 * k * (f + 4) + 4 * k * (k + 4) + 3 * k + 2 * f;
            case MLP -> 13 * k * (f + 4) + 9 * k * (4 * f + 4) + 11 * k * (k + 4) + 3 * k + 2 * f;
        };
    }

    long parallelChainFloats() {
        long f = headDim;
        long k = miniBatch;
        return switch (type) {
            case LINEAR -> f * (f + 4) + f + 9 * k * (f + 4) + 3 * k + 2 * f;
            case MLP -> 13 * k * (f + 4) + 8 * k * (4 * f + 4) + 3 * k + 2 * f;
        };
    }

    /** ttt_linear_bwd_chain_fixed's shared memory (fixed_chain_floats): two mini-batches' buffers, dW', db', dZ. */
    long parallelChainFixedFloats() {
        long f = headDim;
        long k = miniBatch;
        return 2 * (8 * k * (f + 4) + 3 * k) + f * (f + 4) + f + k * (f + 4) + 2 * f + k;
    }

    long parallelFinishFloats() {
        long f = headDim;
        long k = miniBatch;
        return switch (type) {
            case LINEAR -> f * (f + 4) + f + k * (f + 4) + 2 * k + 2 * f;
            case MLP -> k * (4 * f + 4) + 2 * k + 2 * f;
        };
    }

    /**
     * One block's floats of the TTT-MLP chain on a cluster of {@code cluster} blocks, each owning
     * 4F / cluster hidden columns (hip/ttt_mlp_backward_parallel.hip: mpar_cluster_chain_floats).
     */
    long parallelChainClusterFloats(int cluster) {
        long f = headDim;
        long k = miniBatch;
        long f1c = 4 * f / cluster;
        return 13 * k * (f + 4) + 8 * k * (f1c + 4) + f1c * (f + 4) + f * (f1c + 4) + f1c * (f + 4) + f1c + f + 3 * k
                + 2 * f;
    }

    /** Whether the TTT-MLP chain runs on a cluster of {@code cluster} blocks with this shared memory a block. */
    boolean chainClusterFits(int cluster, long maxSharedBytes) {
        return type == TttType.MLP && (cluster == 2 || cluster == 4) && headDim % 16 == 0 && headDim % (4 * cluster) == 0
                && 4 * parallelChainClusterFloats(cluster) <= maxSharedBytes;
    }

    /** Whether the parallel form runs here: every one of its kernels' shared memory fits. */
    boolean parallelFits(long maxSharedBytes) {
        return 4 * Math.max(parallelLocalFloats(), Math.max(parallelChainFloats(), parallelFinishFloats())) <= maxSharedBytes;
    }

    /** States a segment of {@code interval} mini-batches recomputes into global scratch. */
    static int recomputedStates(int interval) {
        return Math.max(0, interval - 2);
    }

    /** The fastest placement that fits {@code maxSharedBytes} of shared memory per block. */
    InnerPlacement choose(long maxSharedBytes) {
        for (InnerPlacement p : InnerPlacement.values()) {
            if (sharedBytes(p) <= maxSharedBytes) return p;
        }
        throw new IllegalStateException("unreachable: the global placement needs no shared memory");
    }
}
