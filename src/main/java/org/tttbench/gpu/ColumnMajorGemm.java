package org.tttbench.gpu;

/**
 * A row-major product C = op(A)·op(B) ([m, n], op(A) [m, k], op(B) [k, n]) as the column-major
 * call BLAS defines. A row-major matrix read column-major is its transpose, so the row-major
 * Cᵀ = op(B)ᵀ·op(A)ᵀ is computed instead: the operands swap places, m and n swap, and each
 * operand keeps its own transpose flag, because B stored row-major [k, n] already reads as
 * Bᵀ column-major (and B stored [n, k] for transB reads as B, so op T gives back Bᵀ).
 *
 * @param transFirst   op of the first BLAS operand, which is B's memory
 * @param transSecond  op of the second BLAS operand, which is A's memory
 * @param rows         BLAS m (= n of the row-major product)
 * @param cols         BLAS n (= m)
 * @param depth        BLAS k (= k)
 * @param ldFirst      leading dimension of B's memory: its row length
 * @param ldSecond     leading dimension of A's memory: its row length
 * @param ldResult     leading dimension of C: its row length n
 */
public record ColumnMajorGemm(boolean transFirst, boolean transSecond, int rows, int cols, int depth, int ldFirst,
        int ldSecond, int ldResult) {

    public static ColumnMajorGemm of(int m, int n, int k, boolean transA, boolean transB) {
        if (m <= 0 || n <= 0 || k <= 0) {
            throw new IllegalArgumentException("matmul sizes must be positive: m=" + m + " n=" + n + " k=" + k);
        }
        // A is stored [m, k] (or [k, m] when transposed), B [k, n] (or [n, k]).
        int lda = transA ? m : k;
        int ldb = transB ? k : n;
        return new ColumnMajorGemm(transB, transA, n, m, k, ldb, lda, n);
    }
}
