package org.tttbench.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The run-time compilers without a GPU: the options they pass, where NVRTC's includes are
 * found, the compile flow over stand-in calls (what reaches the library, what a failure says),
 * the answer when a library is missing, and a real hipRTC compile where libamdhip64 has it.
 */
class RuntimeCompilerTest {

    @TempDir
    Path tmp;

    /**
     * Stand-ins for the library: they record what the flow passes and answer with {@code status}
     * for the compile, {@code log} and {@code code}.
     */
    private static final class FakeLibrary {
        final List<String> options = new ArrayList<>();
        final Map<String, String> headers = new LinkedHashMap<>();
        final AtomicInteger destroyed = new AtomicInteger();
        String source;
        String name;
        int createStatus;
        int compileStatus;
        String log = "";
        byte[] code = {0x7f, 'E', 'L', 'F'};

        RtcCompiler.Calls calls() {
            return new RtcCompiler.Calls("FAKE", (major, minor) -> 0, (prog, src, name, n, headers, names) -> {
                if (createStatus != 0) return createStatus;
                source = string(src);
                this.name = string(name);
                for (int i = 0; i < n; i++) {
                    this.headers.put(string(names.reinterpret(8L * n).getAtIndex(ADDRESS, i)),
                            string(headers.reinterpret(8L * n).getAtIndex(ADDRESS, i)));
                }
                prog.set(ADDRESS, 0, MemorySegment.ofAddress(0x1000));
                return 0;
            }, prog -> {
                destroyed.incrementAndGet();
                return 0;
            }, (prog, n, opts) -> {
                for (int i = 0; i < n; i++) options.add(string(opts.reinterpret(8L * n).getAtIndex(ADDRESS, i)));
                return compileStatus;
            }, (prog, size) -> {
                size.set(JAVA_LONG, 0, log.getBytes(UTF_8).length); // no NUL counted or written, as ROCm 5's hipRTC
                return 0;
            }, (prog, buf) -> {
                byte[] bytes = log.getBytes(UTF_8);
                MemorySegment.copy(MemorySegment.ofArray(bytes), 0, buf, 0, bytes.length);
                return 0;
            }, (prog, size) -> {
                size.set(JAVA_LONG, 0, code.length);
                return 0;
            }, (prog, buf) -> {
                MemorySegment.copy(MemorySegment.ofArray(code), 0, buf, 0, code.length);
                return 0;
            }, status -> "FAKE_STATUS_" + status);
        }

        private static String string(MemorySegment p) {
            return p.reinterpret(Long.MAX_VALUE).getString(0);
        }
    }

    @Test
    void nvrtcBuildsACubinForTheExactArchitectureWithTheToolkitIncludes() {
        FakeLibrary lib = new FakeLibrary();
        var nvrtc = new NvrtcCompiler("sm_90", "13.0 (libnvrtc.so.13.0.88)", List.of(Path.of("/cuda/include"),
                Path.of("/cuda/include/cccl")), lib.calls());
        assertEquals(List.of("--gpu-architecture=sm_90", "-std=c++17", "--include-path=/cuda/include",
                "--include-path=/cuda/include/cccl", "-DTILE=64"), nvrtc.options(List.of("-DTILE=64")));
        assertEquals("nvrtc", nvrtc.name());
        assertEquals("sm_90", nvrtc.architecture());
        assertEquals("13.0 (libnvrtc.so.13.0.88)", nvrtc.version());
        new NvrtcCompiler("sm_90a", "v", List.of(), lib.calls());
        new NvrtcCompiler("sm_100", "v", List.of(), lib.calls());
        for (String notReal : List.of("compute_90", "gfx90a", "90", "sm_")) {
            assertThrows(IllegalArgumentException.class, () -> new NvrtcCompiler(notReal, "v", List.of(), lib.calls()),
                    notReal);
        }
    }

