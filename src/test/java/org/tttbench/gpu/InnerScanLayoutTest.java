package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;
import org.tttbench.config.TttType;

class InnerScanLayoutTest {

    private static final long H100_SHARED = 227 * 1024;
    private static final long MI200_SHARED = 64 * 1024;

    @Test
    void hopperKeepsEveryPresetOnChipExceptTheLargestMlpState() {
        for (int f : new int[] {32, 64, 96}) {
            assertEquals(InnerPlacement.SHARED, new InnerScanLayout(TttType.LINEAR, f, 16).choose(H100_SHARED), "linear F=" + f);
        }
        assertEquals(InnerPlacement.SHARED, new InnerScanLayout(TttType.MLP, 32, 16).choose(H100_SHARED));
        assertEquals(InnerPlacement.SHARED, new InnerScanLayout(TttType.MLP, 64, 16).choose(H100_SHARED));
        // W1 and W2 of F=96 are 2 × 96 × 384 floats = 295 KB: only the scratch fits.
        assertEquals(InnerPlacement.STATE_GLOBAL, new InnerScanLayout(TttType.MLP, 96, 16).choose(H100_SHARED));
    }

    @Test
    void smallSharedMemoryFallsBackStepByStep() {
        assertEquals(InnerPlacement.SHARED, new InnerScanLayout(TttType.LINEAR, 64, 16).choose(MI200_SHARED));
        assertEquals(InnerPlacement.STATE_GLOBAL, new InnerScanLayout(TttType.LINEAR, 96, 16).choose(MI200_SHARED));
        assertEquals(InnerPlacement.ALL_GLOBAL, new InnerScanLayout(TttType.MLP, 64, 16).choose(MI200_SHARED));
    }

    @Test
    void sizesFollowTheKernelLayout() {
        InnerScanLayout l = new InnerScanLayout(TttType.LINEAR, 64, 16);
        // W [64][68] + b [64]; two sets of Q, K, V and Z, EG, ZB [16][68]; NM [16][20]; two sets
        // of lr and tok [16]; gamma, beta [64].
        assertEquals(64 * 68 + 64, l.stateFloats());
        assertEquals(9 * 16 * 68 + 16 * 20 + 3 * 16 + 2 * 64, l.scratchFloats());
        assertEquals(4 * (l.stateFloats() + l.scratchFloats()), l.sharedBytes(InnerPlacement.SHARED));
        assertEquals(0, l.workspaceFloats(InnerPlacement.SHARED));
        assertEquals(l.stateFloats(), l.workspaceFloats(InnerPlacement.STATE_GLOBAL));
        assertEquals(0, l.sharedBytes(InnerPlacement.ALL_GLOBAL));
    }

    @Test
    void theFusedKernelsDoubleTheirBuffers() {
        InnerScanLayout l = InnerScanLayout.of(InnerVariant.fused(), TttType.LINEAR, 64, 16);
        assertEquals(64 * 68 + 64, l.stateFloats());
        assertEquals(10 * 16 * 68 + 16 * 20 + 3 * 16 + 2 * 64, l.scratchFloats());
        assertThrows(IllegalArgumentException.class, () -> InnerScanLayout.of(InnerVariant.fused(2), TttType.LINEAR, 64, 16));
        assertEquals(l, InnerScanLayout.of(InnerVariant.fusedQb(), TttType.LINEAR, 64, 16));
        assertThrows(IllegalArgumentException.class, () -> InnerScanLayout.of(InnerVariant.fusedQb(), TttType.MLP, 64, 16));
        // The fused MLP kernels add a second set of Q, K, V - K [16][68] and of the learning rates.
        InnerScanLayout base = new InnerScanLayout(TttType.MLP, 64, 16, 4);
        InnerScanLayout fused = InnerScanLayout.of(InnerVariant.fused(4), TttType.MLP, 64, 16);
        assertEquals(base.stateFloats(), fused.stateFloats());
        assertEquals(base.scratchFloats() + 3 * 16 * 68 + 16, fused.scratchFloats());
    }

    @Test
    void aClusterSplitsTheMlpHiddenLayer() {
        // Block of a cluster of 8 at F=64: W1 [64][32+4], b1 [32], W2 [32][68], b2 [64].
        InnerScanLayout l = new InnerScanLayout(TttType.MLP, 64, 16, 8);
        assertEquals(64 * 36 + 32 + 32 * 68 + 64, l.stateFloats());
        // Q, K, V, G2, EG2 and two sets of 2 partial sums [16][68]; X2, GP, XB [16][36];
        // NM and the block's part of XB X2^T [16][20]; lr, tok [16]; gamma, beta [64].
        assertEquals(9 * 16 * 68 + 3 * 16 * 36 + 2 * 16 * 20 + 32 + 128, l.scratchFloats());
        // A single block shares one set of partial sums between the two products.
        InnerScanLayout one = new InnerScanLayout(TttType.MLP, 64, 16, 1);
        assertEquals(7 * 16 * 68 + 3 * 16 * 260 + 2 * 16 * 20 + 32 + 128, one.scratchFloats());
        // Clusters of 4 and 8 keep F=96 on chip, where one block (or two) cannot.
        for (int c : new int[] {4, 8}) {
            InnerScanLayout big = new InnerScanLayout(TttType.MLP, 96, 16, c);
            assertEquals(InnerPlacement.SHARED, big.choose(H100_SHARED), "cluster " + c);
        }
        assertEquals(InnerPlacement.STATE_GLOBAL, new InnerScanLayout(TttType.MLP, 96, 16, 2).choose(H100_SHARED));
    }

    @Test
    void aLinearClusterSplitsTheColumnsOfW() {
        // Block of a cluster of 4 at F=64: W [64][16+4], b [16].
        InnerScanLayout l = new InnerScanLayout(TttType.LINEAR, 64, 16, 4);
        assertEquals(64 * 20 + 16, l.stateFloats());
        // Two sets of Q, K, V, and Z, EG, ZB rows [16][68]; own Z and two ZB [16][20]; NM [16][20];
        // two sets of lr and tok [16]; gamma, beta [64].
        assertEquals(10 * 16 * 68 + 3 * 16 * 20 + 16 * 20 + 3 * 16 + 2 * 64, l.scratchFloats());
    }

    @Test
    void clustersExistOnlyForTheSizesBuiltAndWholeTiles() {
        assertThrows(IllegalArgumentException.class, () -> new InnerScanLayout(TttType.LINEAR, 64, 16, 8));
        assertThrows(IllegalArgumentException.class, () -> new InnerScanLayout(TttType.MLP, 64, 16, 3));
        // 4F/8 = 18 columns a block: not a whole number of the two 4-column-tiled halves.
        assertThrows(UnsupportedOperationException.class, () -> new InnerScanLayout(TttType.MLP, 36, 16, 8));
        // F/4 = 9 columns a block: not a whole number of 4-column tiles.
        assertThrows(UnsupportedOperationException.class, () -> new InnerScanLayout(TttType.LINEAR, 36, 16, 4));
    }

    @Test
    void rejectsShapesTheKernelsDoNotTile() {
        assertThrows(UnsupportedOperationException.class, () -> new InnerScanLayout(TttType.LINEAR, 64, 6));
        assertThrows(UnsupportedOperationException.class, () -> new InnerScanLayout(TttType.LINEAR, 64, 128));
        assertThrows(UnsupportedOperationException.class, () -> new InnerScanLayout(TttType.MLP, 34, 16));
        assertThrows(UnsupportedOperationException.class, () -> new InnerScanLayout(TttType.LINEAR, 260, 16));
    }
}
