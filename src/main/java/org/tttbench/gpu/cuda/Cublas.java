package org.tttbench.gpu.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Map;
import org.tttbench.gpu.Ffm;
import org.tttbench.gpu.GpuException;
import org.tttbench.gpu.NativeLibraries;

/**
 * Bindings to cuBLAS (libcublas, cublas_api.h), in jextract's shape and kept by hand: one
 * static method per C function this suite calls, named as the exported symbol. Every method
 * returns the cublasStatus_t. {@link #load()} must succeed before any other method is called.
 */
public final class Cublas {

    private Cublas() {
    }

    // Constants, named as in cublas_api.h and library_types.h.
    public static final int CUBLAS_STATUS_SUCCESS = 0;
    public static final int CUBLAS_OP_N = 0;
    public static final int CUBLAS_OP_T = 1;
    public static final int CUDA_R_32F = 0;
    public static final int CUDA_R_16F = 2;
    public static final int CUDA_R_16BF = 14;
    public static final int CUBLAS_COMPUTE_32F = 68;
    public static final int CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
    public static final int CUBLAS_GEMM_DEFAULT = -1;
    public static final int CUBLAS_DEFAULT_MATH = 0;
    public static final int CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16;

    /** The functions bound here, by exported symbol. */
    public static final Map<String, FunctionDescriptor> FUNCTIONS = Ffm.functions(
            "cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "cublasSetWorkspace_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG),
            "cublasSetMathMode", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "cublasGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT),
            "cublasGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT),
            "cublasGemmEx", FunctionDescriptor.of(JAVA_INT,
                    ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                    ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                    ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            "cublasGemmStridedBatchedEx", FunctionDescriptor.of(JAVA_INT,
                    ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                    ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG,
                    ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT));

    private static NativeLibraries.Loaded library;
    private static GpuException failure;

    /**
     * Opens libcublas (cuBLAS 13, else 12: the calls bound here are the same in both), once.
     *
     * @throws GpuException naming every place that was searched
     */
    public static synchronized NativeLibraries.Loaded load() {
        if (library != null) return library;
        if (failure != null) throw failure;
        List<NativeLibraries.Place> places = NativeLibraries.cudaToolkitPlaces(System.getenv());
        try {
            // libcublas needs libcublasLt; a toolkit folder that is not in the loader's cache has
            // no other way to find it than a library of that soname being loaded already.
            NativeLibraries.open("cuBLASLt", List.of("libcublasLt.so.13", "libcublasLt.so.12"), places,
                    "cuBLAS");
        } catch (GpuException e) {
            // libcublas's own load below says what is missing.
        }
        try {
            library = NativeLibraries.open("cuBLAS (libcublas)", List.of("libcublas.so.13", "libcublas.so.12"), places,
                    "cuBLAS: the CUDA toolkit, or pip install nvidia-cublas");
            return library;
        } catch (GpuException e) {
            failure = e;
            throw e;
        }
    }

    private static synchronized NativeLibraries.Loaded loaded() {
        if (library == null) throw new IllegalStateException("Cublas.load() has not succeeded");
        return library;
    }

    private static MethodHandle bind(String name) {
        return Ffm.bind(loaded(), FUNCTIONS, name);
    }

    /** Handles, bound on first use (after {@link #load()}). */
    private static final class H {
        static final MethodHandle cublasCreate_v2 = bind("cublasCreate_v2");
        static final MethodHandle cublasDestroy_v2 = bind("cublasDestroy_v2");
        static final MethodHandle cublasSetStream_v2 = bind("cublasSetStream_v2");
        static final MethodHandle cublasSetWorkspace_v2 = bind("cublasSetWorkspace_v2");
        static final MethodHandle cublasSetMathMode = bind("cublasSetMathMode");
        static final MethodHandle cublasGemmEx = bind("cublasGemmEx");
        static final MethodHandle cublasGemmStridedBatchedEx = bind("cublasGemmStridedBatchedEx");
        // Only in cuBLAS 11.4 and later; errors then fall back to the status number.
        static final MethodHandle cublasGetStatusName = Ffm.bindOptional(loaded(), FUNCTIONS, "cublasGetStatusName");
        static final MethodHandle cublasGetStatusString = Ffm.bindOptional(loaded(), FUNCTIONS, "cublasGetStatusString");
    }

    public static int cublasCreate_v2(MemorySegment handle) {
        try {
            return (int) H.cublasCreate_v2.invokeExact(handle);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cublasDestroy_v2(MemorySegment handle) {
        try {
            return (int) H.cublasDestroy_v2.invokeExact(handle);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cublasSetStream_v2(MemorySegment handle, MemorySegment streamId) {
        try {
            return (int) H.cublasSetStream_v2.invokeExact(handle, streamId);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cublasSetWorkspace_v2(MemorySegment handle, MemorySegment workspace, long workspaceSizeInBytes) {
        try {
            return (int) H.cublasSetWorkspace_v2.invokeExact(handle, workspace, workspaceSizeInBytes);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cublasSetMathMode(MemorySegment handle, int mode) {
        try {
            return (int) H.cublasSetMathMode.invokeExact(handle, mode);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    /** The status's enum name, or NULL where this cuBLAS has no cublasGetStatusName. */
    public static MemorySegment cublasGetStatusName(int status) {
        if (H.cublasGetStatusName == null) return MemorySegment.NULL;
        try {
            return (MemorySegment) H.cublasGetStatusName.invokeExact(status);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    /** The library's text for a status, or NULL where this cuBLAS has no cublasGetStatusString. */
    public static MemorySegment cublasGetStatusString(int status) {
        if (H.cublasGetStatusString == null) return MemorySegment.NULL;
        try {
            return (MemorySegment) H.cublasGetStatusString.invokeExact(status);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cublasGemmEx(MemorySegment handle, int transa, int transb, int m, int n, int k,
            MemorySegment alpha, MemorySegment a, int aType, int lda, MemorySegment b, int bType, int ldb,
            MemorySegment beta, MemorySegment c, int cType, int ldc, int computeType, int algo) {
        try {
            return (int) H.cublasGemmEx.invokeExact(handle, transa, transb, m, n, k, alpha, a, aType, lda, b, bType,
                    ldb, beta, c, cType, ldc, computeType, algo);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cublasGemmStridedBatchedEx(MemorySegment handle, int transa, int transb, int m, int n, int k,
            MemorySegment alpha, MemorySegment a, int aType, int lda, long strideA, MemorySegment b, int bType,
            int ldb, long strideB, MemorySegment beta, MemorySegment c, int cType, int ldc, long strideC,
            int batchCount, int computeType, int algo) {
        try {
            return (int) H.cublasGemmStridedBatchedEx.invokeExact(handle, transa, transb, m, n, k, alpha, a, aType,
                    lda, strideA, b, bType, ldb, strideB, beta, c, cType, ldc, strideC, batchCount, computeType, algo);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }
}
