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

    /**
     * Runs {@code work} and then frees every buffer it allocated on this backend, as if it had
     * never run: its tensors must not be used afterwards, and {@link #peakMemoryBytes()} no longer
     * counts them. A benchmark checks its kernels this way on the backend it then times, before
     * it allocates its own buffers. A backend whose memory the garbage collector manages just
     * runs the work.
     */
    default void runReleasing(Runnable work) {
        work.run();
    }

    /** The inner-scan kernels this backend runs at {@code shape} now (forced ones where forced). */
    default KernelChoice kernels(ScanShape shape) {
        return new KernelChoice(name(), name());
    }

    /**
     * The inner-scan kernels of {@link #kernels} a benchmark runs (the forward's, and with
     * {@code backward} the backward's too), each with how its code was built (compiled for the
     * exact shape, or the build's own object), for the result line.
     */
    default String describeKernels(ScanShape shape, boolean backward) {
        KernelChoice k = kernels(shape);
        return backward ? k.label() : k.forward();
    }

    /**
     * Every inner-scan kernel this backend can run at {@code shape} on this device, each option
     * naming one direction: what a check runs one by one. Empty where there is no choice.
     */
    default List<KernelChoice> kernelOptions(ScanShape shape) {
        return List.of();
    }

    /**
     * Runs the inner scans with the kernels {@code choice} names instead of the backend's own
     * choice ({@link KernelChoice#OWN}: back to that), so that checks and timings reach every
     * kernel. A named kernel that cannot run a scan's shape fails that scan.
     *
     * @throws UnsupportedOperationException on a backend without kernels to choose from
     */
    default void force(KernelChoice choice) {
        if (!choice.equals(KernelChoice.OWN)) {
            throw new UnsupportedOperationException("the " + name() + " backend has no inner-scan kernels to choose from");
        }
    }

    /** Highest number of bytes this backend held at once, or -1 when unknown. */
    long peakMemoryBytes();

    @Override
    void close();
}
