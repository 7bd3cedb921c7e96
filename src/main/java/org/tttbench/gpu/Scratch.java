package org.tttbench.gpu;

import java.util.HashMap;
import java.util.Map;

/**
 * Named scratch buffers of the launchers (partial sums, inner-scan workspaces, the backward's
 * records), carved from the backend's arena the first time a size is needed (setup or warmup:
 * the timed region repeats sizes already seen) and reused after. Their contents are undefined.
 */
final class Scratch {

    private record Buffer(long ptr, long bytes) {
    }

    private final DeviceArena memory;
    private final Map<String, Buffer> buffers = new HashMap<>();

    Scratch(DeviceArena memory) {
        this.memory = memory;
    }

    /** Buffer {@code name} of at least {@code bytes} bytes (0: no buffer, a null pointer). */
    long get(String name, long bytes) {
        if (bytes == 0) return 0;
        Buffer b = buffers.get(name);
        if (b == null || b.bytes() < bytes) {
            b = new Buffer(memory.carve(bytes), bytes);
            buffers.put(name, b);
        }
        return b.ptr();
    }

    /** Forgets every buffer (after the arena released the memory they lay in). */
    void forget() {
        buffers.clear();
    }
}
