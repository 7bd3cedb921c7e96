package org.tttbench.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class DTypeTest {

    @Test
    void bfloat16KeepsEightSignificantBitsRoundingToNearestEven() {
        assertEquals(1.0f, DType.BFLOAT16.round(1.0f));
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
        assertEquals(1.0f, DType.BFLOAT16.round(1.0f + 0x1p-8f));
        assertEquals(1.0f + 0x1p-7f, DType.BFLOAT16.round(1.0f + 0x1p-8f + 0x1p-12f));
        assertEquals(-3.0f, DType.BFLOAT16.round(-3.0f));
        assertTrue(Float.isNaN(DType.BFLOAT16.round(Float.NaN)));
    }

    @Test
    void roundingErrorStaysWithinHalfAnUlpOfEachType() {
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < 10_000; i++) {
            float x = (float) (r.nextGaussian() * 100);
            float b = DType.BFLOAT16.round(x);
            float h = DType.FLOAT16.round(x);
            assertTrue(Math.abs(b - x) <= Math.abs(x) * 0x1p-8f, "bf16 " + x + " -> " + b);
            assertTrue(Math.abs(h - x) <= Math.abs(x) * 0x1p-11f + 0x1p-25f, "f16 " + x + " -> " + h);
            assertEquals(b, DType.BFLOAT16.round(b), "rounding is idempotent");
            assertEquals(x, DType.FLOAT32.round(x));
        }
    }
}
