package org.tttbench.gpu;

import java.util.ArrayList;
import java.util.List;

/**
 * Device memory for one backend: buffers are carved from a few large allocations taken in
 * setup and all returned at close, so that nothing is allocated or freed while work is timed.
 * A chunk is taken when the current one cannot hold a request: at least {@link #CHUNK_BYTES},
 * or the request itself when larger.
 */
final class DeviceArena implements AutoCloseable {

    /** Large enough that a model takes a handful of chunks, small enough to waste little. */
    static final long CHUNK_BYTES = 64L << 20;
    /** Every buffer starts on this boundary (what the BLAS and vector loads want at most). */
    static final long ALIGN = 256;

    private final GpuRuntime runtime;
    private final List<Long> chunks = new ArrayList<>();
    private long base;
    private long size;
    private long used;
    private long reserved;
    private long carved;

    DeviceArena(GpuRuntime runtime) {
        this.runtime = runtime;
    }

    /** A buffer of at least {@code bytes} bytes, aligned to {@link #ALIGN}; its contents are undefined. */
    long carve(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("negative size " + bytes);
        long need = align(Math.max(bytes, 1));
        if (chunks.isEmpty() || used + need > size) {
            long chunk = Math.max(CHUNK_BYTES, need);
            base = runtime.malloc(chunk);
            chunks.add(base);
            size = chunk;
            used = 0;
            reserved += chunk;
        }
        long p = base + used;
        used += need;
        carved += need;
        return p;
    }

    /** Where the arena stands: {@link #release} returns to it. */
    record Mark(int chunks, long base, long size, long used, long reserved, long carved) {
    }

    Mark mark() {
        return new Mark(chunks.size(), base, size, used, reserved, carved);
    }

    /**
     * Frees every buffer carved since {@code mark}: the chunks taken after it go back to the
     * device, and the chunk that was current then is carved again from where it stood.
     */
    void release(Mark mark) {
        GpuException first = null;
        while (chunks.size() > mark.chunks()) {
            try {
                runtime.free(chunks.removeLast());
            } catch (GpuException e) {
                if (first == null) first = e;
            }
        }
        base = mark.base();
        size = mark.size();
        used = mark.used();
        reserved = mark.reserved();
        carved = mark.carved();
        if (first != null) throw first;
    }

    static long align(long bytes) {
        return (bytes + ALIGN - 1) / ALIGN * ALIGN;
    }

    /** Bytes taken from the device; nothing is freed before close, so this is also the peak. */
    long reservedBytes() {
        return reserved;
    }

    /** Bytes handed out as buffers. */
    long carvedBytes() {
        return carved;
    }

    @Override
    public void close() {
        GpuException first = null;
        for (long c : chunks) {
            try {
                runtime.free(c);
            } catch (GpuException e) {
                if (first == null) first = e;
            }
        }
        chunks.clear();
        if (first != null) throw first;
    }
}
