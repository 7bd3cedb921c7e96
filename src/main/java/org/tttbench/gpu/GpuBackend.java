package org.tttbench.gpu;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;
import static org.tttbench.gpu.Checks.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.KernelChoice;
import org.tttbench.backend.ScanShape;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;

/**
 * The ops on a GPU: device memory (one arena filled in setup; an op allocates nothing on the
 * device and copies nothing to the host), graphs, and each op handed to the launcher of its
 * family, as hip/ is organised: {@link Elementwise}, {@link Embedding}, {@link Norms},
 * {@link TttInputs}, {@link TttLinear}, {@link TttMlp}, and {@link Products} for the vendor
 * BLAS. No op uses float atomics, so gradients are the same bits on every run; nothing falls
 * back to the CPU.
 *
 * <p>The backend owns the runtime it is given and closes it. It is meant for one thread.
 */
public final class GpuBackend implements Backend {

    private final GpuRuntime rt;
    private final DType dtype;
    private final Arena host = Arena.ofShared();
    private final DeviceArena memory;
    private final Scratch scratch;
    private final KernelRegistry kernels;
    private final List<Long> graphs = new ArrayList<>();
    private final Elementwise elementwise;
    private final Embedding embedding;
    private final Norms norms;
    private final TttInputs inputs;
    private final TttLinear linear;
    private final TttMlp mlp;
    private final Products products;
    private boolean closed;

    public GpuBackend(GpuRuntime runtime, DType dtype, boolean tf32) {
        this.rt = runtime;
        this.dtype = dtype;
        this.memory = new DeviceArena(runtime);
        this.scratch = new Scratch(memory);
        try {
            this.kernels = new KernelRegistry(runtime, host);
            this.elementwise = new Elementwise(kernels);
            this.embedding = new Embedding(kernels, memory);
            this.norms = new Norms(kernels, scratch, elementwise);
            this.inputs = new TttInputs(kernels, scratch, elementwise);
            this.linear = new TttLinear(kernels, scratch, elementwise);
            this.mlp = new TttMlp(kernels, scratch, elementwise);
            // The BLAS handle allocates when created, so it must exist before any capture.
            this.products = new Products(runtime.blas(), tf32);
        } catch (RuntimeException e) {
            host.close();
            runtime.close();
            throw e;
        }
    }

    // ---------------------------------------------------------------- Backend

    @Override
    public String name() {
        return rt.name();
    }

