package org.tttbench.gpu;

import java.lang.foreign.Arena;
import java.util.HashMap;
import java.util.Map;
import org.tttbench.config.DType;

/**
 * The kernels of one device: modules loaded on first use (the objects of {@link KernelImages}),
 * each entry point's function handle, its launch descriptor ({@link KernelIndex}), the
 * dynamic shared-memory limit raised once per kernel, and what the device offers (thread
 * block clusters, shared memory a block, multiprocessors). Every launcher of the GPU backend
 * starts its launches here: {@code registry.start("norms_rmsnorm", dtype).p(x)…launch(vars)}.
 */
final class KernelRegistry {

    private final GpuRuntime rt;
    private final KernelIndex index;
    private final KernelLaunch launch;
    private final Map<String, Long> modules = new HashMap<>();
    private final Map<String, Kernel> kernels = new HashMap<>();
    private final boolean clusters;

    private final KernelCache cache;
    private final java.io.PrintStream notices;
    private final java.util.List<KernelImages.Image> images;
    /** The run-time compiler, looked for on the first kernel that needs one; null until then. */
    private java.util.Optional<RuntimeCompiler> compiler;

    /**
     * One loaded entry point and its descriptor.
     *
     * @param build how its code was made: "F=64 K=32 compiled by nvrtc 13.0 (…)" for a module
     *              compiled for its shape, "compiled for gfx942 by hiprtc …" for a module compiled
     *              at run time because the jar has no object for the device, or "ahead of time"
     *              for the jar's own objects
     */
    record Kernel(String name, DType dtype, long function, KernelIndex.Launch spec, String build) {
    }

    KernelRegistry(GpuRuntime rt, Arena host) {
        this(rt, host, KernelIndex.packaged(), KernelImages.index(), KernelCache.standard(), System.err);
    }

    /** @param images the objects the build holds (kernels/index.txt) */
    KernelRegistry(GpuRuntime rt, Arena host, KernelIndex index, java.util.List<KernelImages.Image> images,
            KernelCache cache, java.io.PrintStream notices) {
        this.rt = rt;
        this.images = images;
        this.index = index;
        this.launch = new KernelLaunch(this, host);
        this.clusters = hasClusters(rt);
        this.cache = cache;
        this.notices = notices;
    }

    GpuRuntime runtime() {
        return rt;
    }

    /** Whether the device runs thread block clusters (NVIDIA sm_90 and newer). */
    boolean clusters() {
        return clusters;
    }

    static boolean hasClusters(GpuRuntime rt) {
        return rt.name().equals("cuda") && KernelImages.computeCapability(rt.architecture(), "sm_") >= 90;
    }

    int multiprocessors() {
        return rt.multiprocessorCount();
    }

    /** The most blocks a grid-stride kernel is launched with: enough to fill the device several times over. */
    long maxBlocks() {
        return Math.max(1, rt.multiprocessorCount()) * 32L;
    }

    long maxSharedBytes() {
        return rt.maxSharedMemoryPerBlock();
    }

    /** A buffer size of hip/ (an {@code @size} of the index). */
    long size(String name, LaunchVars vars) {
        return index.size(name, vars);
    }

    /** The descriptor of entry point {@code name}. */
    KernelIndex.Launch spec(String name) {
        return index.launch(name);
    }

    /** Dynamic shared memory a block of {@code name} needs at these variables. */
    long sharedBytes(String name, LaunchVars vars) {
        return spec(name).sharedBytes().eval(vars.and("MAXB", maxBlocks()));
    }

    /**
     * Whether {@code name} runs on this device at these variables: its shared memory fits a block
     * and, for a cluster kernel, the device has clusters.
     */
    boolean runs(String name, LaunchVars vars) {
        KernelIndex.Launch s = spec(name);
        return (s.cluster() == 1 || clusters) && sharedBytes(name, vars) <= maxSharedBytes();
    }

    /**
     * The entry point {@code name} for storage type {@code t}, from the jar's objects (its module
     * loaded on first use), or where the jar has none for this device, from the module compiled for it.
     */
    Kernel kernel(String name, DType t) {
        String full = name + "_" + suffix(t);
        Kernel k = kernels.get(full);
        if (k != null) return k;
        KernelIndex.Launch spec = index.launch(name);
        Long module = modules.get(spec.module());
        if (module == null) {
            java.util.Optional<KernelImages.Image> image = KernelImages.find(KernelImages.vendorOf(rt), rt.architecture(),
                    spec.module(), images);
            if (image.isPresent()) {
                module = rt.loadModule(KernelImages.read(image.get()));
                modules.put(spec.module(), module);
            }
        }
        if (module != null) {
            k = new Kernel(name, t, rt.function(module, full), spec, "ahead of time");
        } else {
            k = compiledForDevice(name, t, spec);
        }
        kernels.put(full, k);
        return k;
    }

