package org.tttbench.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;
import org.tttbench.config.DType;

/**
 * c = op(a) · op(b) (+ c) on row-major float32 arrays, accumulated in float64. The output is
 * cut into tiles, computed in parallel; each tile walks k in blocks, copying the blocks of a
 * and b it needs into contiguous buffers first, so that transposed operands cost the same as
 * plain ones and the innermost loop (over columns j) is a straight vectorisable sweep. The
 * tile sizes were picked by measurement: a b block of 16 × 512 floats stays in L1. Products
 * with few rows (the token count of a verification run: 128) would make only a handful of such
 * tiles, so tiles shrink until every core has several; each output element still sums its k
 * terms in ascending order into its own float64 accumulator, so the tiling never changes a bit.
 */
final class Matmul {

    private static final int TILE_M = 64;
    private static final int TILE_N = 512;
    private static final int TILE_K = 16;
    /** The smallest tiles shrinking goes to: below them packing b costs more than it saves. */
    private static final int MIN_TILE_M = 16;
    private static final int MIN_TILE_N = 128;
    /** Tiles per worker thread wanted, so that uneven tiles at the edges still balance. */
    private static final int TILES_PER_THREAD = 4;

    /** Per-thread scratch: a packed block of a, a packed block of b, the tile's accumulators. */
    private record Scratch(double[] pa, float[] pb, double[] acc) {
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(() -> new Scratch(
            new double[TILE_M * TILE_K], new float[TILE_K * TILE_N], new double[TILE_M * TILE_N]));

    private Matmul() {
    }

    /**
     * @param a [m, k], or [k, m] when transA
     * @param b [k, n], or [n, k] when transB
     * @param c [m, n], stored rounded to {@code cType}
     */
    static void multiply(float[] a, float[] b, float[] c, DType cType, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate) {
        int want = TILES_PER_THREAD * Math.max(1, ForkJoinPool.getCommonPoolParallelism());
        int tileM = TILE_M;
        int tileN = TILE_N;
        while (tiles(m, tileM) * (long) tiles(n, tileN) < want && (tileM > MIN_TILE_M || tileN > MIN_TILE_N)) {
            // Narrower b blocks first while they stay long sweeps, then fewer rows.
            if (tileN > MIN_TILE_N && (tileN >= 4 * tileM || tileM == MIN_TILE_M)) {
                tileN /= 2;
            } else {
                tileM /= 2;
            }
        }
        int tm = tileM;
        int tn = tileN;
        int tilesM = tiles(m, tm);
        int tilesN = tiles(n, tn);
        IntStream.range(0, tilesM * tilesN).parallel().forEach(tile -> {
            int i0 = (tile / tilesN) * tm;
            int j0 = (tile % tilesN) * tn;
            int mb = Math.min(tm, m - i0);
            int nb = Math.min(tn, n - j0);
            Scratch s = SCRATCH.get();
            double[] pa = s.pa();
            float[] pb = s.pb();
            double[] acc = s.acc();
            for (int i = 0; i < mb; i++) {
                for (int j = 0; j < nb; j++) acc[i * nb + j] = accumulate ? c[(i0 + i) * n + j0 + j] : 0.0;
            }
            for (int k0 = 0; k0 < k; k0 += TILE_K) {
                int kb = Math.min(TILE_K, k - k0);
                packA(a, pa, m, k, transA, i0, mb, k0, kb);
                packB(b, pb, n, k, transB, j0, nb, k0, kb);
                for (int i = 0; i < mb; i++) {
                    int row = i * nb;
                    for (int kk = 0; kk < kb; kk++) axpy(pa[i * kb + kk], pb, kk * nb, acc, row, nb);
                }
            }
            for (int i = 0; i < mb; i++) {
                for (int j = 0; j < nb; j++) c[(i0 + i) * n + j0 + j] = cType.round((float) acc[i * nb + j]);
            }
        });
    }

    private static int tiles(int size, int tile) {
        return (size + tile - 1) / tile;
    }

    /**
     * y[yo + j] += a · x[xo + j]. x is float32 and y float64 on purpose: arrays of different
     * types cannot alias, which lets the JIT vectorise this loop.
     */
    private static void axpy(double a, float[] x, int xo, double[] y, int yo, int n) {
        for (int j = 0; j < n; j++) y[yo + j] += a * x[xo + j];
    }

    /** pa[i, kk] = op(a)[i0 + i, k0 + kk]. */
    private static void packA(float[] a, double[] pa, int m, int k, boolean transA, int i0, int mb, int k0, int kb) {
        if (transA) {
            for (int kk = 0; kk < kb; kk++) {
                int src = (k0 + kk) * m + i0;
                for (int i = 0; i < mb; i++) pa[i * kb + kk] = a[src + i];
            }
        } else {
            for (int i = 0; i < mb; i++) {
                int src = (i0 + i) * k + k0;
                for (int kk = 0; kk < kb; kk++) pa[i * kb + kk] = a[src + kk];
            }
        }
    }

    /** pb[kk, j] = op(b)[k0 + kk, j0 + j]. */
    private static void packB(float[] b, float[] pb, int n, int k, boolean transB, int j0, int nb, int k0, int kb) {
        if (transB) {
            for (int j = 0; j < nb; j++) {
                int src = (j0 + j) * k + k0;
                for (int kk = 0; kk < kb; kk++) pb[kk * nb + j] = b[src + kk];
            }
        } else {
            for (int kk = 0; kk < kb; kk++) {
                int src = (k0 + kk) * n + j0;
                for (int j = 0; j < nb; j++) pb[kk * nb + j] = b[src + j];
            }
        }
    }
}
