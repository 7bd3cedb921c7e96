package org.tttbench.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.tttbench.config.DType;

/**
 * A {@link GpuRuntime} that runs the kernels of hip/ on the CPU, through the libraries
 * src/test/emu/build.py makes (see emu_runtime.h), for tests on machines with no GPU. It says
 * it is a CUDA device of sm_80 (no thread block clusters), or of sm_90 (clusters: the kernels of
 * a module built with build.py --sm 90 run in clusters of the size they were compiled for), so
 * {@link KernelImages} picks the emulated objects of that architecture when their folder comes
 * first on the class path. Device memory is host memory filled with NaN bytes at
 * allocation, kernels launched above 48 KB of dynamic shared memory must have raised their
 * limit first (as on NVIDIA), and the BLAS is a plain float32 loop.
 */
public final class EmulatedRuntime implements GpuRuntime {

    private static final int DEFAULT_SHARED_LIMIT = 48 * 1024;

    private final int maxShared;
    private final int warp;
    private final String arch;
    private final Arena arena = Arena.ofShared();
    private final Map<Long, Arena> allocations = new HashMap<>();
    private final List<SymbolLookup> libraries = new ArrayList<>();
    private final List<MethodHandle> launchers = new ArrayList<>();
    private final List<long[]> functions = new ArrayList<>();  // {wrapper address, module, cluster size}
    private final Map<Long, Integer> sharedLimits = new HashMap<>();
    private final List<List<Runnable>> graphs = new ArrayList<>();
    private final List<Long> events = new ArrayList<>();
    private List<Runnable> capture;
    private long launches;

    /**
     * @param maxShared the dynamic shared memory a block may opt in to (232448 on an H100)
     * @param warp      threads per warp (32 NVIDIA, 64 CDNA)
     */
    public EmulatedRuntime(int maxShared, int warp) {
        this(maxShared, warp, "sm_80");
    }

    /** @param arch the architecture to report: sm_80, or sm_90 for thread block clusters */
    public EmulatedRuntime(int maxShared, int warp, String arch) {
        if (!arch.equals("sm_80") && !arch.equals("sm_90")) {
            throw new IllegalArgumentException("emulated architecture sm_80 or sm_90, not " + arch);
        }
        this.maxShared = maxShared;
        this.warp = warp;
        this.arch = arch;
    }

