package org.tttbench.gpu.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.tttbench.config.DType;
import org.tttbench.gpu.Blas;
import org.tttbench.gpu.Ffm;
import org.tttbench.gpu.GpuException;
import org.tttbench.gpu.GpuRuntime;

/**
 * {@link GpuRuntime} over the CUDA driver API and cuBLAS: the device's primary context, one
 * stream, and a cuBLAS handle bound to that stream. The context is made current on whichever
 * thread calls in (JMH may set up and measure on different threads).
 */
public final class CudaRuntime implements GpuRuntime, Blas {

    /** cuBLAS's recommended workspace on Hopper; set explicitly so graph capture never has to allocate one. */
    private static final long BLAS_WORKSPACE_BYTES = 32L << 20;

    private final int device;
    private final String deviceName;
    private final String architecture;
    private final int warpSize;
    private final int multiprocessors;
    private final int maxSharedOptIn;
    private final long totalMemory;
    private final MemorySegment context;
    private final MemorySegment stream;
    private final Arena arena = Arena.ofShared();
    /** alpha then beta, read by cuBLAS on the host at call time (host pointer mode). */
    private final MemorySegment scalars = arena.allocate(JAVA_FLOAT, 2);
    private final ThreadLocal<Boolean> contextCurrent = ThreadLocal.withInitial(() -> Boolean.FALSE);
    private final List<MemorySegment> modules = new ArrayList<>();
    private MemorySegment blasHandle = MemorySegment.NULL;
    private long blasWorkspace;
    private boolean closed;

