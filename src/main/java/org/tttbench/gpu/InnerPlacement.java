package org.tttbench.gpu;

/**
 * Where an inner-scan kernel keeps the inner state and its per-mini-batch scratch (the
 * Placement of hip/ttt_scan.h): shared memory is fastest; the global workspace, which stays
 * in cache, serves devices whose shared memory is too small for a head dimension.
 */
public enum InnerPlacement {
    /** State and scratch in shared memory. */
    SHARED("shared"),
    /** State in the global workspace, scratch in shared memory. */
    STATE_GLOBAL("stateglobal"),
    /** Both in the global workspace. */
    ALL_GLOBAL("global");

    private final String kernelName;

    InnerPlacement(String kernelName) {
        this.kernelName = kernelName;
    }

    /** The part of the kernel's entry-point name: ttt_linear_{name}_f32, … */
    public String kernelName() {
        return kernelName;
    }
}
