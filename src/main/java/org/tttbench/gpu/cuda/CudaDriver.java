package org.tttbench.gpu.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import org.tttbench.gpu.Ffm;
import org.tttbench.gpu.GpuException;
import org.tttbench.gpu.NativeLibraries;

/**
 * Bindings to the CUDA driver API (libcuda, cuda.h), in jextract's shape and kept by hand:
 * one static method per C function that this suite calls, named as the exported symbol
 * (the {@code _v2} names that cuda.h's #defines select). Every method returns the CUresult.
 * {@link #load()} must succeed before any other method is called.
 */
public final class CudaDriver {

    private CudaDriver() {
    }

    // Constants, named as in cuda.h (a test checks each value against the header).
    public static final int CUDA_SUCCESS = 0;
    public static final int CUDA_ERROR_NO_DEVICE = 100;
    public static final int CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10;
    public static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    public static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    public static final int CU_STREAM_DEFAULT = 0;
    public static final int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
    public static final int CU_EVENT_DEFAULT = 0;

    /** The functions bound here, by exported symbol. */
    public static final Map<String, FunctionDescriptor> FUNCTIONS = Ffm.functions(
            "cuInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT),
            "cuDriverGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS),
            "cuGetErrorString", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS),
            "cuDeviceGetCount", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cuDeviceGet", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            "cuDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            "cuDeviceTotalMem_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "cuDevicePrimaryCtxRetain", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "cuDevicePrimaryCtxRelease_v2", FunctionDescriptor.of(JAVA_INT, JAVA_INT),
            "cuCtxSetCurrent", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cuStreamCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "cuStreamSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cuStreamDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cuMemAlloc_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG),
            "cuMemFree_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG),
            "cuMemcpyHtoD_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG),
            "cuMemcpyDtoH_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG),
            "cuMemcpyDtoDAsync_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS),
            "cuMemsetD8Async", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_BYTE, JAVA_LONG, ADDRESS),
            "cuModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "cuModuleUnload", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
            "cuFuncSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            "cuLaunchKernel", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                    JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
            "cuEventCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "cuEventRecord", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "cuEventSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cuEventElapsedTime_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
            "cuEventDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cuStreamBeginCapture_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            "cuStreamEndCapture", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "cuGraphInstantiateWithFlags", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG),
            "cuGraphLaunch", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "cuGraphExecDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "cuGraphDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));

    private static NativeLibraries.Loaded library;
    private static GpuException failure;

    /**
     * Opens libcuda (once: later calls return the same library or fail the same way).
     *
     * @throws GpuException naming every place that was searched
     */
    public static synchronized NativeLibraries.Loaded load() {
        if (library != null) return library;
        if (failure != null) throw failure;
        try {
            library = NativeLibraries.open("the CUDA driver (libcuda)", java.util.List.of("libcuda.so.1", "libcuda.so"),
                    NativeLibraries.cudaDriverPlaces(System.getenv()), "the NVIDIA driver");
            return library;
        } catch (GpuException e) {
            failure = e;
            throw e;
        }
    }

    private static synchronized NativeLibraries.Loaded loaded() {
        if (library == null) throw new IllegalStateException("CudaDriver.load() has not succeeded");
        return library;
    }

    private static MethodHandle bind(String name) {
        return Ffm.bind(loaded(), FUNCTIONS, name);
    }

    /** Handles, bound on first use (after {@link #load()}). */
    private static final class H {
        static final MethodHandle cuInit = bind("cuInit");
        static final MethodHandle cuDriverGetVersion = bind("cuDriverGetVersion");
        static final MethodHandle cuGetErrorName = bind("cuGetErrorName");
        static final MethodHandle cuGetErrorString = bind("cuGetErrorString");
        static final MethodHandle cuDeviceGetCount = bind("cuDeviceGetCount");
        static final MethodHandle cuDeviceGet = bind("cuDeviceGet");
        static final MethodHandle cuDeviceGetName = bind("cuDeviceGetName");
        static final MethodHandle cuDeviceGetAttribute = bind("cuDeviceGetAttribute");
        static final MethodHandle cuDeviceTotalMem_v2 = bind("cuDeviceTotalMem_v2");
        static final MethodHandle cuDevicePrimaryCtxRetain = bind("cuDevicePrimaryCtxRetain");
        static final MethodHandle cuDevicePrimaryCtxRelease_v2 = bind("cuDevicePrimaryCtxRelease_v2");
        static final MethodHandle cuCtxSetCurrent = bind("cuCtxSetCurrent");
        static final MethodHandle cuStreamCreate = bind("cuStreamCreate");
        static final MethodHandle cuStreamSynchronize = bind("cuStreamSynchronize");
        static final MethodHandle cuStreamDestroy_v2 = bind("cuStreamDestroy_v2");
        static final MethodHandle cuMemAlloc_v2 = bind("cuMemAlloc_v2");
        static final MethodHandle cuMemFree_v2 = bind("cuMemFree_v2");
        static final MethodHandle cuMemcpyHtoD_v2 = bind("cuMemcpyHtoD_v2");
        static final MethodHandle cuMemcpyDtoH_v2 = bind("cuMemcpyDtoH_v2");
        static final MethodHandle cuMemcpyDtoDAsync_v2 = bind("cuMemcpyDtoDAsync_v2");
        static final MethodHandle cuMemsetD8Async = bind("cuMemsetD8Async");
        static final MethodHandle cuModuleLoadData = bind("cuModuleLoadData");
        static final MethodHandle cuModuleUnload = bind("cuModuleUnload");
        static final MethodHandle cuModuleGetFunction = bind("cuModuleGetFunction");
        static final MethodHandle cuFuncSetAttribute = bind("cuFuncSetAttribute");
        static final MethodHandle cuLaunchKernel = bind("cuLaunchKernel");
        static final MethodHandle cuEventCreate = bind("cuEventCreate");
        static final MethodHandle cuEventRecord = bind("cuEventRecord");
        static final MethodHandle cuEventSynchronize = bind("cuEventSynchronize");
        static final MethodHandle cuEventElapsedTime_v2 =
                Ffm.bindOrOlder(loaded(), FUNCTIONS, "cuEventElapsedTime_v2", "cuEventElapsedTime");
        static final MethodHandle cuEventDestroy_v2 = bind("cuEventDestroy_v2");
        static final MethodHandle cuStreamBeginCapture_v2 = bind("cuStreamBeginCapture_v2");
        static final MethodHandle cuStreamEndCapture = bind("cuStreamEndCapture");
        static final MethodHandle cuGraphInstantiateWithFlags = bind("cuGraphInstantiateWithFlags");
        static final MethodHandle cuGraphLaunch = bind("cuGraphLaunch");
        static final MethodHandle cuGraphExecDestroy = bind("cuGraphExecDestroy");
        static final MethodHandle cuGraphDestroy = bind("cuGraphDestroy");
    }

    public static int cuInit(int flags) {
        try {
            return (int) H.cuInit.invokeExact(flags);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuDriverGetVersion(MemorySegment driverVersion) {
        try {
            return (int) H.cuDriverGetVersion.invokeExact(driverVersion);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuGetErrorName(int error, MemorySegment pStr) {
        try {
            return (int) H.cuGetErrorName.invokeExact(error, pStr);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuGetErrorString(int error, MemorySegment pStr) {
        try {
            return (int) H.cuGetErrorString.invokeExact(error, pStr);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuDeviceGetCount(MemorySegment count) {
        try {
            return (int) H.cuDeviceGetCount.invokeExact(count);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuDeviceGet(MemorySegment device, int ordinal) {
        try {
            return (int) H.cuDeviceGet.invokeExact(device, ordinal);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuDeviceGetName(MemorySegment name, int len, int dev) {
        try {
            return (int) H.cuDeviceGetName.invokeExact(name, len, dev);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuDeviceGetAttribute(MemorySegment pi, int attrib, int dev) {
        try {
            return (int) H.cuDeviceGetAttribute.invokeExact(pi, attrib, dev);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuDeviceTotalMem_v2(MemorySegment bytes, int dev) {
        try {
            return (int) H.cuDeviceTotalMem_v2.invokeExact(bytes, dev);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuDevicePrimaryCtxRetain(MemorySegment pctx, int dev) {
        try {
            return (int) H.cuDevicePrimaryCtxRetain.invokeExact(pctx, dev);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuDevicePrimaryCtxRelease_v2(int dev) {
        try {
            return (int) H.cuDevicePrimaryCtxRelease_v2.invokeExact(dev);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuCtxSetCurrent(MemorySegment ctx) {
        try {
            return (int) H.cuCtxSetCurrent.invokeExact(ctx);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuStreamCreate(MemorySegment phStream, int flags) {
        try {
            return (int) H.cuStreamCreate.invokeExact(phStream, flags);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuStreamSynchronize(MemorySegment hStream) {
        try {
            return (int) H.cuStreamSynchronize.invokeExact(hStream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuStreamDestroy_v2(MemorySegment hStream) {
        try {
            return (int) H.cuStreamDestroy_v2.invokeExact(hStream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuMemAlloc_v2(MemorySegment dptr, long bytesize) {
        try {
            return (int) H.cuMemAlloc_v2.invokeExact(dptr, bytesize);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuMemFree_v2(long dptr) {
        try {
            return (int) H.cuMemFree_v2.invokeExact(dptr);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuMemcpyHtoD_v2(long dstDevice, MemorySegment srcHost, long byteCount) {
        try {
            return (int) H.cuMemcpyHtoD_v2.invokeExact(dstDevice, srcHost, byteCount);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuMemcpyDtoH_v2(MemorySegment dstHost, long srcDevice, long byteCount) {
        try {
            return (int) H.cuMemcpyDtoH_v2.invokeExact(dstHost, srcDevice, byteCount);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuMemcpyDtoDAsync_v2(long dstDevice, long srcDevice, long byteCount, MemorySegment hStream) {
        try {
            return (int) H.cuMemcpyDtoDAsync_v2.invokeExact(dstDevice, srcDevice, byteCount, hStream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuMemsetD8Async(long dstDevice, byte uc, long n, MemorySegment hStream) {
        try {
            return (int) H.cuMemsetD8Async.invokeExact(dstDevice, uc, n, hStream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuModuleLoadData(MemorySegment module, MemorySegment image) {
        try {
            return (int) H.cuModuleLoadData.invokeExact(module, image);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuModuleUnload(MemorySegment hmod) {
        try {
            return (int) H.cuModuleUnload.invokeExact(hmod);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuModuleGetFunction(MemorySegment hfunc, MemorySegment hmod, MemorySegment name) {
        try {
            return (int) H.cuModuleGetFunction.invokeExact(hfunc, hmod, name);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuFuncSetAttribute(MemorySegment hfunc, int attrib, int value) {
        try {
            return (int) H.cuFuncSetAttribute.invokeExact(hfunc, attrib, value);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuLaunchKernel(MemorySegment f, int gridDimX, int gridDimY, int gridDimZ, int blockDimX,
            int blockDimY, int blockDimZ, int sharedMemBytes, MemorySegment hStream, MemorySegment kernelParams,
            MemorySegment extra) {
        try {
            return (int) H.cuLaunchKernel.invokeExact(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                    blockDimZ, sharedMemBytes, hStream, kernelParams, extra);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuEventCreate(MemorySegment phEvent, int flags) {
        try {
            return (int) H.cuEventCreate.invokeExact(phEvent, flags);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuEventRecord(MemorySegment hEvent, MemorySegment hStream) {
        try {
            return (int) H.cuEventRecord.invokeExact(hEvent, hStream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuEventSynchronize(MemorySegment hEvent) {
        try {
            return (int) H.cuEventSynchronize.invokeExact(hEvent);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuEventElapsedTime_v2(MemorySegment pMilliseconds, MemorySegment hStart, MemorySegment hEnd) {
        try {
            return (int) H.cuEventElapsedTime_v2.invokeExact(pMilliseconds, hStart, hEnd);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuEventDestroy_v2(MemorySegment hEvent) {
        try {
            return (int) H.cuEventDestroy_v2.invokeExact(hEvent);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuStreamBeginCapture_v2(MemorySegment hStream, int mode) {
        try {
            return (int) H.cuStreamBeginCapture_v2.invokeExact(hStream, mode);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuStreamEndCapture(MemorySegment hStream, MemorySegment phGraph) {
        try {
            return (int) H.cuStreamEndCapture.invokeExact(hStream, phGraph);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuGraphInstantiateWithFlags(MemorySegment phGraphExec, MemorySegment hGraph, long flags) {
        try {
            return (int) H.cuGraphInstantiateWithFlags.invokeExact(phGraphExec, hGraph, flags);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuGraphLaunch(MemorySegment hGraphExec, MemorySegment hStream) {
        try {
            return (int) H.cuGraphLaunch.invokeExact(hGraphExec, hStream);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuGraphExecDestroy(MemorySegment hGraphExec) {
        try {
            return (int) H.cuGraphExecDestroy.invokeExact(hGraphExec);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int cuGraphDestroy(MemorySegment hGraph) {
        try {
            return (int) H.cuGraphDestroy.invokeExact(hGraph);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }
}
