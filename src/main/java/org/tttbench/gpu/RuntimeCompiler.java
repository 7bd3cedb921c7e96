package org.tttbench.gpu;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.tttbench.gpu.cuda.Nvrtc;
import org.tttbench.gpu.hip.Hiprtc;

/**
 * A GPU compiler the suite runs in-process, for kernels specialised to a shape known only at
 * run time: NVRTC on NVIDIA ({@link NvrtcCompiler}), hipRTC on AMD ({@link HiprtcCompiler}).
 * Each instance builds for one device architecture; its output loads with
 * {@link GpuRuntime#loadModule(byte[])}. {@link KernelCache} keeps what it built across runs.
 */
public interface RuntimeCompiler {

    /** "nvrtc" or "hiprtc". */
    String name();

    /**
     * The library's version and file, e.g. "13.0 (libnvrtc.so.13.0.88)". Part of every cache
     * key, so code built by another compiler release is never reused.
     */
    String version();

    /** What the code is built for, as {@link GpuRuntime#architecture()} says it: "sm_90", "gfx90a". */
    String architecture();

    /**
     * Every option {@link #compile} passes for {@code extra}: the compiler's own (architecture,
     * language standard, include folders) and then {@code extra}, so a cache key can name them all.
     */
    List<String> options(List<String> extra);

    /**
     * Compiles one program to code for {@link #architecture()}: a cubin on NVIDIA, a code object
     * on AMD.
     *
     * @param programName the name the compiler's messages use ("ttt_linear.hip")
     * @param headers     the headers the source includes by name ("tttbench_hip.h" → its text),
     *                    found before any folder is searched
     * @param options     compiler options besides the compiler's own ("-DTILE=64")
     * @throws GpuException naming the program, with the compiler's whole log, when it does not compile
     */
    byte[] compile(String programName, String source, Map<String, String> headers, List<String> options);

    /**
     * The compiler of the runtime named {@code runtimeName} ("cuda" or "hip", as
     * {@link GpuRuntime#name()} says) for {@code architecture}; empty when its library is not
     * installed, and then {@link #whyMissing} says why.
     */
    static Optional<RuntimeCompiler> find(String runtimeName, String architecture) {
        if (whyMissing(runtimeName).isPresent()) return Optional.empty(); // also rejects other names
        return Optional.of(runtimeName.equals("cuda") ? new NvrtcCompiler(architecture) : new HiprtcCompiler(architecture));
    }

    /** The compiler for the device {@code runtime} drives. */
    static Optional<RuntimeCompiler> find(GpuRuntime runtime) {
        return find(runtime.name(), runtime.architecture());
    }

    /**
     * Why {@link #find} finds no compiler for {@code runtimeName}, in one line for a notice
     * ("NVRTC (libnvrtc) not found; install …"); empty when its library loads. The library is
     * searched for once per process, so asking again costs nothing.
     */
    static Optional<String> whyMissing(String runtimeName) {
        try {
            switch (runtimeName) {
                case "cuda" -> Nvrtc.load();
                case "hip" -> Hiprtc.load();
                default -> throw new IllegalArgumentException("no run-time compiler for runtime '" + runtimeName + "'");
            }
            return Optional.empty();
        } catch (GpuException e) {
            return Optional.of(e.summary());
        }
    }
}
