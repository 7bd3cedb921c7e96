package org.tttbench.gpu;

import java.lang.foreign.MemorySegment;

/**
 * The small part of a GPU runtime the suite uses, implemented once over the HIP runtime
 * (libamdhip64) and once over the CUDA driver API (libcuda). Every call's status is checked;
 * a failure throws {@link GpuException} naming the call and the runtime's own error string.
 * All work is issued on the runtime's one stream, in order.
 */
public interface GpuRuntime extends AutoCloseable {

    /** "hip" or "cuda". */
    String name();

    /** The device's marketing name, e.g. "NVIDIA H100 80GB HBM3". */
    String deviceName();

    /**
     * The architecture kernels are built for: "sm_90", "gfx90a", "gfx1030", … (AMD's feature
     * suffixes such as ":sramecc+:xnack-" are not part of it).
     */
    String architecture();

    /** Threads per warp / wavefront (32 or 64). */
    int warpSize();

    int multiprocessorCount();

    /** Largest dynamic shared memory one block may opt in to, in bytes. */
    int maxSharedMemoryPerBlock();

    long totalMemory();

    /** Device allocation (setup only). */
    long malloc(long bytes);

    void free(long devicePtr);

    /** Synchronous host-to-device copy. */
    void copyToDevice(MemorySegment host, long devicePtr, long bytes);

    /** Synchronous device-to-host copy (waits for the stream first). */
    void copyToHost(long devicePtr, MemorySegment host, long bytes);

    /** Asynchronous device-to-device copy on the stream. */
    void copyDeviceToDevice(long src, long dst, long bytes);

    /** Asynchronously sets {@code bytes} bytes to {@code value} on the stream. */
    void memset(long devicePtr, int value, long bytes);

    /**
     * Loads a code object (AMD) or cubin/PTX image (NVIDIA) from memory; see
     * {@link KernelImages#load} for the one built for this device. Modules live until close.
     */
    long loadModule(byte[] image);

    /** A kernel of a loaded module, by its (extern "C") name. */
    long function(long module, String name);

    /** Raises a kernel's dynamic shared-memory limit (needed above 48 KB on NVIDIA). */
    void setMaxDynamicSharedMemory(long function, int bytes);

    /**
     * Launches on the stream. {@code args} is a {@code void*[]} holding one pointer per kernel
     * parameter (the launch API's kernelParams), built with {@link KernelArgs}.
     */
    void launch(long function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
            int sharedBytes, MemorySegment args);

    /** Waits for everything issued on the stream. */
    void synchronize();

    /**
     * Starts recording the work issued on the stream (launches, async copies, memsets, BLAS
     * calls) into a graph instead of running it. Until {@link #endCapture()} this thread may
     * issue only such stream work: malloc, free, the synchronous copies and synchronize fail.
     */
    void beginCapture();

    /**
     * Ends the recording and returns an executable graph that replays it. Replays read and write
     * the same device buffers the recorded calls named, with the same kernel arguments.
     */
    long endCapture();

    /** Replays a graph from {@link #endCapture()} on the stream: one call for the whole recorded work. */
    void launchGraph(long graph);

    void destroyGraph(long graph);

    /** A device event for timing work on the stream. */
    long createEvent();

    /** Records the event at the current end of the stream. */
    void recordEvent(long event);

    /** Milliseconds between two recorded events; waits for {@code end} first. */
    float elapsedMillis(long start, long end);

    void destroyEvent(long event);

    /** The stream handle, for the BLAS to share. */
    long stream();

    /**
     * The compiler that builds kernels for this device at run time (NVRTC, hipRTC), or empty
     * where its library is not installed ({@link RuntimeCompiler#whyMissing} says why).
     */
    default java.util.Optional<RuntimeCompiler> compiler() {
        return RuntimeCompiler.find(this);
    }

    /** The vendor BLAS bound to this runtime's stream. */
    Blas blas();

    @Override
    void close();
}
