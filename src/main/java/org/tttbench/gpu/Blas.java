package org.tttbench.gpu;

import org.tttbench.config.DType;

/**
 * Matrix products through the vendor BLAS (cuBLAS / hipBLAS), column-major as BLAS defines
 * them: C = alpha·op(A)·op(B) + beta·C with float32 accumulation. Operands and result are
 * stored in {@code type}. {@code tf32} allows the float32 path to use TF32 matrix units
 * (NVIDIA only; ignored elsewhere).
 */
public interface Blas {

    void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda, long b, int ldb,
            float beta, long c, int ldc, DType type, boolean tf32);

    void gemmStridedBatched(boolean transA, boolean transB, int m, int n, int k, float alpha,
            long a, int lda, long strideA, long b, int ldb, long strideB, float beta,
            long c, int ldc, long strideC, int batchCount, DType type, boolean tf32);
}
