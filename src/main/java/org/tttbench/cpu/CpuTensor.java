package org.tttbench.cpu;

import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;

/**
 * A tensor in host memory: float32 values that are always representable in {@link #dtype()},
 * because every store goes through {@link #set}, which rounds. bfloat16 and float16 are thus
 * emulated exactly, at float32's memory cost.
 */
public final class CpuTensor implements Tensor {

    final float[] data;
    private final int[] shape;
    private final DType dtype;

    CpuTensor(DType dtype, int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in " + Tensor.describe(shape));
            n *= d;
        }
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor " + Tensor.describe(shape) + " is too large for the CPU backend");
        }
        this.data = new float[(int) n];
        this.shape = shape.clone();
        this.dtype = dtype;
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    int dim(int i) {
        return shape[i];
    }

    int length() {
        return data.length;
    }

    float get(int i) {
        return data[i];
    }

    /** Stores v rounded to the storage type. */
    void set(int i, double v) {
        data[i] = dtype.round((float) v);
    }

    /** Adds v to element i, rounding the sum to the storage type (gradient accumulation). */
    void add(int i, double v) {
        data[i] = dtype.round((float) (data[i] + v));
    }

    static CpuTensor of(Tensor t) {
        if (t instanceof CpuTensor c) return c;
        throw new IllegalArgumentException("not a CPU tensor: " + (t == null ? "null" : t.getClass().getName()));
    }

    @Override
    public String toString() {
        return "CpuTensor" + Tensor.describe(shape) + " " + dtype.flag();
    }
}
