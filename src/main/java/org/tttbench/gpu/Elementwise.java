package org.tttbench.gpu;

import static org.tttbench.gpu.Checks.elements;
import static org.tttbench.gpu.Checks.gpu;
import static org.tttbench.gpu.Checks.requireSize;
import static org.tttbench.gpu.Checks.sameSize;
import static org.tttbench.gpu.Checks.sameType;

import java.util.ArrayList;
import java.util.List;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;

/**
 * The launcher of hip/elementwise.hip: fills, adds, SwiGLU forward and backward, and the
 * fixed-order sum of float32 partials that every parameter gradient summed over many rows ends
 * with (no float atomics anywhere, so gradients are the same bits on every run).
 */
final class Elementwise {

    private final KernelRegistry kernels;
    private final GpuRuntime rt;

    Elementwise(KernelRegistry kernels) {
        this.kernels = kernels;
        this.rt = kernels.runtime();
    }

    private static LaunchVars n(long n) {
        return LaunchVars.of("N", n);
    }

    void fill(Tensor t, float value) {
        GpuTensor g = gpu(t);
        fillRange(g.ptr(), g.bytes(), g.dtype(), value);
    }

    /**
     * Tensors that lie back to back (as {@link GpuBackend#allocateAdjacent} places them; the
     * alignment gap after each belongs to it) are set as one range: a gradient set of a whole
     * model in one launch instead of one per parameter.
     */
    void fillAll(List<Tensor> ts, float value) {
        List<GpuTensor> sorted = new ArrayList<>();
        for (Tensor t : ts) sorted.add(gpu(t));
        sorted.sort((x, y) -> Long.compareUnsigned(x.ptr(), y.ptr()));
        int i = 0;
        while (i < sorted.size()) {
            GpuTensor first = sorted.get(i);
            long end = first.ptr() + first.bytes();
            int j = i + 1;
            // A run: same storage type (a non-zero value is written per type), each starting where the previous one's
            // aligned extent ends (or at the same place: a tensor named twice).
            while (j < sorted.size()) {
                GpuTensor next = sorted.get(j);
                GpuTensor prev = sorted.get(j - 1);
                boolean adjacent = next.ptr() == prev.ptr() + DeviceArena.align(prev.bytes()) || next.ptr() == prev.ptr();
                if (!adjacent || (value != 0f && next.dtype() != first.dtype())) break;
                end = Math.max(end, next.ptr() + next.bytes());
                j++;
            }
            fillRange(first.ptr(), end - first.ptr(), first.dtype(), value);
            i = j;
        }
    }

    /** Sets {@code bytes} bytes from {@code ptr} to {@code value} stored as {@code type}. */
    private void fillRange(long ptr, long bytes, DType type, float value) {
        if (bytes <= 0) return;
        // +0.0 is all zero bits in every storage type.
        if (Float.floatToRawIntBits(value) == 0) {
            rt.memset(ptr, 0, bytes);
            return;
        }
        long n = bytes / type.bytes();
        long piece = Integer.MAX_VALUE / 2;
        for (long off = 0; off < n; off += piece) {
            int count = (int) Math.min(piece, n - off);
            kernels.start("elementwise_fill", type).p(ptr + off * type.bytes()).f(value).i(count).launch(n(count));
        }
    }

    void add(Tensor a, Tensor b, Tensor out) {
        GpuTensor o = gpu(out);
        sameSize("add", a, o);
        sameSize("add", b, o);
        sameType("add", o.dtype(), a, b);
        int n = elements("add", o);
        kernels.start("elementwise_add", o.dtype()).p(a).p(b).p(o).i(n).launch(n(n));
    }

    void swiglu(Tensor gate, Tensor up, Tensor out) {
        GpuTensor o = gpu(out);
        sameSize("swiglu", gate, o);
        sameSize("swiglu", up, o);
        sameType("swiglu", o.dtype(), gate, up);
        int n = elements("swiglu", o);
        kernels.start("elementwise_swiglu", o.dtype()).p(gate).p(up).p(o).i(n).launch(n(n));
    }

    void swigluBackward(Tensor gate, Tensor up, Tensor dOut, Tensor dGate, Tensor dUp) {
        String op = "swigluBackward";
        GpuTensor g = gpu(gate);
        for (Tensor t : new Tensor[] {up, dOut, dGate, dUp}) requireSize(op, "every tensor", t, g.elements());
        sameType(op, g.dtype(), up, dOut, dGate, dUp);
        int n = elements(op, g);
        kernels.start("elementwise_swiglu_backward", g.dtype()).p(gate).p(up).p(dOut).p(dGate).p(dUp).i(n)
                .launch(n(n));
    }

    /**
     * out[r, c] (+)= Σ_t part[t·termStride + r·rowStride + c] (float32 partials at device address
     * {@code part}), t ascending: the fixed-order reduction.
     */
    void sumPartials(long part, Tensor out, int terms, int termStride, int rows, int rowStride, int cols,
            boolean accumulate) {
        GpuTensor o = gpu(out);
        long n = (long) rows * cols;
        if (o.elements() < n) throw new IllegalArgumentException("sum of partials into " + o + ": " + n + " values");
        kernels.start("elementwise_sum_partials", o.dtype()).p(part).p(o).i(terms).i(termStride).i(rows).i(rowStride)
                .i(cols).i(accumulate ? 1 : 0).launch(n(n));
    }
}
