package org.tttbench.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.tttbench.backend.Tensor;

/**
 * Puts one kernel launch together at a time:
 * {@code registry.start(name, dtype).p(x).i(n).f(s).launch(vars)}. The kernelParams array for a
 * given kernel and argument values is built once and reused, since every layer of a forward or
 * backward repeats the same launches.
 */
final class KernelLaunch {

    private static final byte POINTER = 0;
    private static final byte INT = 1;
    private static final byte FLOAT = 2;

    /** A kernel's arguments, by value; equal arguments reuse one argument array. */
    private record ArgsKey(long function, long[] values, byte[] kinds) {
        @Override
        public boolean equals(Object o) {
            return o instanceof ArgsKey k && k.function == function && Arrays.equals(k.values, values)
                    && Arrays.equals(k.kinds, kinds);
        }

        @Override
        public int hashCode() {
            return Long.hashCode(function) * 31 * 31 + Arrays.hashCode(values) * 31 + Arrays.hashCode(kinds);
        }
    }

    private final KernelRegistry registry;
    private final Arena host;
    private final Map<ArgsKey, MemorySegment> argCache = new HashMap<>();
    private final long[] values = new long[40];
    private final byte[] kinds = new byte[40];
    private KernelRegistry.Kernel kernel;
    private int count;

    KernelLaunch(KernelRegistry registry, Arena host) {
        this.registry = registry;
        this.host = host;
    }

    KernelLaunch start(KernelRegistry.Kernel k) {
        kernel = k;
        count = 0;
        return this;
    }

    private KernelLaunch add(byte kind, long value) {
        kinds[count] = kind;
        values[count++] = value;
        return this;
    }

    KernelLaunch p(long devicePtr) {
        return add(POINTER, devicePtr);
    }

    /** A tensor's device pointer, or a null pointer for a missing optional tensor. */
    KernelLaunch p(Tensor t) {
        if (t == null) return add(POINTER, 0);
        if (t instanceof GpuTensor g) return add(POINTER, g.ptr());
        throw new IllegalArgumentException("tensor " + t + " does not belong to the GPU backend");
    }

    KernelLaunch i(int v) {
        return add(INT, v);
    }

    KernelLaunch f(float v) {
        return add(FLOAT, Float.floatToRawIntBits(v));
    }

    /** Launches with grid and shared memory from the kernel's descriptor at {@code vars}. */
    void launch(LaunchVars vars) {
        ArgsKey key = new ArgsKey(kernel.function(), Arrays.copyOf(values, count), Arrays.copyOf(kinds, count));
        MemorySegment args = argCache.get(key);
        if (args == null) {
            KernelArgs a = new KernelArgs(host, count);
            for (int j = 0; j < count; j++) {
                switch (kinds[j]) {
                    case POINTER -> a.pointer(values[j]);
                    case INT -> a.i32((int) values[j]);
                    default -> a.f32(Float.intBitsToFloat((int) values[j]));
                }
            }
            args = a.segment();
            argCache.put(key, args);
        }
        registry.launch(kernel, vars, args);
    }

    /** Forgets the argument arrays (after the buffers they point at were freed). */
    void forget() {
        argCache.clear();
    }
}