    /**
     * Entry point {@code name} from its module compiled for this device at run time (once per stored
     * type, into the on-disk cache): the jar has no object of the module for this device.
     *
     * @throws GpuException naming what was built, when there is no compiler or no source to give it
     */
    private Kernel compiledForDevice(String name, DType t, KernelIndex.Launch spec) {
        String module = spec.module();
        java.util.function.Function<String, GpuException> cannot = why -> new GpuException(KernelImages.whyNone(
                KernelImages.vendorOf(rt), rt.architecture(), module, images) + "; nor can it be compiled here: " + why);
        RuntimeCompiler c = compiler().orElseThrow(() -> cannot.apply("no run-time kernel compiler ("
                + RuntimeCompiler.whyMissing(rt.name()).orElse("?") + ")"));
        String key = module + "_" + suffix(t) + "@device";
        Long m = modules.get(key);
        if (m == null) {
            KernelSources.Program p = KernelSources.of(module).orElseThrow(() -> cannot.apply(
                    "this build carries no kernel sources (kernels/src/" + module + ".hip)"));
            java.util.List<String> options = java.util.List.of("-DTTT_ONLY_" + suffix(t).toUpperCase(java.util.Locale.ROOT));
            notices.println("tttbench: no " + module + " object for " + rt.architecture() + " in this build: compiling it with "
                    + c.name() + " (" + t.flag() + ", once, into the kernel cache)");
            byte[] code = cache.getOrCompile(KernelCache.Key.of(c, p.source(), p.headers(), options),
                    () -> c.compile(p.name(), p.source(), p.headers(), options));
            m = rt.loadModule(code);
            modules.put(key, m);
        }
        return new Kernel(name, t, rt.function(m, name + "_" + suffix(t)), spec,
                "compiled for " + rt.architecture() + " by " + c.name() + " " + c.version());
    }

    /** The device's run-time compiler, looked for once (a line on stderr where there is none). */
    private java.util.Optional<RuntimeCompiler> compiler() {
        if (compiler == null) {
            compiler = rt.compiler();
            if (compiler.isEmpty()) {
                notices.println("tttbench: no run-time kernel compiler (" + RuntimeCompiler.whyMissing(rt.name()).orElse("?")
                        + "): inner scans run the jar's kernels, generic where it has no instance for the shape");
            }
        }
        return compiler;
    }

    /**
     * The entry point {@code name} for storage type {@code t} built for head dim {@code f} and
     * mini-batch {@code k}: the jar's own object where it holds an instance for that shape (or
     * the kernel has no compile-time shapes at all), else a module compiled for exactly that shape
     * (hip/README.md: TTT_SHAPE_F, TTT_SHAPE_K) in setup by the device's run-time compiler, kept
     * in the on-disk cache; where there is no compiler, or the compile fails, the jar's object,
     * which runs the shape generically (one line on stderr says so).
     */
    Kernel kernel(String name, DType t, int f, int k) {
        // Only kernels with compile-time shapes gain from a module of their own: those whose
        // descriptor says which shapes the build's objects hold instances for.
        String instance = name + "_has_instance";
        if (!index.sizes().containsKey(instance) || index.size(instance, LaunchVars.of("F", f).and("K", k)) != 0) {
            return kernel(name, t);
        }
        String full = name + "_" + suffix(t);
        String key = full + "@F" + f + "K" + k;
        Kernel kernel = kernels.get(key);
        if (kernel != null) return kernel;
        KernelIndex.Launch spec = index.launch(name);
        String moduleKey = spec.module() + "_" + suffix(t) + "@F" + f + "K" + k;
        Long module = modules.get(moduleKey);
        String build = "F=" + f + " K=" + k + " compiled by ";
        if (module == null && !modules.containsKey(moduleKey + "?")) module = compileShaped(spec.module(), t, f, k, moduleKey);
        if (module == null) {
            kernel = kernel(name, t);
        } else {
            RuntimeCompiler c = compiler.orElseThrow();
            kernel = new Kernel(name, t, rt.function(module, full), spec, build + c.name() + " " + c.version());
        }
        kernels.put(key, kernel);
        return kernel;
    }

