package org.tttbench.gpu;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.tttbench.gpu.cuda.Nvrtc;

/**
 * NVRTC, building a cubin for the device's exact architecture ({@code --gpu-architecture=sm_NN}:
 * a real architecture, so the driver loads it without a JIT step, as it does the cubins built
 * ahead of time).
 *
 * <p>What the includes need. NVRTC builds in what device code gets from cuda_runtime.h (the
 * built-in variables, __syncthreads, the warp shuffles, the math functions, the vector types
 * and make_float4; the NVRTC guide's "Language" chapter) and needs nothing from the toolkit for
 * that. It does not build in cuda_fp16.h, cuda_bf16.h or cooperative_groups.h: those resolve
 * only through {@code --include-path=} the toolkit's include folder. cooperative_groups.h then
 * includes CCCL's {@code <cuda/std/type_traits>}, which CUDA 13 moved to include/cccl, a folder
 * nvcc adds by itself and NVRTC does not, so that folder is passed too. (Checked with NVRTC 13.0
 * on sm_90: a kernel using only the built-ins compiles with no include path; cuda_fp16.h and
 * cuda_bf16.h need include/; cooperative_groups.h needs include/ and include/cccl; hip/'s
 * kernels through tttbench_hip.h need both.) Where no toolkit is found the built-ins still work,
 * and the failure of a kernel that includes those headers lists the options it was given.
 */
public final class NvrtcCompiler extends RtcCompiler {

    private static final Pattern REAL_ARCHITECTURE = Pattern.compile("sm_[0-9]+[a-z]?");

    /** The bindings, as the compile flow calls them. */
    static final Calls CALLS = new Calls("NVRTC", Nvrtc::nvrtcVersion, Nvrtc::nvrtcCreateProgram,
            Nvrtc::nvrtcDestroyProgram, Nvrtc::nvrtcCompileProgram, Nvrtc::nvrtcGetProgramLogSize,
            Nvrtc::nvrtcGetProgramLog, Nvrtc::nvrtcGetCUBINSize, Nvrtc::nvrtcGetCUBIN,
            s -> Ffm.cString(Nvrtc.nvrtcGetErrorString(s)));

    /**
     * NVRTC for {@code architecture} ("sm_90"), with the include folders of the toolkit found
     * from CUDA_PATH / CUDA_HOME / CUDA_ROOT, libnvrtc's own folder, the stock folders or the pip wheels.
     *
     * @throws GpuException when libnvrtc is not installed
     */
    public NvrtcCompiler(String architecture) {
        this(architecture, Nvrtc.load());
    }

    private NvrtcCompiler(String architecture, NativeLibraries.Loaded library) {
        this(architecture, version(CALLS, library), includeDirs(System.getenv(), Path.of(library.source()).getParent()),
                CALLS);
    }

    /** Over any calls and include folders: the tests' way in, without a GPU or libnvrtc. */
    NvrtcCompiler(String architecture, String version, List<Path> includeDirs, Calls calls) {
        super("nvrtc", checked(architecture), version, options(architecture, includeDirs), calls);
    }

    private static String checked(String architecture) {
        if (!REAL_ARCHITECTURE.matcher(architecture).matches()) {
            throw new IllegalArgumentException("NVRTC builds cubins for a real architecture such as sm_90, not '"
                    + architecture + "'");
        }
        return architecture;
    }

    private static List<String> options(String architecture, List<Path> includeDirs) {
        List<String> own = new ArrayList<>(List.of("--gpu-architecture=" + architecture, "-std=c++17"));
        for (Path d : includeDirs) own.add("--include-path=" + d);
        return own;
    }

    /**
     * The toolkit's include folder (the first place holding cuda_fp16.h) and its CCCL folder
     * where it has one; empty when there is none.
     *
     * @param libraryDir the folder libnvrtc was loaded from, null where the loader found it
     */
    static List<Path> includeDirs(Map<String, String> env, Path libraryDir) {
        Set<Path> candidates = new LinkedHashSet<>();
        for (String var : List.of("CUDA_PATH", "CUDA_HOME", "CUDA_ROOT")) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) {
                candidates.add(Path.of(v, "include"));
                candidates.add(Path.of(v, "targets", "x86_64-linux", "include"));
            }
        }
        if (libraryDir != null) {
            candidates.add(libraryDir.resolveSibling("include")); // lib64/, targets/…/lib/, pip's nvidia/cu13/lib/
            Path wheel = libraryDir.getParent();
            if (wheel != null) candidates.add(wheel.resolveSibling("cuda_runtime").resolve("include")); // nvidia/cuda_nvrtc/lib/
        }
        candidates.add(Path.of("/usr/local/cuda/include"));
        candidates.add(Path.of("/usr/local/cuda/targets/x86_64-linux/include"));
        for (Path sp : NativeLibraries.sitePackages(env)) {
            candidates.add(sp.resolve("nvidia/cu13/include"));
            candidates.add(sp.resolve("nvidia/cuda_runtime/include"));
        }
        candidates.add(Path.of("/usr/include")); // Debian's nvidia-cuda-dev
        for (Path dir : candidates) {
            if (!Files.isRegularFile(dir.resolve("cuda_fp16.h"))) continue;
            List<Path> dirs = new ArrayList<>(List.of(dir));
            List<Path> cccl = new ArrayList<>(List.of(dir.resolve("cccl"))); // CUDA 13's toolkit
            Path owner = dir.getParent();
            if (owner != null) cccl.add(owner.resolveSibling("cuda_cccl").resolve("include")); // pip's nvidia/cuda_cccl
            for (Path c : cccl) if (Files.isDirectory(c.resolve("cuda/std"))) dirs.add(c);
            return List.copyOf(dirs);
        }
        return List.of();
    }
}
