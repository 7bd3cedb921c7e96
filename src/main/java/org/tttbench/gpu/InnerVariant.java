package org.tttbench.gpu;

/**
 * Which inner-scan kernel runs: one block per (batch, head) with its state placed as
 * {@code placement}, or (on devices with thread block clusters) a cluster of {@code cluster}
 * blocks per (batch, head) that split the inner model's columns, state in shared memory.
 */
public record InnerVariant(InnerPlacement placement, int cluster) {

    public InnerVariant {
        if (cluster > 1 && placement != InnerPlacement.SHARED) {
            throw new IllegalArgumentException("a cluster keeps its state in shared memory");
        }
    }

    public static InnerVariant single(InnerPlacement placement) {
        return new InnerVariant(placement, 1);
    }

    public static InnerVariant cluster(int blocks) {
        return new InnerVariant(InnerPlacement.SHARED, blocks);
    }

    /** The part of the kernel's entry-point name: ttt_mlp_{name}_f32, … */
    public String kernelName() {
        return cluster > 1 ? "cluster" + cluster : placement.kernelName();
    }

    @Override
    public String toString() {
        return kernelName();
    }
}
