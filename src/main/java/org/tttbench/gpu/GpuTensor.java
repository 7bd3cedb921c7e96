package org.tttbench.gpu;

import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;

/** A tensor in device memory of one {@link GpuBackend}: {@code ptr} is its first element. */
record GpuTensor(long ptr, int[] shape, DType dtype, long elements) implements Tensor {

    long bytes() {
        return elements * dtype.bytes();
    }

    @Override
    public long size() {
        return elements;
    }

    @Override
    public String toString() {
        return "gpu " + dtype.flag() + " tensor " + Tensor.describe(shape);
    }
}
