package org.tttbench.backend;

import org.tttbench.config.BackendKind;
import org.tttbench.config.DType;

/** Opens the backend a configuration names; {@code auto} takes a usable GPU, else the CPU. */
public final class Backends {

    private Backends() {
    }

    /**
     * @param tf32 let float32 matrix products use TF32 matrix units (GPU only; the CPU backend
     *             is always strict float32)
     */
    public static Backend open(BackendKind kind, DType dtype, boolean tf32) {
        return switch (kind) {
            case CPU -> new org.tttbench.backend.cpu.CpuBackend(dtype);
            case HIP, CUDA -> throw new UnsupportedOperationException(
                    "backend " + kind.flag() + " is not available in this build");
            case AUTO -> {
                System.err.println("tttbench: no usable GPU backend, using the CPU backend");
                yield new org.tttbench.backend.cpu.CpuBackend(dtype);
            }
        };
    }
}
