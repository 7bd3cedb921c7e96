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
        // W [64][68] + b [64]; Q, K, V-K, Z, ZB [16][68], M [16][20], lr, tok [16], gamma, beta [64].
        assertEquals(64 * 68 + 64, l.stateFloats());
        assertEquals(5 * 16 * 68 + 16 * 20 + 32 + 128, l.scratchFloats());
        assertEquals(4 * (l.stateFloats() + l.scratchFloats()), l.sharedBytes(InnerPlacement.SHARED));
        assertEquals(0, l.workspaceFloats(InnerPlacement.SHARED));
        assertEquals(l.stateFloats(), l.workspaceFloats(InnerPlacement.STATE_GLOBAL));
        assertEquals(0, l.sharedBytes(InnerPlacement.ALL_GLOBAL));
    }

    @Test
    void rejectsShapesTheKernelsDoNotTile() {
        assertThrows(UnsupportedOperationException.class, () -> new InnerScanLayout(TttType.LINEAR, 64, 6));
        assertThrows(UnsupportedOperationException.class, () -> new InnerScanLayout(TttType.LINEAR, 64, 128));
        assertThrows(UnsupportedOperationException.class, () -> new InnerScanLayout(TttType.MLP, 34, 16));
    }
}
