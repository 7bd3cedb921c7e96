package org.tttbench.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.function.ToIntFunction;

/**
 * What the CUDA and HIP runtimes share, written once: the device's properties, making the
 * device current on whichever thread calls in (JMH may set up and measure on different
 * threads), calls that return a handle through an out-parameter, the modules loaded, the BLAS
 * handle created on first use and the scalars it reads, and a close that runs every release
 * step and reports all that failed. A subclass makes the vendor's calls.
 */
public abstract class VendorRuntime implements GpuRuntime, Blas {

    /** What a runtime reads about its device once, when it opens it. */
    public record Device(String name, String architecture, int warpSize, int multiprocessors, int maxSharedPerBlock,
            long totalMemory) {
    }

    protected final Arena arena = Arena.ofShared();
    /** alpha then beta, read by the BLAS on the host at call time (host pointer mode). */
    private final MemorySegment scalars = arena.allocate(JAVA_FLOAT, 2);
    private final ThreadLocal<Boolean> deviceCurrent = ThreadLocal.withInitial(() -> Boolean.FALSE);
    private final List<MemorySegment> modules = new ArrayList<>();
    private Device device;
    protected MemorySegment blasHandle = MemorySegment.NULL;
    private boolean closed;

    /** Sets the device's properties: call from the subclass's constructor, once the device is open. */
    protected final void opened(Device device) {
        this.device = device;
    }

    // ---------------------------------------------------------------- what the vendor supplies

    /** Throws {@link GpuException} unless {@code status} is the runtime's success, naming the call and the runtime's words. */
    protected abstract void check(int status, String call);

    /** Makes this runtime's device (context) current on the calling thread. */
    protected abstract void makeDeviceCurrent();

    /** Loads a module from an image in native memory (NUL-terminated, for PTX) into {@code out}. */
    protected abstract int loadModuleData(MemorySegment out, MemorySegment image);

    protected abstract void unloadModule(MemorySegment module);

    /** Creates the BLAS handle on this runtime's stream and returns it. */
    protected abstract MemorySegment createBlas();

    protected abstract void destroyBlas(MemorySegment handle);

    /** The release steps of close after the stream is drained, the BLAS destroyed and the modules unloaded, in order. */
    protected abstract List<Runnable> releaseSteps();

    // ---------------------------------------------------------------- shared

    @Override
    public final String deviceName() {
        return device.name();
    }

    @Override
    public final String architecture() {
        return device.architecture();
    }

    @Override
    public final int warpSize() {
        return device.warpSize();
    }

    @Override
    public final int multiprocessorCount() {
        return device.multiprocessors();
    }

    @Override
    public final int maxSharedMemoryPerBlock() {
        return device.maxSharedPerBlock();
    }

    @Override
    public final long totalMemory() {
        return device.totalMemory();
    }

    /** Makes the device current on this thread unless it is; every call into the runtime starts here. */
    protected final void current() {
        if (closed) throw new IllegalStateException("the " + name() + " runtime is closed");
        if (!deviceCurrent.get()) {
            makeDeviceCurrent();
            deviceCurrent.set(Boolean.TRUE);
        }
    }

    /** Marks the device current on the constructing thread (which made it so). */
    protected final void markCurrent() {
        deviceCurrent.set(Boolean.TRUE);
    }

    /** The handle a call writes through its out-parameter, after checking the call's status. */
    protected final long out(String call, ToIntFunction<MemorySegment> fn) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check(fn.applyAsInt(p), call);
            return p.get(ADDRESS, 0).address();
        }
    }

    /** The int a call writes through its out-parameter. */
    protected final int outInt(String call, ToIntFunction<MemorySegment> fn) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(java.lang.foreign.ValueLayout.JAVA_INT);
            check(fn.applyAsInt(p), call);
            return p.get(java.lang.foreign.ValueLayout.JAVA_INT, 0);
        }
    }

    protected static void checkHostRange(MemorySegment host, long bytes) {
        if (bytes < 0 || bytes > host.byteSize()) {
            throw new IllegalArgumentException("copy of " + bytes + " bytes with a host segment of " + host.byteSize());
        }
    }

    @Override
    public final long loadModule(byte[] image) {
        current();
        try (Arena a = Arena.ofConfined()) {
            // PTX is text and must end in NUL; a cubin or code object ignores the extra byte.
            MemorySegment img = a.allocate(image.length + 1L, 16);
            MemorySegment.copy(image, 0, img, JAVA_BYTE, 0, image.length);
            MemorySegment module = MemorySegment.ofAddress(out("load module", p -> loadModuleData(p, img)));
            modules.add(module);
            return module.address();
        }
    }

    /**
     * The vendor BLAS on this runtime's stream, created on first call: call it during setup,
     * since creating the handle allocates and so cannot happen inside a capture.
     */
    @Override
    public final Blas blas() {
        current();
        if (blasHandle.equals(MemorySegment.NULL)) blasHandle = createBlas();
        return this;
    }

    /** The handle for a product; the BLAS must have been created in setup. */
    protected final MemorySegment blasHandle() {
        current();
        if (blasHandle.equals(MemorySegment.NULL)) {
            throw new IllegalStateException("call blas() during setup before the first product");
        }
        return blasHandle;
    }

    protected final MemorySegment scalars(float alpha, float beta) {
        scalars.set(JAVA_FLOAT, 0, alpha);
        scalars.set(JAVA_FLOAT, 4, beta);
        return scalars;
    }

    @Override
    public final void close() {
        if (closed) return;
        current();
        List<String> errors = new ArrayList<>();
        run(errors, this::synchronize);
        if (!blasHandle.equals(MemorySegment.NULL)) {
            MemorySegment h = blasHandle;
            run(errors, () -> destroyBlas(h));
            blasHandle = MemorySegment.NULL;
        }
        for (MemorySegment m : modules) run(errors, () -> unloadModule(m));
        modules.clear();
        for (Runnable step : releaseSteps()) run(errors, step);
        closed = true;
        arena.close();
        if (!errors.isEmpty()) throw new GpuException("closing the " + name() + " runtime: " + String.join("; ", errors));
    }

    private static void run(List<String> errors, Runnable r) {
        try {
            r.run();
        } catch (GpuException e) {
            errors.add(e.getMessage());
        }
    }
}
