package org.tttbench.gpu.hip;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Map;
import org.tttbench.gpu.Ffm;
import org.tttbench.gpu.GpuException;
import org.tttbench.gpu.NativeLibraries;

/**
 * Bindings to the HIP runtime (libamdhip64, hip_runtime_api.h), in jextract's shape and kept
 * by hand: one static method per C function this suite calls, named as the exported symbol.
 * Every method but the two error-string ones returns the hipError_t. {@link #load()} must
 * succeed before any other method is called.
 */
public final class HipRuntimeApi {

    private HipRuntimeApi() {
    }

    // Constants, named as in hip_runtime_api.h (a test checks each value against the header).
    public static final int hipSuccess = 0;
    public static final int hipMemcpyHostToDevice = 1;
    public static final int hipMemcpyDeviceToHost = 2;
    public static final int hipMemcpyDeviceToDevice = 3;
    public static final int hipDeviceAttributeMultiprocessorCount = 63;
    public static final int hipDeviceAttributeMaxSharedMemoryPerBlock = 74;
    public static final int hipDeviceAttributeWarpSize = 87;
    public static final int hipStreamCaptureModeThreadLocal = 1;

    /**
     * The part of hipDeviceProp_t this suite reads, in the layout of ROCm 5 and of ROCm 6's
     * hipGetDeviceProperties symbol kept for old binaries (R0000). The tail is padded beyond
     * ROCm 5.2's 792 bytes, since later 5.x releases grew the struct.
     */
    public static final StructLayout hipDeviceProp_tR0000 = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(256, JAVA_BYTE).withName("name"),
            MemoryLayout.paddingLayout(396 - 256),
            MemoryLayout.sequenceLayout(256, JAVA_BYTE).withName("gcnArchName"),
            MemoryLayout.paddingLayout(1024)).withName("hipDeviceProp_t");

    /** The same for ROCm 6 and later (hipDeviceProp_tR0600, 1472 bytes). */
    public static final StructLayout hipDeviceProp_tR0600 = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(256, JAVA_BYTE).withName("name"),
            MemoryLayout.paddingLayout(1160 - 256),
            MemoryLayout.sequenceLayout(256, JAVA_BYTE).withName("gcnArchName"),
            MemoryLayout.paddingLayout(1472 - 1160 - 256)).withName("hipDeviceProp_tR0600");

    /** The functions bound here, by exported symbol. */
    public static final Map<String, FunctionDescriptor> FUNCTIONS = Ffm.functions(
            "hipInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT),
            "hipRuntimeGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipGetErrorName", FunctionDescriptor.of(ADDRESS, JAVA_INT),
            "hipGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT),
            "hipGetDeviceCount", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipSetDevice", FunctionDescriptor.of(JAVA_INT, JAVA_INT),
            "hipDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            "hipDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            "hipDeviceTotalMem", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "hipGetDeviceProperties", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "hipGetDevicePropertiesR0600", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "hipStreamCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipStreamSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipStreamDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipMalloc", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG),
            "hipFree", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipMemcpy", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT),
            "hipMemcpyAsync", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS),
            "hipMemsetAsync", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS),
            "hipModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "hipModuleUnload", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
            "hipModuleLaunchKernel", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
            "hipEventCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipEventRecord", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "hipEventSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipEventElapsedTime", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
            "hipEventDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipStreamBeginCapture", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "hipStreamEndCapture", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "hipGraphInstantiateWithFlags", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG),
            "hipGraphLaunch", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "hipGraphExecDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hipGraphDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));

    private static NativeLibraries.Loaded library;
    private static GpuException failure;

    /**
     * Opens libamdhip64 (once: later calls return the same library or fail the same way).
     *
     * @throws GpuException naming every place that was searched
     */
    public static synchronized NativeLibraries.Loaded load() {
        if (library != null) return library;
        if (failure != null) throw failure;
        try {
            library = NativeLibraries.open("the HIP runtime (libamdhip64)",
                    List.of("libamdhip64.so", "libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so.5"),
                    NativeLibraries.rocmPlaces(System.getenv()), "ROCm, or Debian's libamdhip64-dev");
            return library;
        } catch (GpuException e) {
            failure = e;
            throw e;
        }
    }

    static synchronized NativeLibraries.Loaded loaded() {
        if (library == null) throw new IllegalStateException("HipRuntimeApi.load() has not succeeded");
        return library;
    }

    private static MethodHandle bind(String name) {
        return Ffm.bind(loaded(), FUNCTIONS, name);
    }

    /** Whether the library exports {@code name} (ROCm 6 renamed some calls). */
    public static boolean has(String name) {
        return loaded().symbols().find(name).isPresent();
    }

    /** Handles, bound on first use (after {@link #load()}). */
    private static final class H {
        static final MethodHandle hipInit = bind("hipInit");
        static final MethodHandle hipRuntimeGetVersion = bind("hipRuntimeGetVersion");
        static final MethodHandle hipGetErrorName = bind("hipGetErrorName");
        static final MethodHandle hipGetErrorString = bind("hipGetErrorString");
        static final MethodHandle hipGetDeviceCount = bind("hipGetDeviceCount");
        static final MethodHandle hipSetDevice = bind("hipSetDevice");
        static final MethodHandle hipDeviceGetName = bind("hipDeviceGetName");
        static final MethodHandle hipDeviceGetAttribute = bind("hipDeviceGetAttribute");
        static final MethodHandle hipDeviceTotalMem = bind("hipDeviceTotalMem");
        static final MethodHandle hipGetDeviceProperties = Ffm.bindOptional(loaded(), FUNCTIONS, "hipGetDeviceProperties");
        static final MethodHandle hipGetDevicePropertiesR0600 = Ffm.bindOptional(loaded(), FUNCTIONS, "hipGetDevicePropertiesR0600");
        static final MethodHandle hipStreamCreate = bind("hipStreamCreate");
        static final MethodHandle hipStreamSynchronize = bind("hipStreamSynchronize");
        static final MethodHandle hipStreamDestroy = bind("hipStreamDestroy");
        static final MethodHandle hipMalloc = bind("hipMalloc");
        static final MethodHandle hipFree = bind("hipFree");
        static final MethodHandle hipMemcpy = bind("hipMemcpy");
        static final MethodHandle hipMemcpyAsync = bind("hipMemcpyAsync");
        static final MethodHandle hipMemsetAsync = bind("hipMemsetAsync");
        static final MethodHandle hipModuleLoadData = bind("hipModuleLoadData");
        static final MethodHandle hipModuleUnload = bind("hipModuleUnload");
        static final MethodHandle hipModuleGetFunction = bind("hipModuleGetFunction");
        static final MethodHandle hipModuleLaunchKernel = bind("hipModuleLaunchKernel");
        static final MethodHandle hipEventCreate = bind("hipEventCreate");
        static final MethodHandle hipEventRecord = bind("hipEventRecord");
        static final MethodHandle hipEventSynchronize = bind("hipEventSynchronize");
        static final MethodHandle hipEventElapsedTime = bind("hipEventElapsedTime");
        static final MethodHandle hipEventDestroy = bind("hipEventDestroy");
        static final MethodHandle hipStreamBeginCapture = bind("hipStreamBeginCapture");
        static final MethodHandle hipStreamEndCapture = bind("hipStreamEndCapture");
        static final MethodHandle hipGraphInstantiateWithFlags = bind("hipGraphInstantiateWithFlags");
        static final MethodHandle hipGraphLaunch = bind("hipGraphLaunch");
        static final MethodHandle hipGraphExecDestroy = bind("hipGraphExecDestroy");
        static final MethodHandle hipGraphDestroy = bind("hipGraphDestroy");
    }

    public static int hipInit(int flags) {
        try {
            return (int) H.hipInit.invokeExact(flags);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipRuntimeGetVersion(MemorySegment runtimeVersion) {
        try {
            return (int) H.hipRuntimeGetVersion.invokeExact(runtimeVersion);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static MemorySegment hipGetErrorName(int hipError) {
        try {
            return (MemorySegment) H.hipGetErrorName.invokeExact(hipError);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static MemorySegment hipGetErrorString(int hipError) {
        try {
            return (MemorySegment) H.hipGetErrorString.invokeExact(hipError);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipGetDeviceCount(MemorySegment count) {
        try {
            return (int) H.hipGetDeviceCount.invokeExact(count);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipSetDevice(int deviceId) {
        try {
            return (int) H.hipSetDevice.invokeExact(deviceId);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipDeviceGetName(MemorySegment name, int len, int device) {
        try {
            return (int) H.hipDeviceGetName.invokeExact(name, len, device);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipDeviceGetAttribute(MemorySegment pi, int attr, int deviceId) {
        try {
            return (int) H.hipDeviceGetAttribute.invokeExact(pi, attr, deviceId);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipDeviceTotalMem(MemorySegment bytes, int device) {
        try {
            return (int) H.hipDeviceTotalMem.invokeExact(bytes, device);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipGetDeviceProperties(MemorySegment prop, int deviceId) {
        if (H.hipGetDeviceProperties == null) throw new GpuException("hipGetDeviceProperties is not exported by " + loaded().source());
        try {
            return (int) H.hipGetDeviceProperties.invokeExact(prop, deviceId);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipGetDevicePropertiesR0600(MemorySegment prop, int deviceId) {
        if (H.hipGetDevicePropertiesR0600 == null) throw new GpuException("hipGetDevicePropertiesR0600 is not exported by " + loaded().source());
        try {
            return (int) H.hipGetDevicePropertiesR0600.invokeExact(prop, deviceId);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipStreamCreate(MemorySegment stream) {
        try {
            return (int) H.hipStreamCreate.invokeExact(stream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipStreamSynchronize(MemorySegment stream) {
        try {
            return (int) H.hipStreamSynchronize.invokeExact(stream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipStreamDestroy(MemorySegment stream) {
        try {
            return (int) H.hipStreamDestroy.invokeExact(stream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipMalloc(MemorySegment ptr, long size) {
        try {
            return (int) H.hipMalloc.invokeExact(ptr, size);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipFree(MemorySegment ptr) {
        try {
            return (int) H.hipFree.invokeExact(ptr);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipMemcpy(MemorySegment dst, MemorySegment src, long sizeBytes, int kind) {
        try {
            return (int) H.hipMemcpy.invokeExact(dst, src, sizeBytes, kind);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipMemcpyAsync(MemorySegment dst, MemorySegment src, long sizeBytes, int kind, MemorySegment stream) {
        try {
            return (int) H.hipMemcpyAsync.invokeExact(dst, src, sizeBytes, kind, stream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipMemsetAsync(MemorySegment dst, int value, long sizeBytes, MemorySegment stream) {
        try {
            return (int) H.hipMemsetAsync.invokeExact(dst, value, sizeBytes, stream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipModuleLoadData(MemorySegment module, MemorySegment image) {
        try {
            return (int) H.hipModuleLoadData.invokeExact(module, image);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipModuleUnload(MemorySegment module) {
        try {
            return (int) H.hipModuleUnload.invokeExact(module);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipModuleGetFunction(MemorySegment function, MemorySegment module, MemorySegment kname) {
        try {
            return (int) H.hipModuleGetFunction.invokeExact(function, module, kname);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipModuleLaunchKernel(MemorySegment f, int gridDimX, int gridDimY, int gridDimZ, int blockDimX, int blockDimY, int blockDimZ, int sharedMemBytes, MemorySegment stream, MemorySegment kernelParams, MemorySegment extra) {
        try {
            return (int) H.hipModuleLaunchKernel.invokeExact(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, stream, kernelParams, extra);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipEventCreate(MemorySegment event) {
        try {
            return (int) H.hipEventCreate.invokeExact(event);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipEventRecord(MemorySegment event, MemorySegment stream) {
        try {
            return (int) H.hipEventRecord.invokeExact(event, stream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipEventSynchronize(MemorySegment event) {
        try {
            return (int) H.hipEventSynchronize.invokeExact(event);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipEventElapsedTime(MemorySegment ms, MemorySegment start, MemorySegment stop) {
        try {
            return (int) H.hipEventElapsedTime.invokeExact(ms, start, stop);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipEventDestroy(MemorySegment event) {
        try {
            return (int) H.hipEventDestroy.invokeExact(event);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipStreamBeginCapture(MemorySegment stream, int mode) {
        try {
            return (int) H.hipStreamBeginCapture.invokeExact(stream, mode);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipStreamEndCapture(MemorySegment stream, MemorySegment pGraph) {
        try {
            return (int) H.hipStreamEndCapture.invokeExact(stream, pGraph);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipGraphInstantiateWithFlags(MemorySegment pGraphExec, MemorySegment graph, long flags) {
        try {
            return (int) H.hipGraphInstantiateWithFlags.invokeExact(pGraphExec, graph, flags);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipGraphLaunch(MemorySegment graphExec, MemorySegment stream) {
        try {
            return (int) H.hipGraphLaunch.invokeExact(graphExec, stream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipGraphExecDestroy(MemorySegment graphExec) {
        try {
            return (int) H.hipGraphExecDestroy.invokeExact(graphExec);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hipGraphDestroy(MemorySegment graph) {
        try {
            return (int) H.hipGraphDestroy.invokeExact(graph);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }
}
