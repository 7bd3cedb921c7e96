package org.tttbench.gpu.hip;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.util.ArrayList;
import java.util.List;
import org.tttbench.config.DType;
import org.tttbench.gpu.Blas;
import org.tttbench.gpu.Ffm;
import org.tttbench.gpu.GpuException;
import org.tttbench.gpu.VendorRuntime;

/**
 * {@link GpuRuntime} over the HIP runtime and hipBLAS: one device, one stream, and a hipBLAS
 * handle bound to that stream. The device is made current on whichever thread calls in.
 */
public final class HipRuntime extends VendorRuntime {

    private final int device;
    private final MemorySegment stream;
    private Hipblas.GemmApi gemmApi;

    private HipRuntime(int device) {
        this.device = device;
        makeDeviceCurrent();
        markCurrent();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment name = a.allocate(256);
            checkStatus(HipRuntimeApi.hipDeviceGetName(name, 256, device), "hipDeviceGetName");
            MemorySegment bytes = a.allocate(JAVA_LONG);
            checkStatus(HipRuntimeApi.hipDeviceTotalMem(bytes, device), "hipDeviceTotalMem");
            opened(new Device(name.getString(0), baseArchitecture(gcnArchName(a, device)),
                    attribute(HipRuntimeApi.hipDeviceAttributeWarpSize),
                    attribute(HipRuntimeApi.hipDeviceAttributeMultiprocessorCount),
                    attribute(HipRuntimeApi.hipDeviceAttributeMaxSharedMemoryPerBlock), bytes.get(JAVA_LONG, 0)));
        }
        stream = MemorySegment.ofAddress(out("hipStreamCreate", HipRuntimeApi::hipStreamCreate));
    }

    /**
     * Loads the HIP runtime, initialises it and opens device {@code ordinal}.
     *
     * @throws GpuException when the runtime is missing, fails to initialise or has no such device
     */
    public static HipRuntime open(int ordinal) {
        int count = deviceCount();
        if (ordinal >= count) {
            throw new GpuException("HIP device " + ordinal + " requested but the runtime reports " + count);
        }
        return new HipRuntime(ordinal);
    }

    /** Bytes of memory of device {@code ordinal}. */
    public static long deviceMemory(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment bytes = a.allocate(JAVA_LONG);
            checkStatus(HipRuntimeApi.hipDeviceTotalMem(bytes, ordinal), "hipDeviceTotalMem");
            return bytes.get(JAVA_LONG, 0);
        }
    }

    /**
     * Loads and initialises the HIP runtime and counts its devices.
     *
     * @return at least 1
     * @throws GpuException when the runtime is missing or fails, or when it sees no device
     */
    public static int deviceCount() {
        HipRuntimeApi.load();
        checkStatus(HipRuntimeApi.hipInit(0), "hipInit");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            checkStatus(HipRuntimeApi.hipGetDeviceCount(n), "hipGetDeviceCount");
            int count = n.get(JAVA_INT, 0);
            if (count < 1) throw new GpuException("the HIP runtime reports no device");
            return count;
        }
    }

    /**
     * The device's gcnArchName ("gfx90a:sramecc+:xnack-"). hipDeviceProp_t changed its layout in
     * ROCm 6, which exports the new one as hipGetDevicePropertiesR0600; older runtimes have only
     * hipGetDeviceProperties with the old layout.
     */
    private static String gcnArchName(Arena a, int device) {
        boolean r0600 = HipRuntimeApi.has("hipGetDevicePropertiesR0600");
        StructLayout layout = r0600 ? HipRuntimeApi.hipDeviceProp_tR0600 : HipRuntimeApi.hipDeviceProp_tR0000;
        MemorySegment props = a.allocate(layout);
        if (r0600) {
            checkStatus(HipRuntimeApi.hipGetDevicePropertiesR0600(props, device), "hipGetDevicePropertiesR0600");
        } else {
            checkStatus(HipRuntimeApi.hipGetDeviceProperties(props, device), "hipGetDeviceProperties");
        }
        long offset = layout.byteOffset(MemoryLayout.PathElement.groupElement("gcnArchName"));
        return props.asSlice(offset, 256).getString(0);
    }

    /** "gfx90a:sramecc+:xnack-" → "gfx90a": code objects are built per processor, not per feature setting. */
    public static String baseArchitecture(String gcnArchName) {
        int colon = gcnArchName.indexOf(':');
        return colon < 0 ? gcnArchName : gcnArchName.substring(0, colon);
    }

    private int attribute(int attribute) {
        return outInt("hipDeviceGetAttribute(" + attribute + ")",
                v -> HipRuntimeApi.hipDeviceGetAttribute(v, attribute, device));
    }

    @Override
    protected void check(int status, String call) {
        checkStatus(status, call);
    }

    /** Throws unless {@code status} is hipSuccess, naming the call and the runtime's own words for it. */
    static void checkStatus(int status, String call) {
        if (status == HipRuntimeApi.hipSuccess) return;
        String name = Ffm.cString(HipRuntimeApi.hipGetErrorName(status));
        String text = Ffm.cString(HipRuntimeApi.hipGetErrorString(status));
        String what = name == null ? "hipError_t " + status : name;
        throw new GpuException(call + " failed: " + (text == null || text.equals(name) ? what : what + " (" + text + ")"));
    }

    @Override
    public String name() {
        return "hip";
    }

    @Override
    protected void makeDeviceCurrent() {
        checkStatus(HipRuntimeApi.hipSetDevice(device), "hipSetDevice");
    }

    @Override
    public long malloc(long bytes) {
        current();
        return out("hipMalloc(" + bytes + " bytes)", p -> HipRuntimeApi.hipMalloc(p, bytes));
    }

    @Override
    public void free(long devicePtr) {
        current();
        check(HipRuntimeApi.hipFree(MemorySegment.ofAddress(devicePtr)), "hipFree");
    }

    @Override
    public void copyToDevice(MemorySegment host, long devicePtr, long bytes) {
        current();
        checkHostRange(host, bytes);
        check(HipRuntimeApi.hipMemcpy(MemorySegment.ofAddress(devicePtr), host, bytes,
                HipRuntimeApi.hipMemcpyHostToDevice), "hipMemcpy(HostToDevice)");
    }

    @Override
    public void copyToHost(long devicePtr, MemorySegment host, long bytes) {
        current();
        checkHostRange(host, bytes);
        check(HipRuntimeApi.hipStreamSynchronize(stream), "hipStreamSynchronize");
        check(HipRuntimeApi.hipMemcpy(host, MemorySegment.ofAddress(devicePtr), bytes,
                HipRuntimeApi.hipMemcpyDeviceToHost), "hipMemcpy(DeviceToHost)");
    }

    @Override
    public void copyDeviceToDevice(long src, long dst, long bytes) {
        current();
        check(HipRuntimeApi.hipMemcpyAsync(MemorySegment.ofAddress(dst), MemorySegment.ofAddress(src), bytes,
                HipRuntimeApi.hipMemcpyDeviceToDevice, stream), "hipMemcpyAsync(DeviceToDevice)");
    }

    @Override
    public void memset(long devicePtr, int value, long bytes) {
        current();
        check(HipRuntimeApi.hipMemsetAsync(MemorySegment.ofAddress(devicePtr), value & 0xFF, bytes, stream),
                "hipMemsetAsync");
    }

    @Override
    protected int loadModuleData(MemorySegment out, MemorySegment image) {
        return HipRuntimeApi.hipModuleLoadData(out, image);
    }

    @Override
    protected void unloadModule(MemorySegment module) {
        check(HipRuntimeApi.hipModuleUnload(module), "hipModuleUnload");
    }

    @Override
    public long function(long module, String name) {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocateFrom(name);
            return out("hipModuleGetFunction(" + name + ")",
                    f -> HipRuntimeApi.hipModuleGetFunction(f, MemorySegment.ofAddress(module), n));
        }
    }

    /**
     * AMD GPUs have no opt-in above a default: a block may use the whole LDS from the start, so
     * this only checks the request against it.
     */
    @Override
    public void setMaxDynamicSharedMemory(long function, int bytes) {
        if (bytes > maxSharedMemoryPerBlock()) {
            throw new GpuException("a block on " + architecture() + " may use at most " + maxSharedMemoryPerBlock()
                    + " bytes of shared memory (LDS); " + bytes + " requested");
        }
    }

    @Override
    public void launch(long function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
            int sharedBytes, MemorySegment args) {
        current();
        check(HipRuntimeApi.hipModuleLaunchKernel(MemorySegment.ofAddress(function), gridX, gridY, gridZ, blockX,
                blockY, blockZ, sharedBytes, stream, args, MemorySegment.NULL), "hipModuleLaunchKernel");
    }

    @Override
    public void synchronize() {
        current();
        check(HipRuntimeApi.hipStreamSynchronize(stream), "hipStreamSynchronize");
    }

    @Override
    public void beginCapture() {
        current();
        check(HipRuntimeApi.hipStreamBeginCapture(stream, HipRuntimeApi.hipStreamCaptureModeThreadLocal),
                "hipStreamBeginCapture");
    }

    @Override
    public long endCapture() {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment g = a.allocate(ADDRESS);
            check(HipRuntimeApi.hipStreamEndCapture(stream, g), "hipStreamEndCapture");
            MemorySegment graph = g.get(ADDRESS, 0);
            MemorySegment e = a.allocate(ADDRESS);
            try {
                check(HipRuntimeApi.hipGraphInstantiateWithFlags(e, graph, 0L), "hipGraphInstantiateWithFlags");
            } finally {
                // The executable graph keeps what it needs; the recorded one is no longer used.
                check(HipRuntimeApi.hipGraphDestroy(graph), "hipGraphDestroy");
            }
            return e.get(ADDRESS, 0).address();
        }
    }

    @Override
    public void launchGraph(long graph) {
        current();
        check(HipRuntimeApi.hipGraphLaunch(MemorySegment.ofAddress(graph), stream), "hipGraphLaunch");
    }

    @Override
    public void destroyGraph(long graph) {
        current();
        check(HipRuntimeApi.hipGraphExecDestroy(MemorySegment.ofAddress(graph)), "hipGraphExecDestroy");
    }

    @Override
    public long createEvent() {
        current();
        return out("hipEventCreate", HipRuntimeApi::hipEventCreate);
    }

    @Override
    public void recordEvent(long event) {
        current();
        check(HipRuntimeApi.hipEventRecord(MemorySegment.ofAddress(event), stream), "hipEventRecord");
    }

    @Override
    public float elapsedMillis(long start, long end) {
        current();
        check(HipRuntimeApi.hipEventSynchronize(MemorySegment.ofAddress(end)), "hipEventSynchronize");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ms = a.allocate(JAVA_FLOAT);
            check(HipRuntimeApi.hipEventElapsedTime(ms, MemorySegment.ofAddress(start), MemorySegment.ofAddress(end)),
                    "hipEventElapsedTime");
            return ms.get(JAVA_FLOAT, 0);
        }
    }

    @Override
    public void destroyEvent(long event) {
        current();
        check(HipRuntimeApi.hipEventDestroy(MemorySegment.ofAddress(event)), "hipEventDestroy");
    }

    @Override
    public long stream() {
        return stream.address();
    }

    @Override
    protected MemorySegment createBlas() {
        Hipblas.load();
        MemorySegment handle = MemorySegment.ofAddress(out("hipblasCreate", Hipblas::hipblasCreate));
        checkBlas(Hipblas.hipblasSetStream(handle, stream), "hipblasSetStream");
        gemmApi = Hipblas.gemmApi();
        return handle;
    }

    @Override
    protected void destroyBlas(MemorySegment handle) {
        checkBlas(Hipblas.hipblasDestroy(handle), "hipblasDestroy");
    }

    private static final String[] BLAS_STATUS = {"HIPBLAS_STATUS_SUCCESS", "HIPBLAS_STATUS_NOT_INITIALIZED",
            "HIPBLAS_STATUS_ALLOC_FAILED", "HIPBLAS_STATUS_INVALID_VALUE", "HIPBLAS_STATUS_MAPPING_ERROR",
            "HIPBLAS_STATUS_EXECUTION_FAILED", "HIPBLAS_STATUS_INTERNAL_ERROR", "HIPBLAS_STATUS_NOT_SUPPORTED",
            "HIPBLAS_STATUS_ARCH_MISMATCH", "HIPBLAS_STATUS_HANDLE_IS_NULLPTR", "HIPBLAS_STATUS_INVALID_ENUM",
            "HIPBLAS_STATUS_UNKNOWN"};

    static void checkBlas(int status, String call) {
        if (status == Hipblas.HIPBLAS_STATUS_SUCCESS) return;
        String text = Ffm.cString(Hipblas.hipblasStatusToString(status));
        if (text == null) {
            text = status >= 0 && status < BLAS_STATUS.length ? BLAS_STATUS[status] : "hipblasStatus_t " + status;
        }
        throw new GpuException(call + " failed: " + text);
    }

    private int dataType(DType type) {
        boolean legacy = gemmApi == Hipblas.GemmApi.LEGACY;
        return switch (type) {
            case FLOAT32 -> legacy ? Hipblas.HIPBLAS_R_32F : Hipblas.HIP_R_32F;
            case BFLOAT16 -> legacy ? Hipblas.HIPBLAS_R_16B : Hipblas.HIP_R_16BF;
            case FLOAT16 -> legacy ? Hipblas.HIPBLAS_R_16F : Hipblas.HIP_R_16F;
        };
    }

    /** Float32 accumulation for every stored type; TF32 is an NVIDIA option and is not used here. */
    private int computeType() {
        return gemmApi == Hipblas.GemmApi.LEGACY ? Hipblas.HIPBLAS_R_32F : Hipblas.HIPBLAS_COMPUTE_32F;
    }

    private static int op(boolean trans) {
        return trans ? Hipblas.HIPBLAS_OP_T : Hipblas.HIPBLAS_OP_N;
    }

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda, long b,
            int ldb, float beta, long c, int ldc, DType type, boolean tf32) {
        MemorySegment h = blasHandle();
        MemorySegment s = scalars(alpha, beta);
        int t = dataType(type);
        MemorySegment pa = MemorySegment.ofAddress(a);
        MemorySegment pb = MemorySegment.ofAddress(b);
        MemorySegment pc = MemorySegment.ofAddress(c);
        if (gemmApi == Hipblas.GemmApi.V2_SUFFIXED) {
            checkBlas(Hipblas.hipblasGemmEx_v2(h, op(transA), op(transB), m, n, k, s, pa, t, lda, pb, t, ldb,
                    s.asSlice(4), pc, t, ldc, computeType(), Hipblas.HIPBLAS_GEMM_DEFAULT), "hipblasGemmEx_v2");
        } else {
            checkBlas(Hipblas.hipblasGemmEx(h, op(transA), op(transB), m, n, k, s, pa, t, lda, pb, t, ldb,
                    s.asSlice(4), pc, t, ldc, computeType(), Hipblas.HIPBLAS_GEMM_DEFAULT), "hipblasGemmEx");
        }
    }

    @Override
    public void gemmStridedBatched(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda,
            long strideA, long b, int ldb, long strideB, float beta, long c, int ldc, long strideC, int batchCount,
            DType type, boolean tf32) {
        MemorySegment h = blasHandle();
        MemorySegment s = scalars(alpha, beta);
        int t = dataType(type);
        MemorySegment pa = MemorySegment.ofAddress(a);
        MemorySegment pb = MemorySegment.ofAddress(b);
        MemorySegment pc = MemorySegment.ofAddress(c);
        if (gemmApi == Hipblas.GemmApi.V2_SUFFIXED) {
            checkBlas(Hipblas.hipblasGemmStridedBatchedEx_v2(h, op(transA), op(transB), m, n, k, s, pa, t,
                    lda, strideA, pb, t, ldb, strideB, s.asSlice(4), pc, t, ldc, strideC, batchCount, computeType(),
                    Hipblas.HIPBLAS_GEMM_DEFAULT), "hipblasGemmStridedBatchedEx_v2");
        } else {
            checkBlas(Hipblas.hipblasGemmStridedBatchedEx(h, op(transA), op(transB), m, n, k, s, pa, t, lda,
                    strideA, pb, t, ldb, strideB, s.asSlice(4), pc, t, ldc, strideC, batchCount, computeType(),
                    Hipblas.HIPBLAS_GEMM_DEFAULT), "hipblasGemmStridedBatchedEx");
        }
    }

    @Override
    protected List<Runnable> releaseSteps() {
        return List.of(() -> check(HipRuntimeApi.hipStreamDestroy(stream), "hipStreamDestroy"));
    }
}
