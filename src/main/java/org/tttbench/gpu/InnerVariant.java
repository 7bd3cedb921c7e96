package org.tttbench.gpu;

/**
 * Which inner-scan kernel runs: one block per (batch, head) with its state placed as
 * {@code placement}, or (on devices with thread block clusters) a cluster of {@code cluster}
 * blocks per (batch, head) that split the inner model's columns, state in shared memory;
 * {@code schedule} picks among kernels of the same placement that order a mini-batch's work
 * differently.
 */
public record InnerVariant(InnerPlacement placement, int cluster, Schedule schedule) {

    /** How a kernel orders a mini-batch's phases. */
    public enum Schedule {
        /** The four-phase kernels (ttt_*_shared, _stateglobal, _global, _clusterN). */
        BASE,
        /**
         * Fewer phases a mini-batch (TTT-Linear three, TTT-MLP eight), with compile-time
         * instances for the common head dims: ttt_linear_fused (one block), ttt_mlp_fused and
         * ttt_mlp_fusedclusterN; state in shared memory.
         */
        FUSED,
        /**
         * TTT-Linear's fused schedule with Q W moved from the first phase to the second
         * (ttt_linear_fusedqb): the phases balanced differently.
         */
        FUSED_QB
    }

    public InnerVariant {
        if (cluster > 1 && placement != InnerPlacement.SHARED) {
            throw new IllegalArgumentException("a cluster keeps its state in shared memory");
        }
        if (schedule != Schedule.BASE && placement != InnerPlacement.SHARED) {
            throw new IllegalArgumentException("the fused schedule keeps its state in shared memory");
        }
    }

    public InnerVariant(InnerPlacement placement, int cluster) {
        this(placement, cluster, Schedule.BASE);
    }

    public static InnerVariant single(InnerPlacement placement) {
        return new InnerVariant(placement, 1);
    }

    public static InnerVariant cluster(int blocks) {
        return new InnerVariant(InnerPlacement.SHARED, blocks);
    }

    /** The fused schedule on one block, state in shared memory. */
    public static InnerVariant fused() {
        return fused(1);
    }

    /** The fused schedule on a cluster of {@code blocks} (1: one block). */
    public static InnerVariant fused(int blocks) {
        return new InnerVariant(InnerPlacement.SHARED, blocks, Schedule.FUSED);
    }

    /** TTT-Linear's fused schedule with Q W in the second phase (one block, state in shared memory). */
    public static InnerVariant fusedQb() {
        return new InnerVariant(InnerPlacement.SHARED, 1, Schedule.FUSED_QB);
    }

    /** The part of the kernel's entry-point name: ttt_mlp_{name}_f32, … */
    public String kernelName() {
        if (schedule == Schedule.FUSED_QB) return "fusedqb";
        if (schedule == Schedule.FUSED) return cluster > 1 ? "fusedcluster" + cluster : "fused";
        return cluster > 1 ? "cluster" + cluster : placement.kernelName();
    }

    @Override
    public String toString() {
        return kernelName();
    }
}
