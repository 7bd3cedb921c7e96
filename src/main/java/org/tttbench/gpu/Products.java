package org.tttbench.gpu;

import static org.tttbench.gpu.Checks.gpu;
import static org.tttbench.gpu.Checks.requireSize;
import static org.tttbench.gpu.Checks.sameType;

import java.util.List;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TttOps;
import org.tttbench.config.DType;

/**
 * Matrix products through the vendor BLAS (float32 accumulation; TF32 only when asked for):
 * one product, several with operands at fixed strides as one strided-batched call, and sums of
 * products chained onto one result.
 */
final class Products {

    private final Blas blas;
    private final boolean tf32;

    Products(Blas blas, boolean tf32) {
        this.blas = blas;
        this.tf32 = tf32;
    }

    void matmul(Tensor a, Tensor b, Tensor c, int m, int n, int k, boolean transA, boolean transB, boolean accumulate) {
        GpuTensor gc = gpu(c);
        requireSize("matmul", "a", a, (long) m * k);
        requireSize("matmul", "b", b, (long) k * n);
        requireSize("matmul", "c", gc, (long) m * n);
        sameType("matmul", gc.dtype(), a, b);
        ColumnMajorGemm g = ColumnMajorGemm.of(m, n, k, transA, transB);
        blas.gemm(g.transFirst(), g.transSecond(), g.rows(), g.cols(), g.depth(), 1f, gpu(b).ptr(), g.ldFirst(),
                gpu(a).ptr(), g.ldSecond(), accumulate ? 1f : 0f, gc.ptr(), g.ldResult(), gc.dtype(), tf32);
    }

    /**
     * One strided-batched BLAS call when each operand list is one shared tensor (stride 0) or
     * tensors at a fixed positive stride, and the results do not overlap; otherwise one
     * {@link #matmul} per product. Small products (the 125m projections, under one wave of
     * output tiles each) then fill the device together.
     */
    void matmulBatched(List<Tensor> a, List<Tensor> b, List<Tensor> c, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate) {
        int count = TttOps.batchCount(a, b, c);
        DType type = gpu(c.get(0)).dtype();
        for (int i = 0; i < count; i++) {
            requireSize("matmulBatched", "a", a.get(a.size() == 1 ? 0 : i), (long) m * k);
            requireSize("matmulBatched", "b", b.get(b.size() == 1 ? 0 : i), (long) k * n);
            requireSize("matmulBatched", "c", c.get(i), (long) m * n);
        }
        sameType("matmulBatched", type, a.toArray(Tensor[]::new));
        sameType("matmulBatched", type, b.toArray(Tensor[]::new));
        sameType("matmulBatched", type, c.toArray(Tensor[]::new));
        long strideA = stride(a, type);
        long strideB = stride(b, type);
        long strideC = stride(c, type);
        if (count == 1 || strideA < 0 || strideB < 0 || strideC < (long) m * n) {
            for (int i = 0; i < count; i++) {
                matmul(a.get(a.size() == 1 ? 0 : i), b.get(b.size() == 1 ? 0 : i), c.get(i), m, n, k, transA, transB,
                        accumulate);
            }
            return;
        }
        ColumnMajorGemm g = ColumnMajorGemm.of(m, n, k, transA, transB);
        blas.gemmStridedBatched(g.transFirst(), g.transSecond(), g.rows(), g.cols(), g.depth(), 1f,
                gpu(b.get(0)).ptr(), g.ldFirst(), strideB, gpu(a.get(0)).ptr(), g.ldSecond(), strideA,
                accumulate ? 1f : 0f, gpu(c.get(0)).ptr(), g.ldResult(), strideC, count, type, tf32);
    }

    /**
     * The products one after another onto c, each after the first accumulating: on an H100 this
     * was faster than one batched launch into a workspace and a sum (docs/perf.md), and in
     * 16-bit storage it rounds each partial sum as the reference does.
     */
    void matmulSum(List<Tensor> a, List<Tensor> b, Tensor c, int m, int n, int k, boolean transA, boolean transB,
            boolean accumulate) {
        int count = Math.max(a.size(), b.size());
        TttOps.batchCount(a, b, java.util.Collections.nCopies(count, c));
        for (int i = 0; i < count; i++) {
            matmul(a.get(a.size() == 1 ? 0 : i), b.get(b.size() == 1 ? 0 : i), c, m, n, k, transA, transB,
                    accumulate || i > 0);
        }
    }

    /**
     * The stride in elements from each tensor of {@code ts} to the next: 0 for one shared
     * tensor, −1 when they do not lie at one fixed positive stride.
     */
    private static long stride(List<Tensor> ts, DType type) {
        if (ts.size() == 1) return 0;
        long step = gpu(ts.get(1)).ptr() - gpu(ts.get(0)).ptr();
        if (step <= 0 || step % type.bytes() != 0) return -1;
        for (int i = 2; i < ts.size(); i++) {
            if (gpu(ts.get(i)).ptr() - gpu(ts.get(i - 1)).ptr() != step) return -1;
        }
        return step / type.bytes();
    }
}