    /** The module compiled for the shape, or null (remembered) where it cannot be. */
    private Long compileShaped(String module, DType t, int f, int k, String moduleKey) {
        compiler();
        java.util.Optional<KernelSources.Program> program = KernelSources.of(module);
        if (compiler.isPresent() && program.isEmpty()) {
            notices.println("tttbench: this build carries no kernel sources (kernels/src/" + module + ".hip): " + module
                    + " for F=" + f + " K=" + k + " runs the jar's kernels");
        }
        if (compiler.isEmpty() || program.isEmpty()) {
            modules.put(moduleKey + "?", 0L);
            return null;
        }
        RuntimeCompiler c = compiler.get();
        KernelSources.Program p = program.get();
        java.util.List<String> options = shapeOptions(t, f, k);
        try {
            byte[] code = cache.getOrCompile(KernelCache.Key.of(c, p.source(), p.headers(), options),
                    () -> c.compile(p.name(), p.source(), p.headers(), options));
            long m = rt.loadModule(code);
            modules.put(moduleKey, m);
            return m;
        } catch (GpuException e) {
            notices.println("tttbench: " + module + " for F=" + f + " K=" + k + " " + t.flag() + " did not compile at run"
                    + " time (" + e.summary() + "): the jar's kernels run it");
            modules.put(moduleKey + "?", 0L);
            return null;
        }
    }

    /**
     * The options of a module compiled for one shape and stored type: the shape as constants, and
     * only the entry points with compile-time shapes (hip/tttbench_hip.h: TTT_SHAPE_MODULE), the
     * only ones {@link #kernel(String, DType, int, int)} takes from it.
     */
    static java.util.List<String> shapeOptions(DType t, int f, int k) {
        return java.util.List.of("-DTTT_SHAPE_F=" + f, "-DTTT_SHAPE_K=" + k, "-DTTT_SHAPE_MODULE",
                "-DTTT_ONLY_" + suffix(t).toUpperCase(java.util.Locale.ROOT));
    }

    /** Starts a launch of {@code name} for storage type {@code t}: add its arguments, then launch. */
    KernelLaunch start(String name, DType t) {
        return launch.start(kernel(name, t));
    }

    /** Starts a launch of {@code name} built for head dim {@code f} and mini-batch {@code k} (see {@link #kernel(String, DType, int, int)}). */
    KernelLaunch start(String name, DType t, int f, int k) {
        return launch.start(kernel(name, t, f, k));
    }

    /** The suffix of an entry point's name for its storage type (hip/tttbench_hip.h: TTT_FOR_EACH_TYPE). */
    static String suffix(DType t) {
        return switch (t) {
            case FLOAT32 -> "f32";
            case BFLOAT16 -> "bf16";
            case FLOAT16 -> "f16";
        };
    }

    /**
     * Launches {@code k} with this argument array: grid and shared memory from its descriptor at
     * {@code vars} (MAXB bound here), the kernel's shared-memory limit raised the first time it
     * needs more than the default.
     *
     * @throws IllegalArgumentException when the kernel cannot run here at these variables
     */
    void launch(Kernel k, LaunchVars vars, java.lang.foreign.MemorySegment args) {
        KernelIndex.Launch s = k.spec();
        LaunchVars v = vars.and("MAXB", maxBlocks());
        long shared = s.sharedBytes().eval(v);
        if (s.cluster() > 1 && !clusters) {
            throw new IllegalArgumentException("kernel " + k.name() + " runs on thread block clusters, which "
                    + rt.deviceName() + " (" + rt.architecture() + ") does not have");
        }
        if (shared > maxSharedBytes()) {
            throw new IllegalArgumentException("kernel " + k.name() + " needs " + shared + " bytes of shared memory a block"
                    + " at " + vars + "; " + rt.deviceName() + " allows " + maxSharedBytes());
        }
        long gx = s.gridX().eval(v);
        long gy = s.gridY().eval(v);
        if (gx == 0 || gy == 0) return;  // nothing to do (N = 0, say)
        if (gx < 0 || gy < 0 || gx > Integer.MAX_VALUE || gy > 65535) {
            throw new IllegalArgumentException("kernel " + k.name() + ": grid " + gx + " × " + gy + " at " + vars);
        }
        raiseSharedLimit(k, (int) shared);
        rt.launch(k.function(), (int) gx, (int) gy, 1, s.threads(), 1, 1, (int) shared, args);
    }

    private final Map<Long, Integer> sharedLimits = new HashMap<>();

    private void raiseSharedLimit(Kernel k, int bytes) {
        Integer set = sharedLimits.get(k.function());
        if (set != null && set >= bytes) return;
        if (set == null && bytes <= 48 * 1024) return;  // every device allows this much without asking
        rt.setMaxDynamicSharedMemory(k.function(), bytes);
        sharedLimits.put(k.function(), bytes);
    }
}
