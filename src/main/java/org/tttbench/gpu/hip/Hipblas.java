package org.tttbench.gpu.hip;

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
 * Bindings to hipBLAS (libhipblas, hipblas/hipblas.h), in jextract's shape and kept by hand.
 * Debian ships no hipBLAS, so these follow the documented C API and are checked against
 * hipblas.h only where a test finds one installed.
 *
 * <p>hipblasGemmEx changed across ROCm releases while keeping its C signature: ROCm 5 takes
 * hipblasDatatype_t for the operand and compute types; ROCm 6 adds hipblasGemmEx_v2 taking
 * hipDataType and hipblasComputeType_t; ROCm 7 gives the plain name the _v2 meaning and drops
 * the suffix. {@link #gemmApi()} tells which one the loaded library has.
 */
public final class Hipblas {

    private Hipblas() {
    }

    // Constants, named as in hipblas.h and hip/library_types.h.
    public static final int HIPBLAS_STATUS_SUCCESS = 0;
    public static final int HIPBLAS_OP_N = 111;
    public static final int HIPBLAS_OP_T = 112;
    public static final int HIPBLAS_GEMM_DEFAULT = 160;
    /** hipDataType, the v2 API's operand types. */
    public static final int HIP_R_32F = 0;
    public static final int HIP_R_16F = 2;
    public static final int HIP_R_16BF = 14;
    /** hipblasComputeType_t, the v2 API's compute type. */
    public static final int HIPBLAS_COMPUTE_32F = 2;
    /** hipblasDatatype_t, ROCm 5's operand and compute types. */
    public static final int HIPBLAS_R_16F = 150;
    public static final int HIPBLAS_R_32F = 151;
    public static final int HIPBLAS_R_16B = 168;

    private static final FunctionDescriptor GEMM_EX = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final FunctionDescriptor GEMM_STRIDED_BATCHED_EX = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG,
            ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT);

    /** The functions bound here, by exported symbol. */
    public static final Map<String, FunctionDescriptor> FUNCTIONS = Ffm.functions(
            "hipblasCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipblasDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipblasSetStream", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "hipblasStatusToString", FunctionDescriptor.of(ADDRESS, JAVA_INT),
            "hipblasGemmEx", GEMM_EX,
            "hipblasGemmEx_v2", GEMM_EX,
            "hipblasGemmStridedBatchedEx", GEMM_STRIDED_BATCHED_EX,
            "hipblasGemmStridedBatchedEx_v2", GEMM_STRIDED_BATCHED_EX);

    /** Which hipblasGemmEx the loaded library has. */
    public enum GemmApi {
        /** ROCm 5: hipblasGemmEx with hipblasDatatype_t. */
        LEGACY,
        /** ROCm 6: hipblasGemmEx_v2 with hipDataType and hipblasComputeType_t. */
        V2_SUFFIXED,
        /** ROCm 7 and later: hipblasGemmEx with hipDataType and hipblasComputeType_t. */
        V2
    }

    private static NativeLibraries.Loaded library;
    private static GpuException failure;

    /**
     * Opens libhipblas, once.
     *
     * @throws GpuException naming every place that was searched
     */
    public static synchronized NativeLibraries.Loaded load() {
        if (library != null) return library;
        if (failure != null) throw failure;
        try {
            library = NativeLibraries.open("hipBLAS (libhipblas)",
                    List.of("libhipblas.so", "libhipblas.so.3", "libhipblas.so.2", "libhipblas.so.1", "libhipblas.so.0"),
                    NativeLibraries.rocmPlaces(System.getenv()), "ROCm's hipblas package");
            return library;
        } catch (GpuException e) {
            failure = e;
            throw e;
        }
    }

    private static synchronized NativeLibraries.Loaded loaded() {
        if (library == null) throw new IllegalStateException("Hipblas.load() has not succeeded");
        return library;
    }

    /** Decided from the exported symbols, then from the library's major version (hipBLAS 3 is ROCm 7). */
    public static GemmApi gemmApi() {
        NativeLibraries.Loaded lib = loaded();
        if (lib.symbols().find("hipblasGemmEx_v2").isPresent()) return GemmApi.V2_SUFFIXED;
        return gemmApiOf(lib.realFileName());
    }

    /** The API a library file without the _v2 symbols has: "libhipblas.so.3.0.70000" is V2, ".so.0"/".so.1"/".so.2" LEGACY. */
    public static GemmApi gemmApiOf(String realFileName) {
        String marker = ".so.";
        int at = realFileName.indexOf(marker);
        if (at < 0) return GemmApi.V2;
        String rest = realFileName.substring(at + marker.length());
        int dot = rest.indexOf('.');
        String major = dot < 0 ? rest : rest.substring(0, dot);
        try {
            return Integer.parseInt(major) >= 3 ? GemmApi.V2 : GemmApi.LEGACY;
        } catch (NumberFormatException e) {
            return GemmApi.V2;
        }
    }

    private static MethodHandle bind(String name) {
        return Ffm.bind(loaded(), FUNCTIONS, name);
    }

    /** Handles, bound on first use (after {@link #load()}); the GemmEx pair that the library lacks stays null. */
    private static final class H {
        static final MethodHandle hipblasCreate = bind("hipblasCreate");
        static final MethodHandle hipblasDestroy = bind("hipblasDestroy");
        static final MethodHandle hipblasSetStream = bind("hipblasSetStream");
        static final MethodHandle hipblasStatusToString = Ffm.bindOptional(loaded(), FUNCTIONS, "hipblasStatusToString");
        static final MethodHandle hipblasGemmEx = Ffm.bindOptional(loaded(), FUNCTIONS, "hipblasGemmEx");
        static final MethodHandle hipblasGemmEx_v2 = Ffm.bindOptional(loaded(), FUNCTIONS, "hipblasGemmEx_v2");
        static final MethodHandle hipblasGemmStridedBatchedEx =
                Ffm.bindOptional(loaded(), FUNCTIONS, "hipblasGemmStridedBatchedEx");
        static final MethodHandle hipblasGemmStridedBatchedEx_v2 =
                Ffm.bindOptional(loaded(), FUNCTIONS, "hipblasGemmStridedBatchedEx_v2");
    }

    private static MethodHandle present(MethodHandle h, String name) {
        if (h == null) throw new GpuException(name + " is not exported by " + loaded().source());
        return h;
    }

    public static int hipblasCreate(MemorySegment handle) {
        try {
            return (int) H.hipblasCreate.invokeExact(handle);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipblasDestroy(MemorySegment handle) {
        try {
            return (int) H.hipblasDestroy.invokeExact(handle);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipblasSetStream(MemorySegment handle, MemorySegment streamId) {
        try {
            return (int) H.hipblasSetStream.invokeExact(handle, streamId);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    /** The library's text for a status, or NULL where this hipBLAS has no hipblasStatusToString. */
    public static MemorySegment hipblasStatusToString(int status) {
        if (H.hipblasStatusToString == null) return MemorySegment.NULL;
        try {
            return (MemorySegment) H.hipblasStatusToString.invokeExact(status);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipblasGemmEx(MemorySegment handle, int transA, int transB, int m, int n, int k,
            MemorySegment alpha, MemorySegment a, int aType, int lda, MemorySegment b, int bType, int ldb,
            MemorySegment beta, MemorySegment c, int cType, int ldc, int computeType, int algo) {
        MethodHandle h = present(H.hipblasGemmEx, "hipblasGemmEx");
        try {
            return (int) h.invokeExact(handle, transA, transB, m, n, k, alpha, a, aType, lda, b, bType, ldb, beta, c,
                    cType, ldc, computeType, algo);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipblasGemmEx_v2(MemorySegment handle, int transA, int transB, int m, int n, int k,
            MemorySegment alpha, MemorySegment a, int aType, int lda, MemorySegment b, int bType, int ldb,
            MemorySegment beta, MemorySegment c, int cType, int ldc, int computeType, int algo) {
        MethodHandle h = present(H.hipblasGemmEx_v2, "hipblasGemmEx_v2");
        try {
            return (int) h.invokeExact(handle, transA, transB, m, n, k, alpha, a, aType, lda, b, bType, ldb, beta, c,
                    cType, ldc, computeType, algo);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipblasGemmStridedBatchedEx(MemorySegment handle, int transA, int transB, int m, int n, int k,
            MemorySegment alpha, MemorySegment a, int aType, int lda, long strideA, MemorySegment b, int bType,
            int ldb, long strideB, MemorySegment beta, MemorySegment c, int cType, int ldc, long strideC,
            int batchCount, int computeType, int algo) {
        MethodHandle h = present(H.hipblasGemmStridedBatchedEx, "hipblasGemmStridedBatchedEx");
        try {
            return (int) h.invokeExact(handle, transA, transB, m, n, k, alpha, a, aType, lda, strideA, b, bType, ldb,
                    strideB, beta, c, cType, ldc, strideC, batchCount, computeType, algo);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipblasGemmStridedBatchedEx_v2(MemorySegment handle, int transA, int transB, int m, int n,
            int k, MemorySegment alpha, MemorySegment a, int aType, int lda, long strideA, MemorySegment b, int bType,
            int ldb, long strideB, MemorySegment beta, MemorySegment c, int cType, int ldc, long strideC,
            int batchCount, int computeType, int algo) {
        MethodHandle h = present(H.hipblasGemmStridedBatchedEx_v2, "hipblasGemmStridedBatchedEx_v2");
        try {
            return (int) h.invokeExact(handle, transA, transB, m, n, k, alpha, a, aType, lda, strideA, b, bType, ldb,
                    strideB, beta, c, cType, ldc, strideC, batchCount, computeType, algo);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }
}