    /** Kernel launches so far. */
    public long launches() {
        return launches;
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public String deviceName() {
        return "CPU emulation";
    }

    @Override
    public String architecture() {
        return arch;
    }

    @Override
    public int warpSize() {
        return warp;
    }

    @Override
    public int multiprocessorCount() {
        return 2;
    }

    @Override
    public int maxSharedMemoryPerBlock() {
        return maxShared;
    }

    @Override
    public long totalMemory() {
        return 8L << 30;
    }

    @Override
    public long malloc(long bytes) {
        Arena a = Arena.ofShared();
        MemorySegment s = a.allocate(Math.max(bytes, 1), 256);
        s.fill((byte) 0xFF);
        allocations.put(s.address(), a);
        return s.address();
    }

    @Override
    public void free(long devicePtr) {
        Arena a = allocations.remove(devicePtr);
        if (a == null) throw new GpuException("free of " + devicePtr + ", which malloc did not return");
        a.close();
    }

    private static MemorySegment at(long ptr, long bytes) {
        return MemorySegment.ofAddress(ptr).reinterpret(bytes);
    }

    @Override
    public void copyToDevice(MemorySegment host, long devicePtr, long bytes) {
        MemorySegment.copy(host, 0, at(devicePtr, bytes), 0, bytes);
    }

    @Override
    public void copyToHost(long devicePtr, MemorySegment host, long bytes) {
        MemorySegment.copy(at(devicePtr, bytes), 0, host, 0, bytes);
    }

    @Override
    public void copyDeviceToDevice(long src, long dst, long bytes) {
        issue(() -> MemorySegment.copy(at(src, bytes), 0, at(dst, bytes), 0, bytes));
    }

    @Override
    public void memset(long devicePtr, int value, long bytes) {
        issue(() -> at(devicePtr, bytes).fill((byte) value));
    }

    private void issue(Runnable work) {
        if (capture != null) {
            capture.add(work);
        } else {
            work.run();
        }
    }

    @Override
    public long loadModule(byte[] image) {
        try {
            Path file = Files.createTempFile("tttbench-emu", ".so");
            Files.write(file, image);
            file.toFile().deleteOnExit();
            SymbolLookup lib = SymbolLookup.libraryLookup(file, arena);
            MemorySegment launch = lib.find("emu_launch").orElseThrow(
                    () -> new GpuException("not an emulated kernel library (no emu_launch)"));
            launchers.add(Linker.nativeLinker().downcallHandle(launch, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS,
                    JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT)));
            libraries.add(lib);
            return libraries.size() - 1;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public long function(long module, String name) {
        SymbolLookup lib = libraries.get((int) module);
        MemorySegment f = lib.find("emu_call_" + name)
                .orElseThrow(() -> new GpuException("no kernel " + name + " in emulated module " + module));
        int cluster = lib.find("emu_cluster_" + name).map(s -> s.reinterpret(4).get(JAVA_INT, 0)).orElse(1);
        functions.add(new long[] {f.address(), module, cluster});
        return functions.size() - 1;
    }

    @Override
    public void setMaxDynamicSharedMemory(long function, int bytes) {
        if (bytes > maxShared) {
            throw new GpuException("cuFuncSetAttribute: " + bytes + " bytes of shared memory, over the device's " + maxShared);
        }
        sharedLimits.put(function, bytes);
    }

    @Override
    public void launch(long function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
            int sharedBytes, MemorySegment args) {
        int limit = sharedLimits.getOrDefault(function, DEFAULT_SHARED_LIMIT);
        if (sharedBytes > Math.max(limit, DEFAULT_SHARED_LIMIT)) {
            throw new GpuException("cuLaunchKernel: " + sharedBytes + " bytes of dynamic shared memory, limit " + limit);
        }
        long[] f = functions.get((int) function);
        MethodHandle launcher = launchers.get((int) f[1]);
        int cluster = (int) f[2];
        if (gridX % cluster != 0) {
            throw new GpuException("cuLaunchKernel: grid " + gridX + " not a multiple of the kernel's cluster of " + cluster);
        }
        issue(() -> {
            launches++;
            int rc;
            try {
                rc = (int) launcher.invokeExact(MemorySegment.ofAddress(f[0]), args, gridX, gridY, gridZ, blockX, blockY,
                        blockZ, sharedBytes, warp, cluster);
            } catch (Throwable t) {
                throw new GpuException("emulated launch failed: " + t);
            }
            if (rc != 0) throw new GpuException("emulated launch failed (" + (rc == 1 ? "deadlock" : "configuration") + ")");
        });
    }

    @Override
    public void synchronize() {
    }

    @Override
    public void beginCapture() {
        capture = new ArrayList<>();
    }

    @Override
    public long endCapture() {
        graphs.add(capture);
        capture = null;
        return graphs.size() - 1;
    }

    @Override
    public void launchGraph(long graph) {
        graphs.get((int) graph).forEach(Runnable::run);
    }

    @Override
    public void destroyGraph(long graph) {
    }

    @Override
    public long createEvent() {
        events.add(0L);
        return events.size() - 1;
    }

    @Override
    public void recordEvent(long event) {
        events.set((int) event, System.nanoTime());
    }

    @Override
    public float elapsedMillis(long start, long end) {
        return (events.get((int) end) - events.get((int) start)) / 1e6f;
    }

    @Override
    public void destroyEvent(long event) {
    }

    @Override
    public long stream() {
        return 0;
    }

    @Override
    public Blas blas() {
        return new CpuBlas();
    }

    @Override
    public void close() {
        for (Arena a : allocations.values()) a.close();
        allocations.clear();
    }

    /** Column-major GEMM with float32 accumulation, as BLAS defines it. */
    private final class CpuBlas implements Blas {

        @Override
        public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda, long b,
                int ldb, float beta, long c, int ldc, DType type, boolean tf32) {
            issue(() -> multiply(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, type));
        }

        @Override
        public void gemmStridedBatched(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda,
                long strideA, long b, int ldb, long strideB, float beta, long c, int ldc, long strideC, int batchCount,
                DType type, boolean tf32) {
            long s = type.bytes();
            for (int i = 0; i < batchCount; i++) {
                gemm(transA, transB, m, n, k, alpha, a + i * strideA * s, lda, b + i * strideB * s, ldb, beta,
                        c + i * strideC * s, ldc, type, tf32);
            }
        }

        private void multiply(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda, long b,
                int ldb, float beta, long c, int ldc, DType type) {
            // opA[i][p] and opB[p][j] gathered into row-major float arrays, then C in place.
            float[] ta = new float[m * k];
            float[] tb = new float[k * n];
            for (int i = 0; i < m; i++) {
                for (int p = 0; p < k; p++) ta[i * k + p] = read(a, transA ? p + (long) i * lda : i + (long) p * lda, type);
            }
            for (int p = 0; p < k; p++) {
                for (int j = 0; j < n; j++) tb[p * n + j] = read(b, transB ? j + (long) p * ldb : p + (long) j * ldb, type);
            }
            java.util.stream.IntStream.range(0, m).parallel().forEach(i -> {
                float[] row = new float[n];
                for (int p = 0; p < k; p++) {
                    float x = ta[i * k + p];
                    for (int j = 0; j < n; j++) row[j] += x * tb[p * n + j];
                }
                for (int j = 0; j < n; j++) {
                    long at = i + (long) j * ldc;
                    float v = alpha * row[j] + (beta == 0 ? 0 : beta * read(c, at, type));
                    write(c, at, v, type);
                }
            });
        }

        private float read(long base, long index, DType type) {
            return switch (type) {
                case FLOAT32 -> at(base, (index + 1) * 4).getAtIndex(JAVA_FLOAT, index);
                case BFLOAT16 -> Float.intBitsToFloat((at(base, (index + 1) * 2).getAtIndex(JAVA_SHORT, index) & 0xFFFF) << 16);
                case FLOAT16 -> Float.float16ToFloat(at(base, (index + 1) * 2).getAtIndex(JAVA_SHORT, index));
            };
        }

        private void write(long base, long index, float v, DType type) {
            switch (type) {
                case FLOAT32 -> at(base, (index + 1) * 4).setAtIndex(JAVA_FLOAT, index, v);
                case BFLOAT16 -> at(base, (index + 1) * 2).setAtIndex(JAVA_SHORT, index,
                        (short) (Float.floatToRawIntBits(DType.BFLOAT16.round(v)) >>> 16));
                case FLOAT16 -> at(base, (index + 1) * 2).setAtIndex(JAVA_SHORT, index, Float.floatToFloat16(v));
            }
        }
    }
}
