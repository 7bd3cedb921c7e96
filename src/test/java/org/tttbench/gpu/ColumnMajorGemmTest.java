package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ColumnMajorGemmTest {

    /** Reference BLAS sgemm, column-major: C = alpha op(A) op(B) + beta C. */
    private static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int lda,
            float[] b, int ldb, float beta, float[] c, int ldc) {
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < m; i++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    double av = transA ? a[p + i * lda] : a[i + p * lda];
                    double bv = transB ? b[j + p * ldb] : b[p + j * ldb];
                    s += av * bv;
                }
                c[i + j * ldc] = (float) (alpha * s + beta * c[i + j * ldc]);
            }
        }
    }

    /** The row-major product of TttOps.matmul, written out directly. */
    private static float[] rowMajor(float[] a, float[] b, float[] c0, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate) {
        float[] c = accumulate ? c0.clone() : new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = accumulate ? c[i * n + j] : 0;
                for (int p = 0; p < k; p++) {
                    double av = transA ? a[p * m + i] : a[i * k + p];
                    double bv = transB ? b[j * k + p] : b[p * n + j];
                    s += av * bv;
                }
                c[i * n + j] = (float) s;
            }
        }
        return c;
    }

    private static float[] random(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    @Test
    void everyTransposeCombinationMatchesTheRowMajorProduct() {
        SplittableRandom r = new SplittableRandom(7);
        // Distinct, non-square sizes, so a swapped m/n or a wrong leading dimension shows.
        int m = 5;
        int n = 7;
        int k = 3;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                for (boolean acc : new boolean[] {false, true}) {
                    float[] a = random(r, m * k);
                    float[] b = random(r, k * n);
                    float[] c = random(r, m * n);
                    float[] expected = rowMajor(a, b, c, m, n, k, ta, tb, acc);
                    ColumnMajorGemm g = ColumnMajorGemm.of(m, n, k, ta, tb);
                    float[] got = acc ? c.clone() : new float[m * n];
                    sgemm(g.transFirst(), g.transSecond(), g.rows(), g.cols(), g.depth(), 1f, b, g.ldFirst(), a,
                            g.ldSecond(), acc ? 1f : 0f, got, g.ldResult());
                    assertArrayEquals(expected, got, 1e-5f, "transA=" + ta + " transB=" + tb + " accumulate=" + acc);
                }
            }
        }
    }

    @Test
    void linearLayerMapsToTransposeOfTheWeight() {
        // y [T, out] = x [T, in] · Wᵀ, W stored [out, in]: column-major Yᵀ = op(W) Xᵀ with op = T.
        ColumnMajorGemm g = ColumnMajorGemm.of(10, 4, 6, false, true);
        assertEquals(new ColumnMajorGemm(true, false, 4, 10, 6, 6, 6, 4), g);
    }

    @Test
    void rejectsEmptySizes() {
        assertThrows(IllegalArgumentException.class, () -> ColumnMajorGemm.of(0, 1, 1, false, false));
    }
}