    @Test
    void hiprtcBuildsForTheGfxTargetOptimised() {
        var hiprtc = new HiprtcCompiler("gfx90a", "9.0 (libamdhip64.so.5)", new FakeLibrary().calls());
        assertEquals(List.of("--offload-arch=gfx90a", "-O3", "-std=c++17", "-DX=1"), hiprtc.options(List.of("-DX=1")));
        assertEquals("hiprtc", hiprtc.name());
        new HiprtcCompiler("gfx1100", "v", new FakeLibrary().calls());
        for (String notGfx : List.of("sm_90", "gfx", "90a")) {
            assertThrows(IllegalArgumentException.class, () -> new HiprtcCompiler(notGfx, "v", new FakeLibrary().calls()),
                    notGfx);
        }
    }

    @Test
    void theCompileFlowPassesEverythingAndDestroysTheProgram() {
        FakeLibrary lib = new FakeLibrary();
        lib.code = new byte[] {1, 2, 3, 4, 5};
        var nvrtc = new NvrtcCompiler("sm_90", "v", List.of(), lib.calls());
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("tttbench_hip.h", "#pragma once\n");
        headers.put("ttt_scan.h", "#include \"tttbench_hip.h\"\n");
        byte[] code = nvrtc.compile("ttt_linear.hip", "#include \"ttt_scan.h\"\n", headers, List.of("-DK=16"));
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5}, code);
        assertEquals("ttt_linear.hip", lib.name);
        assertEquals("#include \"ttt_scan.h\"\n", lib.source);
        assertEquals(headers, lib.headers);
        assertEquals(nvrtc.options(List.of("-DK=16")), lib.options);
        assertEquals(1, lib.destroyed.get());
        nvrtc.compile("none.hip", "", Map.of(), List.of()); // no headers: NULL arrays with a count of 0
        assertEquals(2, lib.destroyed.get());
    }

    @Test
    void aFailedCompileNamesTheProgramAndCarriesTheWholeLog() {
        FakeLibrary lib = new FakeLibrary();
        lib.compileStatus = 6;
        lib.log = "k.hip(3): error: identifier \"x\" is undefined\n\nk.hip(9): error: expected a \";\"\n\n2 errors detected";
        var nvrtc = new NvrtcCompiler("sm_90", "v", List.of(), lib.calls());
        GpuException e = assertThrows(GpuException.class, () -> nvrtc.compile("k.hip", "src", Map.of(), List.of("-DA")));
        assertEquals("FAKE could not compile k.hip for sm_90: FAKE_STATUS_6", e.summary());
        assertTrue(e.getMessage().contains(lib.log), e.getMessage());
        assertTrue(e.getMessage().contains("--gpu-architecture=sm_90 -std=c++17 -DA"), "the options it was given");
        assertEquals(1, lib.destroyed.get(), "the program is destroyed after a failure too");
    }

    @Test
    void otherFailuresSayWhichCall() {
        FakeLibrary noProgram = new FakeLibrary();
        noProgram.createStatus = 3;
        var hiprtc = new HiprtcCompiler("gfx90a", "v", noProgram.calls());
        GpuException e = assertThrows(GpuException.class, () -> hiprtc.compile("k.hip", "s", Map.of(), List.of()));
        assertEquals("FAKE CreateProgram failed for k.hip: FAKE_STATUS_3", e.getMessage());
        assertEquals(0, noProgram.destroyed.get(), "nothing was created to destroy");

        FakeLibrary noCode = new FakeLibrary();
        noCode.code = new byte[0];
        var empty = new HiprtcCompiler("gfx90a", "v", noCode.calls());
        assertThrows(GpuException.class, () -> empty.compile("k.hip", "s", Map.of(), List.of()));
        assertEquals(1, noCode.destroyed.get());
    }

    @Test
    void nvrtcIncludesComeFromTheToolkitWithItsCcclFolder() throws Exception {
        Path cuda = tmp.resolve("cuda-13.0");
        Files.createDirectories(cuda.resolve("include/cccl/cuda/std"));
        Files.writeString(cuda.resolve("include/cuda_fp16.h"), "");
        assertEquals(List.of(cuda.resolve("include"), cuda.resolve("include/cccl")),
                NvrtcCompiler.includeDirs(Map.of("CUDA_PATH", cuda.toString()), null));

        // CUDA 12 keeps CCCL in include/ itself; libnvrtc's own folder leads to the include folder beside it.
        Path cuda12 = tmp.resolve("cuda-12.6/targets/x86_64-linux");
        Files.createDirectories(cuda12.resolve("lib"));
        Files.createDirectories(cuda12.resolve("include/cuda/std"));
        Files.writeString(cuda12.resolve("include/cuda_fp16.h"), "");
        assertEquals(List.of(cuda12.resolve("include")), NvrtcCompiler.includeDirs(Map.of(), cuda12.resolve("lib")));

        // NVIDIA's CUDA 12 wheels: nvidia/cuda_nvrtc/lib, headers in nvidia/cuda_runtime, CCCL in nvidia/cuda_cccl.
        Path nvidia = tmp.resolve("site-packages/nvidia");
        Files.createDirectories(nvidia.resolve("cuda_nvrtc/lib"));
        Files.createDirectories(nvidia.resolve("cuda_runtime/include"));
        Files.createDirectories(nvidia.resolve("cuda_cccl/include/cuda/std"));
        Files.writeString(nvidia.resolve("cuda_runtime/include/cuda_fp16.h"), "");
        assertEquals(List.of(nvidia.resolve("cuda_runtime/include"), nvidia.resolve("cuda_cccl/include")),
                NvrtcCompiler.includeDirs(Map.of(), nvidia.resolve("cuda_nvrtc/lib")));
    }

    @Test
    void aMissingLibraryIsAnEmptyAnswerWithAOneLineReason() {
        Assumptions.assumeTrue(RuntimeCompiler.whyMissing("cuda").isPresent(), "libnvrtc is installed here");
        assertTrue(RuntimeCompiler.find("cuda", "sm_90").isEmpty());
        String why = RuntimeCompiler.whyMissing("cuda").orElseThrow();
        assertTrue(why.startsWith("NVRTC (libnvrtc) not found; install"), why);
        assertFalse(why.contains("\n"), why);
        assertEquals(why, RuntimeCompiler.whyMissing("cuda").orElseThrow(), "the same answer, from the first search");
        assertThrows(IllegalArgumentException.class, () -> RuntimeCompiler.find("opencl", "x"));
    }

    /** A real compile, where this machine's hipRTC can build for gfx90a (it needs no GPU). */
    @Test
    void hiprtcCompilesATinyKernelToAnElfCodeObject() {
        Assumptions.assumeTrue(RuntimeCompiler.whyMissing("hip").isEmpty(), () -> RuntimeCompiler.whyMissing("hip").get());
        RuntimeCompiler hiprtc = RuntimeCompiler.find("hip", "gfx90a").orElseThrow();
        assertTrue(hiprtc.version().matches("[0-9]+\\.[0-9]+ \\(.+\\)"), hiprtc.version());
        String source = """
                #include "scale.h"
                extern "C" __global__ void scale(float* x, int n) {
                    int i = blockIdx.x * blockDim.x + threadIdx.x;
                    if (i < n) x[i] *= SCALE;
                }
                """;
        Map<String, String> headers = Map.of("scale.h", "#pragma once\n#define SCALE 2.0f\n");
        byte[] code = hiprtc.compile("scale.hip", source, headers, List.of());
        assertTrue(code.length > 64 && code[0] == 0x7f && code[1] == 'E' && code[2] == 'L' && code[3] == 'F',
                "an ELF code object");

        // Through the cache, the second time without compiling.
        KernelCache cache = new KernelCache(tmp, System.err);
        KernelCache.Key key = KernelCache.Key.of(hiprtc, source, headers, List.of());
        AtomicInteger compiles = new AtomicInteger();
        byte[] first = cache.getOrCompile(key, () -> {
            compiles.incrementAndGet();
            return hiprtc.compile("scale.hip", source, headers, List.of());
        });
        byte[] second = cache.getOrCompile(key, () -> {
            compiles.incrementAndGet();
            return hiprtc.compile("scale.hip", source, headers, List.of());
        });
        assertArrayEquals(first, second);
        assertEquals(1, compiles.get());

        GpuException e = assertThrows(GpuException.class, () -> hiprtc.compile("broken.hip",
                "extern \"C\" __global__ void k(float* x) { x[0] = undefined_name; }", Map.of(), List.of()));
        assertTrue(e.summary().startsWith("hipRTC could not compile broken.hip for gfx90a"), e.summary());
        assertTrue(e.getMessage().contains("undefined_name"), e.getMessage());
    }
}
