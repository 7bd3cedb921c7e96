package org.tttbench.gpu;

import java.util.List;
import org.tttbench.backend.InnerInputs;
import org.tttbench.config.TttType;

/**
 * The launcher of hip/ttt_mlp.hip: the TTT-MLP inner scan forward and backward, and their
 * variant tables (measurements behind each order in docs/perf.md).
 */
final class TttMlp extends TttScan {

    private static final String F = "ttt_mlp_forward_";
    private static final String B = "ttt_mlp_backward_";

    private final List<Row> forward;
    private final List<Row> backward;

    TttMlp(KernelRegistry kernels, Scratch scratch, Elementwise elementwise) {
        super(TttType.MLP, "ttt_mlp", kernels, scratch, elementwise);
        // On a device with clusters, the fused scan (nine phases a mini-batch) on the largest cluster
        // whose blocks all fit on the device at once and whose shared memory fits a block (H200, 125m:
        // clusters of 8 1.04 ms, of 4 1.28, of 2 1.85; the four-phase clusters of 4 2.38 on an H100);
        // else the four-phase kernel on one block.
        this.forward = List.of(
                clustered(F + "fusedcluster8", 8),
                clustered(F + "fusedcluster4", 4),
                clustered(F + "fusedcluster2", 2),
                clustered(F + "cluster4", 4),
                clustered(F + "cluster2", 2),
                new Row(F + "shared", s -> runs(F + "shared", s)),
                new Row(F + "stateglobal", s -> runs(F + "stateglobal", s)),
                new Row(F + "global", s -> runs(F + "global", s)));
        // The parallel form (any interval), its chain on the largest cluster whose clusters fit on the
        // device at once (H200, 125m inner backward: of 8 6.02 ms, of 4 6.51, of 2 8.44, one block
        // 20.7), of 8 also where no smaller chain's shared memory fits (K = 32 at F = 64, F = 96);
        // otherwise the one-launch walk.
        this.backward = List.of(
                new Row(B + "chain_cluster8", s -> chainOnCluster(8, s), s -> 8L * s.pairs() <= kernels.multiprocessors()
                        || !chainOnCluster(4, s) && !chainOnCluster(2, s) && !parallelRuns(B + "chain", s)),
                new Row(B + "chain_cluster4", s -> chainOnCluster(4, s), s -> 4L * s.pairs() <= kernels.multiprocessors()),
                new Row(B + "chain_cluster2", s -> chainOnCluster(2, s)),
                new Row(B + "chain", s -> parallelRuns(B + "chain", s)),
                new Row(B + "walk_shared", s -> runs(B + "walk_shared", s)),
                new Row(B + "walk_stateglobal", s -> runs(B + "walk_stateglobal", s)),
                new Row(B + "walk_global", s -> runs(B + "walk_global", s)));
    }

    /** A forward scan on clusters of {@code c}: its hidden columns split evenly, its clusters on the device at once. */
    private Row clustered(String kernel, int c) {
        return new Row(kernel, s -> (4 * s.headDim() / c) % 8 == 0 && runs(kernel, s), s -> clustersFit(c, s));
    }

    /** The parallel backward's chain on a cluster of {@code c} blocks, each owning 4F / c hidden columns. */
    private boolean chainOnCluster(int c, org.tttbench.backend.ScanShape s) {
        return kernels.clusters() && s.headDim() % 16 == 0 && s.headDim() % (4 * c) == 0
                && parallelRuns(B + "chain_cluster" + c, s);
    }

    @Override
    List<String> localKernels() {
        return List.of(B + "local", B + "local_inrecord");
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
        launch.p(in.w2()).p(in.b2());
    }

    @Override
    boolean chainReadsCheckpoints() {
        return true;
    }
}
