package org.tttbench.gpu;

import java.util.List;
import org.tttbench.backend.InnerInputs;
import org.tttbench.config.TttType;

/**
 * The launcher of hip/ttt_linear.hip: the TTT-Linear inner scan forward and backward, and their
 * variant tables (measurements behind each order in docs/perf.md).
 */
final class TttLinear extends TttScan {

    private static final String F = "ttt_linear_forward_";
    private static final String B = "ttt_linear_backward_";

    private final List<Row> forward;
    private final List<Row> backward;

    TttLinear(KernelRegistry kernels, Scratch scratch, Elementwise elementwise) {
        super(TttType.LINEAR, "ttt_linear", kernels, scratch, elementwise);
        // The fused scan (three phases a mini-batch) where its state and buffers fit one block's shared
        // memory (H100, 125m: 0.52 ms against 0.97 for the four-phase kernel); else the four-phase
        // kernel with as much as fits on chip.
        this.forward = List.of(
                new Row(F + "fused", s -> runs(F + "fused", s)),
                new Row(F + "shared", s -> runs(F + "shared", s)),
                new Row(F + "stateglobal", s -> runs(F + "stateglobal", s)),
                new Row(F + "global", s -> runs(F + "global", s)));
        // At interval 1 the parallel form, its chain at fixed shapes where it is built for them (H100,
        // 125m inner backward 1.94 ms against 3.75 for the generic chain; its shapes are the table
        // TTT_LINEAR_CHAIN_FIXED_SHAPES in hip/ttt_linear.hip: another shape's shared memory fits no
        // device); otherwise the one-launch walk.
        this.backward = List.of(
                new Row(B + "chain_fixed", s -> parallelRuns(B + "chain_fixed", s)),
                new Row(B + "chain", s -> parallelRuns(B + "chain", s)),
                new Row(B + "walk_shared", s -> runs(B + "walk_shared", s)),
                new Row(B + "walk_stateglobal", s -> runs(B + "walk_stateglobal", s)),
                new Row(B + "walk_global", s -> runs(B + "walk_global", s)));
    }

    @Override
    List<String> localKernels() {
        return List.of(B + "local");
    }

    @Override
    List<Row> forwardTable() {
        return forward;
    }

    @Override
    List<Row> backwardTable() {
        return backward;
    }

    @Override
    void innerModelArgs(KernelLaunch launch, InnerInputs in) {
    }

    @Override
    boolean chainReadsCheckpoints() {
        return false;
    }
}