    @Override
    public String device() {
        return rt.deviceName() + " (" + rt.architecture() + ")";
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    /** The runtime, for timing tools (events, raw copies). */
    public GpuRuntime runtime() {
        return rt;
    }

    @Override
    public Tensor allocate(DType storage, int... shape) {
        long n = elements(shape);
        long bytes = n * storage.bytes();
        long ptr = memory.carve(bytes);
        rt.memset(ptr, 0, bytes);
        return new GpuTensor(ptr, shape.clone(), storage, n);
    }

    private static long elements(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d <= 0) throw new IllegalArgumentException("tensor dimensions must be positive: " + Arrays.toString(shape));
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** One carve holding every tensor, each at the arena's alignment, so equal shapes lie at a fixed stride. */
    @Override
    public List<Tensor> allocateAdjacent(DType storage, List<int[]> shapes) {
        long[] counts = new long[shapes.size()];
        long total = 0;
        for (int i = 0; i < counts.length; i++) {
            counts[i] = elements(shapes.get(i));
            total = Math.addExact(total, DeviceArena.align(counts[i] * storage.bytes()));
        }
        List<Tensor> out = new ArrayList<>(counts.length);
        if (counts.length == 0) return out;
        long base = memory.carve(total);
        rt.memset(base, 0, total);
        long at = base;
        for (int i = 0; i < counts.length; i++) {
            out.add(new GpuTensor(at, shapes.get(i).clone(), storage, counts[i]));
            at += DeviceArena.align(counts[i] * storage.bytes());
        }
        return out;
    }

    @Override
    public void upload(float[] data, Tensor t) {
        GpuTensor g = gpu(t);
        if (data.length != g.elements()) {
            throw new IllegalArgumentException("upload of " + data.length + " values into " + g);
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(g.bytes(), 16);
            switch (g.dtype()) {
                case FLOAT32 -> MemorySegment.copy(data, 0, s, JAVA_FLOAT, 0, data.length);
                case BFLOAT16 -> {
                    for (int i = 0; i < data.length; i++) {
                        s.setAtIndex(JAVA_SHORT, i, (short) (Float.floatToRawIntBits(DType.BFLOAT16.round(data[i])) >>> 16));
                    }
                }
                case FLOAT16 -> {
                    for (int i = 0; i < data.length; i++) s.setAtIndex(JAVA_SHORT, i, Float.floatToFloat16(data[i]));
                }
            }
            rt.copyToDevice(s, g.ptr(), g.bytes());
        }
    }

    @Override
    public float[] download(Tensor t) {
        GpuTensor g = gpu(t);
        float[] out = new float[Math.toIntExact(g.elements())];
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(g.bytes(), 16);
            rt.copyToHost(g.ptr(), s, g.bytes());
            switch (g.dtype()) {
                case FLOAT32 -> MemorySegment.copy(s, JAVA_FLOAT, 0, out, 0, out.length);
                case BFLOAT16 -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = Float.intBitsToFloat((s.getAtIndex(JAVA_SHORT, i) & 0xFFFF) << 16);
                    }
                }
                case FLOAT16 -> {
                    for (int i = 0; i < out.length; i++) out[i] = Float.float16ToFloat(s.getAtIndex(JAVA_SHORT, i));
                }
            }
        }
        return out;
    }

    @Override
    public TokenIds uploadIds(int[] ids, int batch, int seqLen) {
        return embedding.upload(ids, batch, seqLen);
    }

    @Override
    public void synchronize() {
        rt.synchronize();
    }

    /**
     * Bytes of every buffer this backend has handed out (nothing is freed before close, but what
     * {@link #runReleasing} frees), as frameworks report allocated memory; the arena takes them
     * from the device in chunks of {@link DeviceArena#CHUNK_BYTES}, which would hide differences
     * smaller than a chunk (the checkpoints of one layer at two intervals, say).
     */
    @Override
    public long peakMemoryBytes() {
        return memory.carvedBytes();
    }

    /**
     * The scratch buffers the work grows point into the memory it frees, so they are forgotten
     * with it, as are argument arrays that name its buffers.
     */
    @Override
    public void runReleasing(Runnable work) {
        if (!graphs.isEmpty()) throw new IllegalStateException("runReleasing after a graph was recorded");
        DeviceArena.Mark mark = memory.mark();
        scratch.forget();
        try {
            work.run();
        } finally {
            rt.synchronize();
            scratch.forget();
            memory.release(mark);
        }
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            for (long g : graphs) rt.destroyGraph(g);
            graphs.clear();
            memory.close();
        } finally {
            host.close();
            rt.close();
        }
    }

    // ---------------------------------------------------------------- graphs

    /**
     * Records {@code work} (stream work only: ops of this backend) into a device graph and
     * returns what replays it with one launch. The work runs once eagerly first, so that
     * everything it prepares on first use (scratch buffers, kernel argument arrays, modules)
     * exists before the recording, which may not allocate. The replay reads and writes the same
     * buffers the recorded ops named.
     */
    public Runnable graph(Runnable work) {
        work.run();
        rt.synchronize();
        rt.beginCapture();
        long g;
        try {
            work.run();
        } finally {
            g = rt.endCapture();
        }
        graphs.add(g);
        final long graph = g;
        return () -> rt.launchGraph(graph);
    }

    // ---------------------------------------------------------------- inner-scan kernels

    private TttScan scan(TttType type) {
        return type == TttType.MLP ? mlp : linear;
    }

    @Override
    public KernelChoice kernels(ScanShape shape) {
        return scan(shape.type()).chosen(shape);
    }

    @Override
    public String describeKernels(ScanShape shape, boolean backward) {
        return scan(shape.type()).describe(shape, backward);
    }

    @Override
    public List<KernelChoice> kernelOptions(ScanShape shape) {
        return scan(shape.type()).options(shape);
    }

    /** Each name goes to the family it starts with (ttt_linear_…, ttt_mlp_…). */
    @Override
    public void force(KernelChoice choice) {
        for (String k : new String[] {choice.forward(), choice.backward()}) {
            if (k != null && !k.startsWith("ttt_linear_") && !k.startsWith("ttt_mlp_")) {
                throw new IllegalArgumentException("no inner-scan kernel " + k);
            }
        }
        linear.force(choice);
        mlp.force(choice);
    }

    // ---------------------------------------------------------------- the ops, by family

    @Override
    public void fill(Tensor t, float value) {
        elementwise.fill(t, value);
    }

    @Override
    public void fillAll(List<Tensor> ts, float value) {
        elementwise.fillAll(ts, value);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        elementwise.add(a, b, out);
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        elementwise.swiglu(gate, up, out);
    }

    @Override
    public void swigluBackward(Tensor gate, Tensor up, Tensor dOut, Tensor dGate, Tensor dUp) {
        elementwise.swigluBackward(gate, up, dOut, dGate, dUp);
    }

    @Override
    public void matmul(Tensor a, Tensor b, Tensor c, int m, int n, int k, boolean transA, boolean transB,
            boolean accumulate) {
        products.matmul(a, b, c, m, n, k, transA, transB, accumulate);
    }

    @Override
    public void matmulBatched(List<Tensor> a, List<Tensor> b, List<Tensor> c, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate) {
        products.matmulBatched(a, b, c, m, n, k, transA, transB, accumulate);
    }

    @Override
    public void matmulSum(List<Tensor> a, List<Tensor> b, Tensor c, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate) {
        products.matmulSum(a, b, c, m, n, k, transA, transB, accumulate);
    }

    @Override
    public void embedding(TokenIds ids, Tensor table, Tensor out) {
        embedding.forward(ids, table, out);
    }

    @Override
    public void embeddingBackward(TokenIds ids, Tensor dOut, Tensor dTable) {
        embedding.backward(ids, dOut, dTable);
    }

    @Override
    public void rmsNorm(Tensor x, Tensor gain, Tensor out, Tensor rstd) {
        norms.rmsNorm(x, gain, out, rstd);
    }

    @Override
    public void addRmsNorm(Tensor a, Tensor b, Tensor sum, Tensor gain, Tensor out, Tensor rstd) {
        norms.addRmsNorm(a, b, sum, gain, out, rstd);
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor gain, Tensor rstd, Tensor dOut, Tensor dx, Tensor dGain) {
        norms.rmsNormBackward(x, gain, rstd, dOut, dx, dGain);
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd) {
        norms.layerNorm(x, weight, bias, out, mean, rstd);
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dOut, Tensor dx,
            Tensor dWeight, Tensor dBias) {
        norms.layerNormBackward(x, weight, mean, rstd, dOut, dx, dWeight, dBias);
    }

    @Override
    public void splitHeads(Tensor x, Tensor heads, int numHeads, int miniBatch, boolean rope) {
        inputs.splitHeads(x, heads, numHeads, miniBatch, rope);
    }

    @Override
    public void splitHeadsBackward(Tensor dHeads, Tensor dx, int numHeads, int miniBatch, boolean rope) {
        inputs.splitHeadsBackward(dHeads, dx, numHeads, miniBatch, rope);
    }

    @Override
    public void tttLearningRate(Tensor x, Tensor weight, Tensor bias, Tensor lr) {
        inputs.learningRate(x, weight, bias, lr);
    }

    @Override
    public void tttLearningRateBackward(Tensor x, Tensor weight, Tensor lr, Tensor dLr, Tensor dx, Tensor dWeight,
            Tensor dBias) {
        inputs.learningRateBackward(x, weight, lr, dLr, dx, dWeight, dBias);
    }

    @Override
    public void tokenEta(Tensor tokenIdx, Tensor tok) {
        inputs.tokenEta(tokenIdx, tok);
    }

    @Override
    public void tokenEtaBackward(Tensor tokenIdx, Tensor dTok, Tensor dTokenIdx) {
        inputs.tokenEtaBackward(tokenIdx, dTok, dTokenIdx);
    }

    @Override
    public void innerForward(InnerInputs in, Tensor out, Tensor checkpoints, int interval, Tensor lastState) {
        scan(in.type()).forward(in, out, checkpoints, interval, lastState);
    }

    @Override
    public void innerBackward(InnerInputs in, Tensor checkpoints, int interval, Tensor dOut, InnerGrads grads) {
        scan(in.type()).backward(in, checkpoints, interval, dOut, grads);
    }
}
