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
import org.tttbench.gpu.VendorRuntime;

/**
 * {@link GpuRuntime} over the CUDA driver API and cuBLAS: the device's primary context, one
 * stream, and a cuBLAS handle bound to that stream. The context is made current on whichever
 * thread calls in (JMH may set up and measure on different threads).
 */
public final class CudaRuntime extends VendorRuntime {

    /** cuBLAS's recommended workspace on Hopper; set explicitly so graph capture never has to allocate one. */
    private static final long BLAS_WORKSPACE_BYTES = 32L << 20;

    private final int device;
    private final MemorySegment context;
    private final MemorySegment stream;
    private long blasWorkspace;

    private CudaRuntime(int device) {
        this.device = device;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment name = a.allocate(256);
            check(CudaDriver.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
            String arch = "sm_" + attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
                    + attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
            MemorySegment bytes = a.allocate(JAVA_LONG);
            check(CudaDriver.cuDeviceTotalMem_v2(bytes, device), "cuDeviceTotalMem_v2");
            opened(new Device(name.getString(0), arch, attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_WARP_SIZE),
                    attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
                    attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN), bytes.get(JAVA_LONG, 0)));
        }
        context = MemorySegment.ofAddress(out("cuDevicePrimaryCtxRetain", p -> CudaDriver.cuDevicePrimaryCtxRetain(p, device)));
        makeDeviceCurrent();
        markCurrent();
        // A blocking stream (not CU_STREAM_NON_BLOCKING): the synchronous copies, which run on
        // the legacy default stream, then stay ordered with the work issued on it.
        stream = MemorySegment.ofAddress(out("cuStreamCreate", p -> CudaDriver.cuStreamCreate(p, CudaDriver.CU_STREAM_DEFAULT)));
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
            checkStatus(CudaDriver.cuDeviceGet(dev, ordinal), "cuDeviceGet");
            return new CudaRuntime(dev.get(JAVA_INT, 0));
        }
    }

    /** Bytes of memory of device {@code ordinal}, read without creating a context. */
    public static long deviceMemory(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment dev = a.allocate(JAVA_INT);
            checkStatus(CudaDriver.cuDeviceGet(dev, ordinal), "cuDeviceGet");
            MemorySegment bytes = a.allocate(JAVA_LONG);
            checkStatus(CudaDriver.cuDeviceTotalMem_v2(bytes, dev.get(JAVA_INT, 0)), "cuDeviceTotalMem_v2");
            return bytes.get(JAVA_LONG, 0);
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
        checkStatus(CudaDriver.cuInit(0), "cuInit");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            checkStatus(CudaDriver.cuDeviceGetCount(n), "cuDeviceGetCount");
            int count = n.get(JAVA_INT, 0);
            if (count < 1) throw new GpuException("the CUDA driver reports no device");
            return count;
        }
    }

    private int attribute(int attribute) {
        return outInt("cuDeviceGetAttribute(" + attribute + ")", v -> CudaDriver.cuDeviceGetAttribute(v, attribute, device));
    }

    /** Throws unless {@code status} is CUDA_SUCCESS, naming the call and the driver's own words for it. */
    @Override
    protected void check(int status, String call) {
        checkStatus(status, call);
    }

    static void checkStatus(int status, String call) {
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

    @Override
    protected void makeDeviceCurrent() {
        check(CudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public long malloc(long bytes) {
        current();
        return out("cuMemAlloc_v2(" + bytes + " bytes)", p -> CudaDriver.cuMemAlloc_v2(p, bytes));
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
    protected int loadModuleData(MemorySegment out, MemorySegment image) {
        return CudaDriver.cuModuleLoadData(out, image);
    }

    @Override
    protected void unloadModule(MemorySegment module) {
        check(CudaDriver.cuModuleUnload(module), "cuModuleUnload");
    }

    @Override
    public long function(long module, String name) {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocateFrom(name);
            return out("cuModuleGetFunction(" + name + ")",
                    f -> CudaDriver.cuModuleGetFunction(f, MemorySegment.ofAddress(module), n));
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
        return out("cuEventCreate", e -> CudaDriver.cuEventCreate(e, CudaDriver.CU_EVENT_DEFAULT));
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

    @Override
    protected MemorySegment createBlas() {
        Cublas.load();
        MemorySegment handle = MemorySegment.ofAddress(out("cublasCreate_v2", Cublas::cublasCreate_v2));
        checkBlas(Cublas.cublasSetStream_v2(handle, stream), "cublasSetStream_v2");
        // After cublasSetStream, which resets the workspace to the library's own pool: set
        // explicitly, so that graph capture never has to allocate one.
        long ws = malloc(BLAS_WORKSPACE_BYTES);
        checkBlas(Cublas.cublasSetWorkspace_v2(handle, MemorySegment.ofAddress(ws), BLAS_WORKSPACE_BYTES),
                "cublasSetWorkspace_v2");
        // Float32 accumulation also for split-K reductions of bf16/f16 outputs.
        checkBlas(Cublas.cublasSetMathMode(handle,
                Cublas.CUBLAS_DEFAULT_MATH | Cublas.CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION),
                "cublasSetMathMode");
        blasWorkspace = ws;
        return handle;
    }

    @Override
    protected void destroyBlas(MemorySegment handle) {
        checkBlas(Cublas.cublasDestroy_v2(handle), "cublasDestroy_v2");
        free(blasWorkspace);
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

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda, long b,
            int ldb, float beta, long c, int ldc, DType type, boolean tf32) {
        MemorySegment h = blasHandle();
        MemorySegment s = scalars(alpha, beta);
        int t = dataType(type);
        checkBlas(Cublas.cublasGemmEx(h, op(transA), op(transB), m, n, k, s,
                MemorySegment.ofAddress(a), t, lda, MemorySegment.ofAddress(b), t, ldb, s.asSlice(4),
                MemorySegment.ofAddress(c), t, ldc, computeType(type, tf32), Cublas.CUBLAS_GEMM_DEFAULT),
                "cublasGemmEx");
    }

    @Override
    public void gemmStridedBatched(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda,
            long strideA, long b, int ldb, long strideB, float beta, long c, int ldc, long strideC, int batchCount,
            DType type, boolean tf32) {
        MemorySegment h = blasHandle();
        MemorySegment s = scalars(alpha, beta);
        int t = dataType(type);
        checkBlas(Cublas.cublasGemmStridedBatchedEx(h, op(transA), op(transB), m, n, k, s,
                MemorySegment.ofAddress(a), t, lda, strideA, MemorySegment.ofAddress(b), t, ldb, strideB, s.asSlice(4),
                MemorySegment.ofAddress(c), t, ldc, strideC, batchCount, computeType(type, tf32),
                Cublas.CUBLAS_GEMM_DEFAULT), "cublasGemmStridedBatchedEx");
    }

    private static int op(boolean trans) {
        return trans ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N;
    }

    @Override
    protected List<Runnable> releaseSteps() {
        return List.of(() -> check(CudaDriver.cuStreamDestroy_v2(stream), "cuStreamDestroy_v2"),
                () -> check(CudaDriver.cuDevicePrimaryCtxRelease_v2(device), "cuDevicePrimaryCtxRelease_v2"));
    }
}