    private CudaRuntime(int device) {
        this.device = device;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment name = a.allocate(256);
            check(CudaDriver.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
            deviceName = name.getString(0);
            int major = attribute(a, CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
            int minor = attribute(a, CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
            architecture = "sm_" + major + minor;
            warpSize = attribute(a, CudaDriver.CU_DEVICE_ATTRIBUTE_WARP_SIZE);
            multiprocessors = attribute(a, CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
            maxSharedOptIn = attribute(a, CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
            MemorySegment bytes = a.allocate(JAVA_LONG);
            check(CudaDriver.cuDeviceTotalMem_v2(bytes, device), "cuDeviceTotalMem_v2");
            totalMemory = bytes.get(JAVA_LONG, 0);
            MemorySegment ctx = a.allocate(ADDRESS);
            check(CudaDriver.cuDevicePrimaryCtxRetain(ctx, device), "cuDevicePrimaryCtxRetain");
            context = ctx.get(ADDRESS, 0);
            makeCurrent();
            MemorySegment s = a.allocate(ADDRESS);
            // A blocking stream (not CU_STREAM_NON_BLOCKING): the synchronous copies, which run on
            // the legacy default stream, then stay ordered with the work issued on it.
            check(CudaDriver.cuStreamCreate(s, CudaDriver.CU_STREAM_DEFAULT), "cuStreamCreate");
            stream = s.get(ADDRESS, 0);
        }
    }

    /**
     * Loads the driver, initialises it and opens device {@code ordinal}.
     *
     * @throws GpuException when the driver is missing, fails to initialise or has no such device
     */
    public static CudaRuntime open(int ordinal) {
        int count = deviceCount();
        if (ordinal >= count) {
            throw new GpuException("CUDA device " + ordinal + " requested but the driver reports " + count);
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment dev = a.allocate(JAVA_INT);
            check(CudaDriver.cuDeviceGet(dev, ordinal), "cuDeviceGet");
            return new CudaRuntime(dev.get(JAVA_INT, 0));
        }
    }

    /**
     * Loads and initialises the driver and counts its devices.
     *
     * @return at least 1
     * @throws GpuException when the driver is missing or fails, or when it sees no device
     */
    public static int deviceCount() {
        CudaDriver.load();
        check(CudaDriver.cuInit(0), "cuInit");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            check(CudaDriver.cuDeviceGetCount(n), "cuDeviceGetCount");
            int count = n.get(JAVA_INT, 0);
            if (count < 1) throw new GpuException("the CUDA driver reports no device");
            return count;
        }
    }

    private int attribute(Arena a, int attribute) {
        MemorySegment v = a.allocate(JAVA_INT);
        check(CudaDriver.cuDeviceGetAttribute(v, attribute, device), "cuDeviceGetAttribute(" + attribute + ")");
        return v.get(JAVA_INT, 0);
    }

    /** Throws unless {@code status} is CUDA_SUCCESS, naming the call and the driver's own words for it. */
    static void check(int status, String call) {
        if (status == CudaDriver.CUDA_SUCCESS) return;
        throw new GpuException(call + " failed: " + describe(status));
    }

    /** "CUDA_ERROR_OUT_OF_MEMORY (out of memory)", or the number where the driver has no name for it. */
    static String describe(int status) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            String name = CudaDriver.cuGetErrorName(status, p) == CudaDriver.CUDA_SUCCESS
                    ? Ffm.cString(p.get(ADDRESS, 0)) : null;
            String text = CudaDriver.cuGetErrorString(status, p) == CudaDriver.CUDA_SUCCESS
                    ? Ffm.cString(p.get(ADDRESS, 0)) : null;
            if (name == null) return "CUresult " + status;
            return text == null ? name : name + " (" + text + ")";
        }
    }

    private void makeCurrent() {
        check(CudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        contextCurrent.set(Boolean.TRUE);
    }

    private void current() {
        if (closed) throw new IllegalStateException("the CUDA runtime is closed");
        if (!contextCurrent.get()) makeCurrent();
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public String deviceName() {
        return deviceName;
    }

    @Override
    public String architecture() {
        return architecture;
    }

    @Override
    public int warpSize() {
        return warpSize;
    }

    @Override
    public int multiprocessorCount() {
        return multiprocessors;
    }

    @Override
    public int maxSharedMemoryPerBlock() {
        return maxSharedOptIn;
    }

    @Override
    public long totalMemory() {
        return totalMemory;
    }

    @Override
    public long malloc(long bytes) {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(JAVA_LONG);
            check(CudaDriver.cuMemAlloc_v2(p, bytes), "cuMemAlloc_v2(" + bytes + " bytes)");
            return p.get(JAVA_LONG, 0);
        }
    }

    @Override
    public void free(long devicePtr) {
        current();
        check(CudaDriver.cuMemFree_v2(devicePtr), "cuMemFree_v2");
    }

    @Override
    public void copyToDevice(MemorySegment host, long devicePtr, long bytes) {
        current();
        checkHostRange(host, bytes);
        check(CudaDriver.cuMemcpyHtoD_v2(devicePtr, host, bytes), "cuMemcpyHtoD_v2");
    }

    @Override
    public void copyToHost(long devicePtr, MemorySegment host, long bytes) {
        current();
        checkHostRange(host, bytes);
        check(CudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize");
        check(CudaDriver.cuMemcpyDtoH_v2(host, devicePtr, bytes), "cuMemcpyDtoH_v2");
    }

    static void checkHostRange(MemorySegment host, long bytes) {
        if (bytes < 0 || bytes > host.byteSize()) {
            throw new IllegalArgumentException("copy of " + bytes + " bytes with a host segment of " + host.byteSize());
        }
    }

    @Override
    public void copyDeviceToDevice(long src, long dst, long bytes) {
        current();
        check(CudaDriver.cuMemcpyDtoDAsync_v2(dst, src, bytes, stream), "cuMemcpyDtoDAsync_v2");
    }

    @Override
    public void memset(long devicePtr, int value, long bytes) {
        current();
        check(CudaDriver.cuMemsetD8Async(devicePtr, (byte) value, bytes, stream), "cuMemsetD8Async");
    }

    @Override
    public long loadModule(byte[] image) {
        current();
        try (Arena a = Arena.ofConfined()) {
            // PTX is text and must end in NUL; a cubin ignores the extra byte.
            MemorySegment img = a.allocate(image.length + 1L, 16);
            MemorySegment.copy(image, 0, img, JAVA_BYTE, 0, image.length);
            MemorySegment m = a.allocate(ADDRESS);
            check(CudaDriver.cuModuleLoadData(m, img), "cuModuleLoadData");
            MemorySegment module = m.get(ADDRESS, 0);
            modules.add(module);
            return module.address();
        }
    }

    @Override
    public long function(long module, String name) {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(ADDRESS);
            check(CudaDriver.cuModuleGetFunction(f, MemorySegment.ofAddress(module), a.allocateFrom(name)),
                    "cuModuleGetFunction(" + name + ")");
            return f.get(ADDRESS, 0).address();
        }
    }

    @Override
    public void setMaxDynamicSharedMemory(long function, int bytes) {
        current();
        check(CudaDriver.cuFuncSetAttribute(MemorySegment.ofAddress(function),
                CudaDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
                "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, " + bytes + ")");
    }

    @Override
    public void launch(long function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
            int sharedBytes, MemorySegment args) {
        current();
        check(CudaDriver.cuLaunchKernel(MemorySegment.ofAddress(function), gridX, gridY, gridZ, blockX, blockY,
                blockZ, sharedBytes, stream, args, MemorySegment.NULL), "cuLaunchKernel");
    }

    @Override
    public void synchronize() {
        current();
        check(CudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    @Override
    public void beginCapture() {
        current();
        check(CudaDriver.cuStreamBeginCapture_v2(stream, CudaDriver.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                "cuStreamBeginCapture_v2");
    }

    @Override
    public long endCapture() {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment g = a.allocate(ADDRESS);
            check(CudaDriver.cuStreamEndCapture(stream, g), "cuStreamEndCapture");
            MemorySegment graph = g.get(ADDRESS, 0);
            MemorySegment e = a.allocate(ADDRESS);
            try {
                check(CudaDriver.cuGraphInstantiateWithFlags(e, graph, 0L), "cuGraphInstantiateWithFlags");
            } finally {
                // The executable graph keeps what it needs; the recorded one is no longer used.
                check(CudaDriver.cuGraphDestroy(graph), "cuGraphDestroy");
            }
            return e.get(ADDRESS, 0).address();
        }
    }

    @Override
    public void launchGraph(long graph) {
        current();
        check(CudaDriver.cuGraphLaunch(MemorySegment.ofAddress(graph), stream), "cuGraphLaunch");
    }

    @Override
    public void destroyGraph(long graph) {
        current();
        check(CudaDriver.cuGraphExecDestroy(MemorySegment.ofAddress(graph)), "cuGraphExecDestroy");
    }

    @Override
    public long createEvent() {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment e = a.allocate(ADDRESS);
            check(CudaDriver.cuEventCreate(e, CudaDriver.CU_EVENT_DEFAULT), "cuEventCreate");
            return e.get(ADDRESS, 0).address();
        }
    }

    @Override
    public void recordEvent(long event) {
        current();
        check(CudaDriver.cuEventRecord(MemorySegment.ofAddress(event), stream), "cuEventRecord");
    }

    @Override
    public float elapsedMillis(long start, long end) {
        current();
        check(CudaDriver.cuEventSynchronize(MemorySegment.ofAddress(end)), "cuEventSynchronize");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ms = a.allocate(JAVA_FLOAT);
            check(CudaDriver.cuEventElapsedTime_v2(ms, MemorySegment.ofAddress(start), MemorySegment.ofAddress(end)),
                    "cuEventElapsedTime");
            return ms.get(JAVA_FLOAT, 0);
        }
    }

    @Override
    public void destroyEvent(long event) {
        current();
        check(CudaDriver.cuEventDestroy_v2(MemorySegment.ofAddress(event)), "cuEventDestroy_v2");
    }

    @Override
    public long stream() {
        return stream.address();
    }

    /**
     * cuBLAS on this runtime's stream, created on first call: call it during setup, since
     * creating the handle allocates and so cannot happen inside a capture.
     */
    @Override
    public Blas blas() {
        current();
        if (!blasHandle.equals(MemorySegment.NULL)) return this;
        Cublas.load();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(ADDRESS);
            checkBlas(Cublas.cublasCreate_v2(h), "cublasCreate_v2");
            MemorySegment handle = h.get(ADDRESS, 0);
            checkBlas(Cublas.cublasSetStream_v2(handle, stream), "cublasSetStream_v2");
            // After cublasSetStream, which resets the workspace to the library's own pool.
            long ws = malloc(BLAS_WORKSPACE_BYTES);
            checkBlas(Cublas.cublasSetWorkspace_v2(handle, MemorySegment.ofAddress(ws), BLAS_WORKSPACE_BYTES),
                    "cublasSetWorkspace_v2");
            // Float32 accumulation also for split-K reductions of bf16/f16 outputs.
            checkBlas(Cublas.cublasSetMathMode(handle,
                    Cublas.CUBLAS_DEFAULT_MATH | Cublas.CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION),
                    "cublasSetMathMode");
            blasHandle = handle;
            blasWorkspace = ws;
        }
        return this;
    }

    static void checkBlas(int status, String call) {
        if (status == Cublas.CUBLAS_STATUS_SUCCESS) return;
        String name = Ffm.cString(Cublas.cublasGetStatusName(status));
        String text = Ffm.cString(Cublas.cublasGetStatusString(status));
        String what = name == null ? "cublasStatus_t " + status : name;
        throw new GpuException(call + " failed: " + (text == null || text.equals(name) ? what : what + " (" + text + ")"));
    }

    private static int dataType(DType type) {
        return switch (type) {
            case FLOAT32 -> Cublas.CUDA_R_32F;
            case BFLOAT16 -> Cublas.CUDA_R_16BF;
            case FLOAT16 -> Cublas.CUDA_R_16F;
        };
    }

    /** Strict float32 unless TF32 was asked for a float32 product; reduced types always accumulate in float32. */
    static int computeType(DType type, boolean tf32) {
        return type == DType.FLOAT32 && tf32 ? Cublas.CUBLAS_COMPUTE_32F_FAST_TF32 : Cublas.CUBLAS_COMPUTE_32F;
    }

    private MemorySegment scalars(float alpha, float beta) {
        scalars.set(JAVA_FLOAT, 0, alpha);
        scalars.set(JAVA_FLOAT, 4, beta);
        return scalars;
    }

    private void requireBlas() {
        current();
        if (blasHandle.equals(MemorySegment.NULL)) {
            throw new IllegalStateException("call blas() during setup before the first product");
        }
    }

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda, long b,
            int ldb, float beta, long c, int ldc, DType type, boolean tf32) {
        requireBlas();
        MemorySegment s = scalars(alpha, beta);
        int t = dataType(type);
        checkBlas(Cublas.cublasGemmEx(blasHandle, op(transA), op(transB), m, n, k, s,
                MemorySegment.ofAddress(a), t, lda, MemorySegment.ofAddress(b), t, ldb, s.asSlice(4),
                MemorySegment.ofAddress(c), t, ldc, computeType(type, tf32), Cublas.CUBLAS_GEMM_DEFAULT),
                "cublasGemmEx");
    }

    @Override
    public void gemmStridedBatched(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda,
            long strideA, long b, int ldb, long strideB, float beta, long c, int ldc, long strideC, int batchCount,
            DType type, boolean tf32) {
        requireBlas();
        MemorySegment s = scalars(alpha, beta);
        int t = dataType(type);
        checkBlas(Cublas.cublasGemmStridedBatchedEx(blasHandle, op(transA), op(transB), m, n, k, s,
                MemorySegment.ofAddress(a), t, lda, strideA, MemorySegment.ofAddress(b), t, ldb, strideB, s.asSlice(4),
                MemorySegment.ofAddress(c), t, ldc, strideC, batchCount, computeType(type, tf32),
                Cublas.CUBLAS_GEMM_DEFAULT), "cublasGemmStridedBatchedEx");
    }

    private static int op(boolean trans) {
        return trans ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N;
    }

    @Override
    public void close() {
        if (closed) return;
        current();
        List<String> errors = new ArrayList<>();
        run(errors, () -> check(CudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize"));
        if (!blasHandle.equals(MemorySegment.NULL)) {
            MemorySegment h = blasHandle;
            run(errors, () -> checkBlas(Cublas.cublasDestroy_v2(h), "cublasDestroy_v2"));
            run(errors, () -> free(blasWorkspace));
            blasHandle = MemorySegment.NULL;
        }
        for (MemorySegment m : modules) run(errors, () -> check(CudaDriver.cuModuleUnload(m), "cuModuleUnload"));
        modules.clear();
        run(errors, () -> check(CudaDriver.cuStreamDestroy_v2(stream), "cuStreamDestroy_v2"));
        run(errors, () -> check(CudaDriver.cuDevicePrimaryCtxRelease_v2(device), "cuDevicePrimaryCtxRelease_v2"));
        closed = true;
        arena.close();
        if (!errors.isEmpty()) throw new GpuException("closing the CUDA runtime: " + String.join("; ", errors));
    }

    private static void run(List<String> errors, Runnable r) {
        try {
            r.run();
        } catch (GpuException e) {
            errors.add(e.getMessage());
        }
    }
}
