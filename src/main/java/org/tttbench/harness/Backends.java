package org.tttbench.harness;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import org.tttbench.backend.Backend;
import org.tttbench.cpu.CpuBackend;
import org.tttbench.config.BackendKind;
import org.tttbench.config.DType;
import org.tttbench.gpu.GpuBackend;
import org.tttbench.gpu.GpuException;
import org.tttbench.gpu.GpuRuntime;
import org.tttbench.gpu.GpuRuntimes;

/**
 * Opens the backend a configuration names. {@code auto} takes the first usable GPU runtime
 * (CUDA, then HIP) and otherwise the CPU, saying so in one line on stderr; {@code cuda} and
 * {@code hip} fail with the reason when their runtime is not usable.
 */
public final class Backends {

    private Backends() {
    }

    /**
     * @param tf32 let float32 matrix products use TF32 matrix units (GPU only; the CPU backend
     *             is always strict float32)
     * @throws IllegalStateException when {@code cuda} or {@code hip} is named and not usable
     */
    public static Backend open(BackendKind kind, DType dtype, boolean tf32) {
        return open(kind, dtype, tf32, System.err);
    }

    static Backend open(BackendKind kind, DType dtype, boolean tf32, PrintStream notices) {
        return switch (kind) {
            case CPU -> new CpuBackend(dtype);
            case CUDA, HIP -> {
                GpuRuntime runtime;
                try {
                    runtime = GpuRuntimes.open(kind);
                } catch (GpuException e) {
                    throw new IllegalStateException("no usable " + label(kind) + " device: " + e.getMessage(), e);
                }
                yield gpuBackend(runtime, dtype, tf32);
            }
            case AUTO -> {
                List<String> reasons = new ArrayList<>();
                for (BackendKind gpu : GpuRuntimes.AUTO_ORDER) {
                    GpuRuntime runtime;
                    try {
                        runtime = GpuRuntimes.open(gpu);
                    } catch (GpuException e) {
                        reasons.add(gpu.flag() + ": " + e.summary());
                        continue;
                    }
                    yield gpuBackend(runtime, dtype, tf32);
                }
                notices.println("tttbench: no usable GPU (" + String.join("; ", reasons) + "), using the CPU backend");
                yield new CpuBackend(dtype);
            }
        };
    }

    /**
     * The backend {@code kind} names, {@code auto} resolved, without opening a device (a GPU
     * runtime counts as usable when its libraries load and it reports a device).
     *
     * @throws IllegalStateException when {@code cuda} or {@code hip} is named and not usable
     */
    public static BackendKind resolve(BackendKind kind, PrintStream notices) {
        if (kind == BackendKind.CPU) return kind;
        List<String> reasons = new ArrayList<>();
        for (GpuRuntimes.Probe p : GpuRuntimes.probe()) {
            if (kind != BackendKind.AUTO && p.kind() != kind) continue;
            if (p.usable()) return p.kind();
            reasons.add(p.kind().flag() + ": " + p.detail());
        }
        if (kind != BackendKind.AUTO) {
            throw new IllegalStateException("no usable " + label(kind) + " device: " + String.join("; ", reasons));
        }
        notices.println("tttbench: no usable GPU (" + String.join("; ", reasons) + "), using the CPU backend");
        return BackendKind.CPU;
    }

    /**
     * The memory a run on backend {@code kind} (resolved: cpu, cuda or hip) can use, read without
     * opening a device: the GPU's, or the machine's for the CPU.
     */
    public static long availableMemory(BackendKind kind) {
        if (kind == BackendKind.CPU) {
            return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                    .getOperatingSystemMXBean()).getTotalMemorySize();
        }
        return GpuRuntimes.probe().stream().filter(p -> p.kind() == kind).mapToLong(GpuRuntimes.Probe::memory)
                .findFirst().orElse(0);
    }

    private static String label(BackendKind kind) {
        return kind == BackendKind.CUDA ? "CUDA" : "HIP";
    }

    /** The GPU backend over an open runtime; the runtime is closed if the backend cannot be built. */
    private static Backend gpuBackend(GpuRuntime runtime, DType dtype, boolean tf32) {
        try {
            return new GpuBackend(runtime, dtype, tf32);
        } catch (RuntimeException | Error e) {
            try {
                runtime.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }
}
