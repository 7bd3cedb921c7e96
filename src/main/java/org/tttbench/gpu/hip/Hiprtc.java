package org.tttbench.gpu.hip;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Map;
import org.tttbench.gpu.Ffm;
import org.tttbench.gpu.GpuException;
import org.tttbench.gpu.LoadOnce;
import org.tttbench.gpu.NativeLibraries;

/**
 * Bindings to hipRTC, HIP's run-time compiler (hip/hiprtc.h), in jextract's shape and kept by
 * hand: one static method per C function this suite calls, named as the exported symbol. Every
 * method but hiprtcGetErrorString returns the hiprtcResult. {@link #load()} must succeed before
 * any other method is called.
 *
 * <p>ROCm 6 and later ship hipRTC as libhiprtc; ROCm 5 builds it into the HIP runtime
 * (libamdhip64 exports the hiprtc* symbols), which is used where no libhiprtc is found.
 */
public final class Hiprtc {

    private Hiprtc() {
    }

    // Constants, named as in hip/hiprtc.h (a test checks each value against the header).
    public static final int HIPRTC_SUCCESS = 0;
    public static final int HIPRTC_ERROR_INVALID_OPTION = 5;
    public static final int HIPRTC_ERROR_COMPILATION = 6;

    /** The functions bound here, by exported symbol. */
    public static final Map<String, FunctionDescriptor> FUNCTIONS = Ffm.functions(
            "hiprtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT),
            "hiprtcVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "hiprtcCreateProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS),
            "hiprtcDestroyProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "hiprtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS),
            "hiprtcGetProgramLogSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "hiprtcGetProgramLog", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "hiprtcGetCodeSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "hiprtcGetCode", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));

    private static final LoadOnce LIBRARY = new LoadOnce("Hiprtc", Hiprtc::open);

    /**
     * Opens libhiprtc, or the HIP runtime where that has hipRTC built in, once.
     *
     * @throws GpuException naming every place that was searched
     */
    public static NativeLibraries.Loaded load() {
        return LIBRARY.load();
    }

    private static NativeLibraries.Loaded open() {
        GpuException separate;
        try {
            return NativeLibraries.open("hipRTC (libhiprtc)",
                    List.of("libhiprtc.so.7", "libhiprtc.so.6", "libhiprtc.so.5", "libhiprtc.so"),
                    NativeLibraries.rocmPlaces(System.getenv()), "ROCm's hiprtc");
        } catch (GpuException e) {
            separate = e;
        }
        String summary = "hipRTC not found; install ROCm (6 or later: its hiprtc package), or Debian's libamdhip64-dev";
        NativeLibraries.Loaded runtime;
        try {
            runtime = HipRuntimeApi.load();
        } catch (GpuException e) {
            throw new GpuException(summary, separate.getMessage() + "; " + e.getMessage());
        }
        if (runtime.symbols().find("hiprtcCreateProgram").isPresent()) return runtime;
        throw new GpuException(summary, separate.getMessage() + "; " + runtime.source()
                + " has no hipRTC built in (ROCm 6 moved it to libhiprtc)");
    }

    private static MethodHandle bind(String name) {
        return Ffm.bind(LIBRARY.loaded(), FUNCTIONS, name);
    }

    /** Handles, bound on first use (after {@link #load()}). */
    private static final class H {
        static final MethodHandle hiprtcGetErrorString = bind("hiprtcGetErrorString");
        static final MethodHandle hiprtcVersion = bind("hiprtcVersion");
        static final MethodHandle hiprtcCreateProgram = bind("hiprtcCreateProgram");
        static final MethodHandle hiprtcDestroyProgram = bind("hiprtcDestroyProgram");
        static final MethodHandle hiprtcCompileProgram = bind("hiprtcCompileProgram");
        static final MethodHandle hiprtcGetProgramLogSize = bind("hiprtcGetProgramLogSize");
        static final MethodHandle hiprtcGetProgramLog = bind("hiprtcGetProgramLog");
        static final MethodHandle hiprtcGetCodeSize = bind("hiprtcGetCodeSize");
        static final MethodHandle hiprtcGetCode = bind("hiprtcGetCode");
    }

    /** The result's enum name ("HIPRTC_ERROR_COMPILATION"), a static string. */
    public static MemorySegment hiprtcGetErrorString(int result) {
        try {
            return (MemorySegment) H.hiprtcGetErrorString.invokeExact(result);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hiprtcVersion(MemorySegment major, MemorySegment minor) {
        try {
            return (int) H.hiprtcVersion.invokeExact(major, minor);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hiprtcCreateProgram(MemorySegment prog, MemorySegment src, MemorySegment name, int numHeaders,
            MemorySegment headers, MemorySegment includeNames) {
        try {
            return (int) H.hiprtcCreateProgram.invokeExact(prog, src, name, numHeaders, headers, includeNames);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hiprtcDestroyProgram(MemorySegment prog) {
        try {
            return (int) H.hiprtcDestroyProgram.invokeExact(prog);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hiprtcCompileProgram(MemorySegment prog, int numOptions, MemorySegment options) {
        try {
            return (int) H.hiprtcCompileProgram.invokeExact(prog, numOptions, options);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hiprtcGetProgramLogSize(MemorySegment prog, MemorySegment logSizeRet) {
        try {
            return (int) H.hiprtcGetProgramLogSize.invokeExact(prog, logSizeRet);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hiprtcGetProgramLog(MemorySegment prog, MemorySegment log) {
        try {
            return (int) H.hiprtcGetProgramLog.invokeExact(prog, log);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hiprtcGetCodeSize(MemorySegment prog, MemorySegment codeSizeRet) {
        try {
            return (int) H.hiprtcGetCodeSize.invokeExact(prog, codeSizeRet);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int hiprtcGetCode(MemorySegment prog, MemorySegment code) {
        try {
            return (int) H.hiprtcGetCode.invokeExact(prog, code);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }
}
