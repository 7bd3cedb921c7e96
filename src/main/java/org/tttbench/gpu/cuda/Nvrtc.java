package org.tttbench.gpu.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.tttbench.gpu.Ffm;
import org.tttbench.gpu.LoadOnce;
import org.tttbench.gpu.NativeLibraries;

/**
 * Bindings to NVRTC, CUDA's run-time compiler (libnvrtc, nvrtc.h), in jextract's shape and
 * kept by hand: one static method per C function this suite calls, named as the exported
 * symbol. Every method but nvrtcGetErrorString returns the nvrtcResult. {@link #load()} must
 * succeed before any other method is called.
 */
public final class Nvrtc {

    private Nvrtc() {
    }

    // Constants, named as in nvrtc.h (a test checks each value against the header where it is installed).
    public static final int NVRTC_SUCCESS = 0;
    public static final int NVRTC_ERROR_INVALID_OPTION = 5;
    public static final int NVRTC_ERROR_COMPILATION = 6;

    /** The functions bound here, by exported symbol. */
    public static final Map<String, FunctionDescriptor> FUNCTIONS = Ffm.functions(
            "nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT),
            "nvrtcVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "nvrtcCreateProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS),
            "nvrtcDestroyProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS),
            "nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS),
            "nvrtcGetProgramLogSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "nvrtcGetProgramLog", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "nvrtcGetCUBINSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS),
            "nvrtcGetCUBIN", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));

    private static final LoadOnce LIBRARY = new LoadOnce("Nvrtc", () -> open(System.getenv()));

    /**
     * Opens libnvrtc (NVRTC 13, else 12: the calls bound here are the same in both), once.
     *
     * @throws org.tttbench.gpu.GpuException naming every place that was searched
     */
    public static NativeLibraries.Loaded load() {
        return LIBRARY.load();
    }

    /** cuBLAS's places (the toolkit, the loader, the pip wheels), plus the wheel NVRTC comes in for CUDA 12. */
    public static List<NativeLibraries.Place> places(Map<String, String> env) {
        List<NativeLibraries.Place> places = new ArrayList<>(NativeLibraries.cudaToolkitPlaces(env));
        for (Path sp : NativeLibraries.sitePackages(env)) {
            places.add(new NativeLibraries.Dir(sp.resolve("nvidia/cuda_nvrtc/lib")));
        }
        return places;
    }

    private static NativeLibraries.Loaded open(Map<String, String> env) {
        NativeLibraries.Loaded lib = NativeLibraries.open("NVRTC (libnvrtc)", List.of("libnvrtc.so.13", "libnvrtc.so.12"),
                places(env), "the CUDA toolkit, or pip install nvidia-cuda-nvrtc");
        preloadBuiltins(lib);
        return lib;
    }

    /**
     * libnvrtc opens libnvrtc-builtins.so.MAJOR.MINOR by soname when it first compiles, and it
     * has no RUNPATH: from a toolkit folder the loader's cache does not list, that open fails
     * (NVRTC_ERROR_BUILTIN_OPERATION_FAILURE). A library of that soname already loaded is found,
     * so the one beside libnvrtc is loaded first. Where the loader found libnvrtc, it finds the
     * builtins the same way.
     */
    private static void preloadBuiltins(NativeLibraries.Loaded lib) {
        Path file = Path.of(lib.source());
        Path dir = file.getParent();
        if (dir == null || !Files.isDirectory(dir)) return;
        String major = file.getFileName().toString().substring("libnvrtc.so.".length());
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "libnvrtc-builtins.so." + major + ".*")) {
            for (Path builtins : ds) {
                SymbolLookup.libraryLookup(builtins, Arena.global());
                return;
            }
        } catch (IOException | IllegalArgumentException e) {
            // The compile will then say NVRTC_ERROR_BUILTIN_OPERATION_FAILURE, naming the problem.
        }
    }

    private static MethodHandle bind(String name) {
        return Ffm.bind(LIBRARY.loaded(), FUNCTIONS, name);
    }

    /** Handles, bound on first use (after {@link #load()}). */
    private static final class H {
        static final MethodHandle nvrtcGetErrorString = bind("nvrtcGetErrorString");
        static final MethodHandle nvrtcVersion = bind("nvrtcVersion");
        static final MethodHandle nvrtcCreateProgram = bind("nvrtcCreateProgram");
        static final MethodHandle nvrtcDestroyProgram = bind("nvrtcDestroyProgram");
        static final MethodHandle nvrtcCompileProgram = bind("nvrtcCompileProgram");
        static final MethodHandle nvrtcGetProgramLogSize = bind("nvrtcGetProgramLogSize");
        static final MethodHandle nvrtcGetProgramLog = bind("nvrtcGetProgramLog");
        static final MethodHandle nvrtcGetCUBINSize = bind("nvrtcGetCUBINSize");
        static final MethodHandle nvrtcGetCUBIN = bind("nvrtcGetCUBIN");
    }

    /** The result's enum name ("NVRTC_ERROR_COMPILATION"), a static string. */
    public static MemorySegment nvrtcGetErrorString(int result) {
        try {
            return (MemorySegment) H.nvrtcGetErrorString.invokeExact(result);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int nvrtcVersion(MemorySegment major, MemorySegment minor) {
        try {
            return (int) H.nvrtcVersion.invokeExact(major, minor);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int nvrtcCreateProgram(MemorySegment prog, MemorySegment src, MemorySegment name, int numHeaders,
            MemorySegment headers, MemorySegment includeNames) {
        try {
            return (int) H.nvrtcCreateProgram.invokeExact(prog, src, name, numHeaders, headers, includeNames);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int nvrtcDestroyProgram(MemorySegment prog) {
        try {
            return (int) H.nvrtcDestroyProgram.invokeExact(prog);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int nvrtcCompileProgram(MemorySegment prog, int numOptions, MemorySegment options) {
        try {
            return (int) H.nvrtcCompileProgram.invokeExact(prog, numOptions, options);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int nvrtcGetProgramLogSize(MemorySegment prog, MemorySegment logSizeRet) {
        try {
            return (int) H.nvrtcGetProgramLogSize.invokeExact(prog, logSizeRet);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int nvrtcGetProgramLog(MemorySegment prog, MemorySegment log) {
        try {
            return (int) H.nvrtcGetProgramLog.invokeExact(prog, log);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int nvrtcGetCUBINSize(MemorySegment prog, MemorySegment cubinSizeRet) {
        try {
            return (int) H.nvrtcGetCUBINSize.invokeExact(prog, cubinSizeRet);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }

    public static int nvrtcGetCUBIN(MemorySegment prog, MemorySegment cubin) {
        try {
            return (int) H.nvrtcGetCUBIN.invokeExact(prog, cubin);
        } catch (Throwable t) {
            throw Ffm.rethrow(t);
        }
    }
}
