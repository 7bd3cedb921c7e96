package org.tttbench.gpu;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.tttbench.gpu.Checks.elements;
import static org.tttbench.gpu.Checks.gpu;
import static org.tttbench.gpu.Checks.requireSize;
import static org.tttbench.gpu.Checks.sameType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;

/**
 * The launcher of hip/embedding.hip: the lookup, and its backward, which sums each id's rows in
 * token order from the ids grouped on the host in setup ({@link TokenSegments}), without atomics.
 */
final class Embedding {

    /** Token ids in device memory (int32), with their grouping by id for the backward. */
    record DeviceIds(long ptr, int batch, int seqLen, long order, long ids, long start, int segments)
            implements TokenIds {
        int tokens() {
            return batch * seqLen;
        }
    }

    private final KernelRegistry kernels;
    private final DeviceArena memory;

    Embedding(KernelRegistry kernels, DeviceArena memory) {
        this.kernels = kernels;
        this.memory = memory;
    }

    DeviceIds upload(int[] ids, int batch, int seqLen) {
        if (ids.length != (long) batch * seqLen) {
            throw new IllegalArgumentException(ids.length + " token ids for batch " + batch + " × seqLen " + seqLen);
        }
        TokenSegments s = TokenSegments.of(ids);
        return new DeviceIds(uploadInts(ids), batch, seqLen, uploadInts(s.order()), uploadInts(s.ids()),
                uploadInts(s.start()), s.segments());
    }

    private long uploadInts(int[] values) {
        long bytes = 4L * Math.max(1, values.length);
        long ptr = memory.carve(bytes);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(bytes, 16);
            MemorySegment.copy(values, 0, s, JAVA_INT, 0, values.length);
            kernels.runtime().copyToDevice(s, ptr, bytes);
        }
        return ptr;
    }

    static DeviceIds ids(TokenIds ids) {
        if (ids instanceof DeviceIds d) return d;
        throw new IllegalArgumentException("token ids do not belong to the GPU backend");
    }

    void forward(TokenIds tokenIds, Tensor table, Tensor out) {
        DeviceIds ids = ids(tokenIds);
        GpuTensor t = gpu(table);
        GpuTensor o = gpu(out);
        if (t.shape().length != 2) throw new IllegalArgumentException("embedding table must be [V, D], got " + t);
        int vocab = t.shape()[0];
        int dim = t.shape()[1];
        requireSize("embedding", "out", o, (long) ids.tokens() * dim);
        sameType("embedding", o.dtype(), t);
        int n = elements("embedding", o);
        kernels.start("embedding_forward", o.dtype()).p(ids.ptr()).p(t).p(o).i(ids.tokens()).i(dim).i(vocab)
                .launch(LaunchVars.of("N", n));
    }

    void backward(TokenIds tokenIds, Tensor dOut, Tensor dTable) {
        String op = "embeddingBackward";
        DeviceIds ids = ids(tokenIds);
        GpuTensor d = gpu(dTable);
        if (d.shape().length != 2) throw new IllegalArgumentException(op + ": table must be [V, D], got " + d);
        int dim = d.shape()[1];
        requireSize(op, "dOut", dOut, (long) ids.tokens() * dim);
        sameType(op, d.dtype(), dOut);
        kernels.start("embedding_backward", d.dtype()).p(ids.order()).p(ids.ids()).p(ids.start()).i(ids.segments())
                .p(dOut).p(d).i(dim).launch(LaunchVars.of("N", (long) ids.segments() * dim));
    }
}
