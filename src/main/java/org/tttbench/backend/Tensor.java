package org.tttbench.backend;

import java.util.Arrays;
import org.tttbench.config.DType;

/**
 * A dense row-major array owned by one backend: host memory for the CPU backend, device
 * memory for a GPU backend. Elements are stored in {@link #dtype()} and read as float32.
 */
public interface Tensor {

    int[] shape();

    DType dtype();

    /** Number of elements. */
    default long size() {
        long n = 1;
        for (int d : shape()) n *= d;
        return n;
    }

    static String describe(int[] shape) {
        return Arrays.toString(shape);
    }
}
