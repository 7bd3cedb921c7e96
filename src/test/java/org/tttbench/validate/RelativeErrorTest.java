package org.tttbench.validate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class RelativeErrorTest {

    private static final float INF = Float.POSITIVE_INFINITY;

    @Test
    void isRelativeAndAbsoluteForAZeroReference() {
        assertEquals(0.5, RelativeError.of(new float[] {3, 4}, new float[] {6, 8}), 1e-12);
        assertEquals(0.5, RelativeError.of(new float[] {0.3f, 0.4f}, new double[] {0, 0}), 1e-7);
        assertEquals(0.1, RelativeError.of(new float[] {1.1f, 0f}, new double[] {1, 0}), 1e-6);
        assertEquals(0.0, RelativeError.of(new float[] {0, 0}, new float[] {0, 0}));
    }

    @Test
    void nanAnywhereFails() {
        assertTrue(Double.isNaN(RelativeError.of(new float[] {1, Float.NaN}, new float[] {1, 2})));
        assertTrue(Double.isNaN(RelativeError.of(new float[] {1, 2}, new float[] {1, Float.NaN})));
        assertTrue(Double.isNaN(RelativeError.of(new float[] {Float.NaN, Float.NaN}, new float[] {Float.NaN, Float.NaN})));
    }

    @Test
    void anInfinityAgreesOnlyWithTheSameInfinityAtTheSameEntry() {
        assertTrue(Double.isNaN(RelativeError.of(new float[] {1, INF}, new float[] {1, 2})));
        assertTrue(Double.isNaN(RelativeError.of(new float[] {1, 2}, new float[] {1, INF})));
        assertTrue(Double.isNaN(RelativeError.of(new float[] {1, INF}, new float[] {1, -INF})));
        assertTrue(Double.isNaN(RelativeError.of(new float[] {INF, 1}, new float[] {1, INF})));
        // Overflowing where the reference overflows the same way is agreement; the finite rest is compared.
        assertEquals(0.5, RelativeError.of(new float[] {3, -INF, 4}, new float[] {6, -INF, 8}), 1e-12);
    }

    @Test
    void aTensorThatOverflowedEverywhereFailsEvenAgainstTheSameInfinities() {
        assertTrue(Double.isNaN(RelativeError.of(new float[] {INF, -INF}, new float[] {INF, -INF})));
        assertTrue(Double.isNaN(RelativeError.of(new float[] {INF}, new double[] {Double.POSITIVE_INFINITY})));
    }

    @Test
    void theSpreadSkipsWhatOverflowedIn16Bits() {
        assertEquals(0.5, RelativeError.spread(new float[] {3, INF, 4}, new float[] {6, 70000, 8}), 1e-12);
        assertTrue(Double.isNaN(RelativeError.spread(new float[] {INF}, new float[] {70000})));
        assertEquals(0.0, RelativeError.spread(new float[] {}, new float[] {}));
    }

    @Test
    void tolerancesFromTheSpreadHaveAFloorAndStayExactForCopies() {
        assertEquals(Tolerances.SPREAD_FACTOR * 0.01, Tolerances.reduced(Tolerances.Kind.MODEL, 0.01), 1e-15);
        assertEquals(Tolerances.float32(Tolerances.Kind.REDUCE, false), Tolerances.reduced(Tolerances.Kind.REDUCE, 0));
        assertEquals(0, Tolerances.reduced(Tolerances.Kind.EXACT, 0.5));
        assertEquals(Tolerances.CANCELLING_SPREAD_FACTOR * 0.01, Tolerances.reduced(Tolerances.Kind.CANCELLING, 0.01),
                1e-15);
        assertEquals(Tolerances.float32(Tolerances.Kind.MODEL, false), Tolerances.reduced(Tolerances.Kind.CANCELLING, 0));
        assertTrue(Double.isNaN(Tolerances.reduced(Tolerances.Kind.CANCELLING, Double.NaN)));
        assertTrue(Double.isNaN(Tolerances.reduced(Tolerances.Kind.SCAN, Double.NaN)));
        assertEquals(Tolerances.GOLDEN_FLOAT32, Tolerances.golden(org.tttbench.config.DType.FLOAT32, 0.3));
    }
}
