package org.tttbench.gpu;

import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;

/**
 * The argument checks every launcher makes before a launch: that tensors belong to the GPU
 * backend, have the sizes the op needs and one storage type. A wrong call is an
 * {@link IllegalArgumentException} naming the op and the tensor, never a kernel reading out of
 * bounds.
 */
final class Checks {

    private Checks() {
    }

    static GpuTensor gpu(Tensor t) {
        if (t instanceof GpuTensor g) return g;
        throw new IllegalArgumentException(t == null ? "a tensor is missing (null)"
                : "tensor " + t + " does not belong to the GPU backend");
    }

    /** Element count as the kernels' int. */
    static int elements(String op, Tensor t) {
        long n = gpu(t).elements();
        if (n > Integer.MAX_VALUE) throw new UnsupportedOperationException(op + ": " + t + " has more than 2^31-1 elements");
        return (int) n;
    }

    static int rows(String op, Tensor x, int dim) {
        GpuTensor g = gpu(x);
        if (dim <= 0 || g.elements() % dim != 0) {
            throw new IllegalArgumentException(op + ": " + x + " is not a whole number of rows of " + dim);
        }
        return Math.toIntExact(g.elements() / dim);
    }

    static void requireSize(String op, String what, Tensor t, long n) {
        if (gpu(t).elements() != n) {
            throw new IllegalArgumentException(op + ": " + what + " must have " + n + " elements, got " + t);
        }
    }

    static void sameSize(String op, Tensor a, Tensor like) {
        if (gpu(a).elements() != gpu(like).elements()) {
            throw new IllegalArgumentException(op + ": " + a + " and " + like + " differ in size");
        }
    }

    static void sameType(String op, DType type, Tensor... ts) {
        for (Tensor t : ts) {
            if (gpu(t).dtype() != type) {
                throw new IllegalArgumentException(op + ": " + t + " is not stored as " + type.flag() + " like the others");
            }
        }
    }

    /** A saved statistic: null, or float32 with one value per row. */
    static void statistic(String op, String what, Tensor t, int rows) {
        if (t == null) return;
        requireSize(op, what, t, rows);
        sameType(op, DType.FLOAT32, t);
    }
}
