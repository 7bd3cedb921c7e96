package org.tttbench.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.tttbench.config.DType;

/**
 * The tiled, parallel product against the plainest loop: each element summed over k in
 * ascending order in float64, then rounded once. They must agree bit for bit whatever the
 * tiling, so that the reference's results do not depend on the machine's core count.
 */
class MatmulTest {

    private static float[] random(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian();
        return v;
    }

    private static float[] plain(float[] a, float[] b, float[] c0, DType type, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate) {
        float[] c = c0.clone();
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double acc = accumulate ? c[i * n + j] : 0.0;
                for (int p = 0; p < k; p++) {
                    double x = transA ? a[p * m + i] : a[i * k + p];
                    float y = transB ? b[j * k + p] : b[p * n + j];
                    acc += x * y;
                }
                c[i * n + j] = type.round((float) acc);
            }
        }
        return c;
    }

    @Test
    void everyTilingSumsEachElementInTheSameOrder() {
        SplittableRandom r = new SplittableRandom(7);
        // Shapes with few rows (tiles shrink), many rows, edges that leave partial tiles, k not a
        // multiple of the k block.
        int[][] shapes = {{128, 768, 200}, {2, 3, 5}, {130, 1100, 37}, {1000, 130, 64}, {17, 129, 1000}, {64, 512, 16}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            for (boolean transA : new boolean[] {false, true}) {
                for (boolean transB : new boolean[] {false, true}) {
                    for (boolean accumulate : new boolean[] {false, true}) {
                        for (DType type : new DType[] {DType.FLOAT32, DType.BFLOAT16}) {
                            float[] a = random(r, m * k);
                            float[] b = random(r, k * n);
                            float[] c = random(r, m * n);
                            type.round(c);
                            float[] want = plain(a, b, c, type, m, n, k, transA, transB, accumulate);
                            Matmul.multiply(a, b, c, type, m, n, k, transA, transB, accumulate);
                            for (int i = 0; i < c.length; i++) {
                                if (Float.floatToRawIntBits(c[i]) != Float.floatToRawIntBits(want[i])) {
                                    assertEquals(want[i], c[i], String.format("%dx%dx%d transA %b transB %b acc %b %s at %d",
                                            m, n, k, transA, transB, accumulate, type, i));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
