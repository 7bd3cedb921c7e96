package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class KernelIndexTest {

    @Test
    void linesParseAndSizesEvaluate() {
        KernelIndex i = KernelIndex.parse("""
                # a comment
                norms @launch norms_rmsnorm 256 1 min(ROWS,65535) 1 0
                ttt_mlp @launch ttt_mlp_forward_fusedcluster4 256 4 PAIRS*4 1 4*(F*(F+4))
                ttt_mlp @size ttt_mlp_state_floats 8*(F)*(F)+5*(F)
                """);
        KernelIndex.Launch l = i.launch("ttt_mlp_forward_fusedcluster4");
        assertEquals("ttt_mlp", l.module());
        assertEquals(4, l.cluster());
        assertEquals(48, l.gridX().eval(LaunchVars.of("PAIRS", 12)));
        assertEquals(8 * 64 * 64 + 5 * 64, i.size("ttt_mlp_state_floats", LaunchVars.of("F", 64)));
        assertEquals(65535, i.launch("norms_rmsnorm").gridX().eval(LaunchVars.of("ROWS", 100000)));
        assertThrows(GpuException.class, () -> i.launch("norms_layernorm"));
        assertThrows(GpuException.class, () -> i.size("nothing", LaunchVars.none()));
    }

    @Test
    void aBadLineNamesItsNumber() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KernelIndex.parse("norms @launch norms_rmsnorm 256 1 min(ROWS 1 0\n"));
        assertTrue(e.getMessage().contains("line 1"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KernelIndex.parse("norms @launch a 256 1 1 1 0\nnorms @launch a 256 1 1 1 0\n"));
    }

    /** The index the build wrote: every expression evaluates at every shape of the grid, sizes are non-negative. */
    @Test
    void theBuiltIndexEvaluatesEverywhere() {
        KernelIndex i = KernelIndex.packaged();
        Assumptions.assumeFalse(i.launches().isEmpty(), "no kernels built (kernels.skip)");
        assertTrue(i.launches().keySet().containsAll(Set.of("elementwise_fill", "norms_rmsnorm_backward",
                "ttt_linear_forward_fused", "ttt_mlp_backward_chain_cluster4")));
        assertFalse(i.launches().containsKey("ttt_linear_cluster2"), "the variants no table chooses are gone");
        for (int f : new int[] {32, 64, 96, 128}) {
            for (int k : new int[] {8, 16, 32, 64}) {
                LaunchVars v = LaunchVars.of("F", f).and("K", k).and("PAIRS", 12).and("MB", 2048 / k)
                        .and("INTERVAL", 4).and("N", 1 << 20).and("MAXB", 4224).and("ROWS", 2048).and("D", 768)
                        .and("CHUNK", 16).and("H", 12).and("TOKENS", 2048);
                for (KernelIndex.Launch l : i.launches().values()) {
                    assertTrue(l.sharedBytes().eval(v) >= 0 && l.gridX().eval(v) >= 1 && l.gridY().eval(v) >= 1, l.name());
                }
                i.sizes().forEach((name, e) -> assertTrue(e.eval(v) >= 0, name));
            }
        }
    }

    /**
     * The TTT-Linear fixed chain has instances at its shapes only: there its shared memory fits an
     * sm_90 block, anywhere else it is more than any device has, so the variant table never picks it.
     */
    @Test
    void theFixedChainFitsAtItsShapesOnly() {
        KernelIndex i = KernelIndex.packaged();
        Assumptions.assumeFalse(i.launches().isEmpty(), "no kernels built (kernels.skip)");
        KernelIndex.Launch chain = i.launch("ttt_linear_backward_chain_fixed");
        int[][] built = {{64, 32}, {64, 16}, {64, 8}, {32, 32}, {32, 16}, {32, 8}, {96, 16}};
        int[][] not = {{64, 64}, {32, 64}, {96, 32}, {96, 8}, {128, 16}, {48, 16}};
        for (int[] fk : built) {
            long bytes = chain.sharedBytes().eval(LaunchVars.of("F", fk[0]).and("K", fk[1]).and("PAIRS", 12));
            assertTrue(bytes > 0 && bytes <= 232448, "F " + fk[0] + " K " + fk[1] + ": " + bytes);
        }
        for (int[] fk : not) {
            long bytes = chain.sharedBytes().eval(LaunchVars.of("F", fk[0]).and("K", fk[1]).and("PAIRS", 12));
            assertTrue(bytes > 64L << 20, "F " + fk[0] + " K " + fk[1] + ": " + bytes);
        }
    }

    /**
     * The TTT-MLP fused forward fits an sm_90 block (232448 bytes) wherever its clusters fit the
     * device at B = 1: on a cluster of 8 at F = 64 (125m) for every mini-batch of the grid, on a
     * cluster of 4 at F = 32 (125m-h32) and at F = 96 (760m) up to K = 32. A second set of inputs
     * (double-buffering) would not fit at K = 64 or at F = 96, K = 32.
     */
    @Test
    void theFusedForwardFitsEveryMiniBatchOfTheGridOnTheClustersThatRunIt() {
        KernelIndex i = KernelIndex.packaged();
        Assumptions.assumeFalse(i.launches().isEmpty(), "no kernels built (kernels.skip)");
        int[][] fits = {{8, 64, 8}, {8, 64, 16}, {8, 64, 32}, {8, 64, 64}, {4, 32, 64}, {4, 96, 16}, {4, 96, 32}};
        for (int[] cfk : fits) {
            KernelIndex.Launch l = i.launch("ttt_mlp_forward_fusedcluster" + cfk[0]);
            long bytes = l.sharedBytes().eval(LaunchVars.of("F", cfk[1]).and("K", cfk[2]).and("PAIRS", 12));
            assertTrue(bytes <= 232448, "cluster of " + cfk[0] + ", F " + cfk[1] + ", K " + cfk[2] + ": " + bytes);
        }
    }
}
