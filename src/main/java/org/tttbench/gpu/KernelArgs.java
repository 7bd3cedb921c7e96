package org.tttbench.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Builds the {@code void* kernelParams[]} array a launch takes: each argument is stored in its
 * own slot and the array points at the slots. Built once in setup and reused by every launch.
 */
public final class KernelArgs {

    private final Arena arena;
    private final MemorySegment pointers;
    private final MemorySegment values;
    private int count;

    public KernelArgs(Arena arena, int capacity) {
        this.arena = arena;
        this.pointers = arena.allocate(ValueLayout.ADDRESS, capacity);
        this.values = arena.allocate(8L * capacity, 8);
    }

    private MemorySegment slot() {
        if (count * ValueLayout.ADDRESS.byteSize() >= pointers.byteSize()) {
            throw new IllegalStateException("more kernel arguments than the capacity given");
        }
        MemorySegment s = values.asSlice(8L * count, 8);
        pointers.setAtIndex(ValueLayout.ADDRESS, count, s);
        count++;
        return s;
    }

    public KernelArgs pointer(long devicePtr) {
        slot().set(ValueLayout.JAVA_LONG, 0, devicePtr);
        return this;
    }

    public KernelArgs i32(int v) {
        slot().set(ValueLayout.JAVA_INT, 0, v);
        return this;
    }

    public KernelArgs f32(float v) {
        slot().set(ValueLayout.JAVA_FLOAT, 0, v);
        return this;
    }

    /** The kernelParams array to pass to {@link GpuRuntime#launch}. */
    public MemorySegment segment() {
        return pointers;
    }

    public Arena arena() {
        return arena;
    }
}
