package org.tttbench.backend;

import java.util.ArrayList;
import java.util.List;
import org.tttbench.config.DType;

/**
 * Where the ops run. Memory is allocated in setup, never in the timed region. A backend
 * stores float tensors in its {@link #dtype()} unless asked for another type.
 */
public interface Backend extends TttOps, AutoCloseable {

    /** "cpu", "cuda" or "hip". */
    String name();

    /** Human-readable device, e.g. "NVIDIA H100 80GB HBM3 (sm_90)" or "CPU (2 threads)". */
    String device();

    /** Storage type of weights and activations. */
    DType dtype();

    /** A zero-filled tensor stored in {@link #dtype()}. */
    default Tensor allocate(int... shape) {
        return allocate(dtype(), shape);
    }

    /** A zero-filled tensor stored in the given type (inner states and norm statistics are float32). */
    Tensor allocate(DType storage, int... shape);

    /**
     * Zero-filled tensors of the given shapes, in order, stored in the given type; a backend with
     * one address space (a GPU's) places them back to back in one block, so that ops over several
     * of them ({@link #fillAll}, {@link #matmulBatched}) can run as one launch. Equal shapes then
     * lie at a fixed stride.
     */
    default List<Tensor> allocateAdjacent(DType storage, List<int[]> shapes) {
        List<Tensor> out = new ArrayList<>(shapes.size());
        for (int[] s : shapes) out.add(allocate(storage, s));
        return out;
    }

    /** Copies host data (rounded to the tensor's storage type) into t; data.length == t.size(). */
    void upload(float[] data, Tensor t);

    /** Copies t to the host as float32. */
    float[] download(Tensor t);

    /** Token ids [batch, seqLen], copied to the backend. */
    TokenIds uploadIds(int[] ids, int batch, int seqLen);

    /** Blocks until every op issued so far has finished. */
    void synchronize();

    /** Highest number of bytes this backend held at once, or -1 when unknown. */
    long peakMemoryBytes();

    @Override
    void close();
}
