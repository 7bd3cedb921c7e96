package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;
import org.tttbench.config.TttType;

class InnerBackwardLayoutTest {

    private static final long H100_SHARED = 232448;

    @Test
    void sizesFollowTheKernelLayout() {
        InnerBackwardLayout l = new InnerBackwardLayout(TttType.LINEAR, 64, 16);
        // W [64][68], b [64], then dW, db; 14 [16][68], 5 [16][20], 4 × 16, 4 × 64.
        assertEquals(2 * (64 * 68 + 64), l.stateFloats());
        assertEquals(14 * 16 * 68 + 5 * 16 * 20 + 4 * 16 + 4 * 64, l.scratchFloats());
        assertEquals(64 * 64 + 64, l.packedStateFloats());
        assertEquals(64 * 64 + 64 + 2 * 64 + 16, l.partialFloats());
        InnerBackwardLayout m = new InnerBackwardLayout(TttType.MLP, 64, 16);
        assertEquals(2 * (64 * 260 + 256 + 256 * 68 + 64), m.stateFloats());
        assertEquals(13 * 16 * 68 + 9 * 16 * 260 + 9 * 16 * 20 + 4 * 16 + 4 * 64, m.scratchFloats());
        assertEquals(2 * 64 * 256 + 256 + 64, m.packedStateFloats());
        assertEquals(0, m.workspaceFloats(InnerPlacement.SHARED));
        assertEquals(m.stateFloats(), m.workspaceFloats(InnerPlacement.STATE_GLOBAL));
        assertEquals(m.stateFloats() + m.scratchFloats(), m.workspaceFloats(InnerPlacement.ALL_GLOBAL));
    }

    @Test
    void hopperKeepsLinearOnChipAndTheMlpScratch() {
        for (int f : new int[] {32, 64, 96}) {
            assertEquals(InnerPlacement.SHARED, new InnerBackwardLayout(TttType.LINEAR, f, 16).choose(H100_SHARED), "F=" + f);
        }
        assertEquals(InnerPlacement.SHARED, new InnerBackwardLayout(TttType.MLP, 32, 16).choose(H100_SHARED));
        assertEquals(InnerPlacement.STATE_GLOBAL, new InnerBackwardLayout(TttType.MLP, 64, 16).choose(H100_SHARED));
        assertEquals(InnerPlacement.ALL_GLOBAL, new InnerBackwardLayout(TttType.MLP, 96, 16).choose(H100_SHARED));
        assertEquals(InnerPlacement.ALL_GLOBAL, new InnerBackwardLayout(TttType.LINEAR, 64, 16).choose(0));
    }

    @Test
    void theParallelFormFitsHopperUpToTheMlpOfHeadDim96() {
        for (int f : new int[] {32, 64, 96}) {
            assertEquals(true, new InnerBackwardLayout(TttType.LINEAR, f, 16).parallelFits(H100_SHARED), "linear F=" + f);
        }
        assertEquals(true, new InnerBackwardLayout(TttType.MLP, 32, 16).parallelFits(H100_SHARED));
        assertEquals(true, new InnerBackwardLayout(TttType.MLP, 64, 16).parallelFits(H100_SHARED));
        assertEquals(false, new InnerBackwardLayout(TttType.MLP, 96, 16).parallelFits(H100_SHARED));
        assertEquals(false, new InnerBackwardLayout(TttType.LINEAR, 64, 16).parallelFits(64 * 1024 - 1));
        // G, ZH, DG, DZB, DK, DZ, DV, DGG [16][64], DETA [16][16], sigma [16], dγ and dβ [64].
        assertEquals(8 * 16 * 64 + 16 * 16 + 16 + 128, new InnerBackwardLayout(TttType.LINEAR, 64, 16).recordFloats());
    }

    @Test
    void theMlpChainFitsClustersOfTwoAndFourOnHopper() {
        InnerBackwardLayout m = new InnerBackwardLayout(TttType.MLP, 64, 16);
        // 13 [16][68]; own columns: 8 [16][132], W2 [128][68], dW1 [64][132], dW2 [128][68], db1 [128]; db2, γ, β [64]; 3 × 16.
        assertEquals(13 * 16 * 68 + 8 * 16 * 132 + 128 * 68 + 64 * 132 + 128 * 68 + 128 + 64 + 3 * 16 + 2 * 64,
                m.parallelChainClusterFloats(2));
        assertEquals(true, m.chainClusterFits(2, H100_SHARED));
        assertEquals(true, m.chainClusterFits(4, H100_SHARED));
        assertEquals(false, m.chainClusterFits(8, H100_SHARED));
        assertEquals(true, new InnerBackwardLayout(TttType.MLP, 32, 8).chainClusterFits(4, H100_SHARED));
        assertEquals(false, new InnerBackwardLayout(TttType.MLP, 96, 16).chainClusterFits(2, H100_SHARED));
        assertEquals(false, new InnerBackwardLayout(TttType.MLP, 40, 16).chainClusterFits(2, H100_SHARED));
        assertEquals(false, new InnerBackwardLayout(TttType.LINEAR, 64, 16).chainClusterFits(2, H100_SHARED));
    }

    @Test
    void segmentsRecomputeAllButTheirFirstAndLastStates() {
        assertEquals(0, InnerBackwardLayout.recomputedStates(1));
        assertEquals(0, InnerBackwardLayout.recomputedStates(2));
        assertEquals(14, InnerBackwardLayout.recomputedStates(16));
    }

    @Test
    void shapesTheKernelsCannotTileAreRefused() {
        assertThrows(UnsupportedOperationException.class, () -> new InnerBackwardLayout(TttType.LINEAR, 30, 16));
        assertThrows(UnsupportedOperationException.class, () -> new InnerBackwardLayout(TttType.MLP, 64, 18));
        assertThrows(UnsupportedOperationException.class, () -> new InnerBackwardLayout(TttType.MLP, 64, 68));
    }
}
