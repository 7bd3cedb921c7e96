package org.tttbench.gpu;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;

/**
 * The forward ops on a GPU: matrix products through the vendor BLAS (float32 accumulation;
 * TF32 only when asked for), everything else through the kernels of hip/, one launch per op and
 * one launch for a whole inner scan. Device memory comes from one arena filled in setup; an op
 * allocates nothing on the device and copies nothing to the host. The backward ops run through
 * {@link GpuBackwardOps}, without float atomics: gradients are the same bits on every run.
 * Nothing falls back to the CPU.
 *
 * <p>The backend owns the runtime it is given and closes it. It is meant for one thread.
 */
public final class GpuBackend implements Backend {

    /** The kernel objects scripts/build-kernels.sh builds from hip/. */
    private static final List<String> MODULES =
            List.of("elementwise", "embedding", "norms", "ttt_inputs", "ttt_linear", "ttt_mlp");
    private static final int THREADS = 256;
    /**
     * System property: {@code -Dtttbench.splitK=N} splits each float32 product with fewer 128×128
     * output tiles than the device has multiprocessors into up to N products along k, run as one
     * batched launch into a workspace and summed by one more launch (default 1: off). Whether
     * the extra pass pays for the fuller device only a measurement says.
     */
    public static final String SPLIT_K = "tttbench.splitK";
    /**
     * System property: {@code -Dtttbench.batchedSums=true} runs the products of {@link #matmulSum}
     * as one batched launch and a sum instead of one after another, accumulating (default false:
     * on an H100 the chained products were 0.2 ms faster in the 125m training step and 2.3 ms in
     * the 1b one, docs/perf.md).
     */
    public static final String BATCHED_SUMS = "tttbench.batchedSums";
    /** Threads of one inner-scan block (the kernels' launch bound): 8 warps, 4 on CDNA. */
    private static final int SCAN_THREADS = 256;

    private final GpuRuntime rt;
    private final DType dtype;
    private final boolean tf32;
    private final Blas blas;
    private final GpuBackwardOps backward;
    private final Arena host = Arena.ofShared();
    private final DeviceArena memory;
    private final Map<String, Long> modules = new HashMap<>();
    private final Map<String, Long> functions = new HashMap<>();
    private final Map<Long, Long> sharedLimits = new HashMap<>();
    private final List<Long> graphs = new ArrayList<>();
    private final KernelLaunch call;
    private final int maxBlocks;
    private InnerVariant forcedVariant;
    private long workspace;
    private long workspaceBytes;
    /** Whether {@link #matmulSum} may batch its products ({@link #BATCHED_SUMS}). */
    private boolean batchedSums = "true".equalsIgnoreCase(System.getProperty(BATCHED_SUMS, "false").trim());
    /** Most parts a float32 product under one wave of output tiles is split into along k (1: never). */
    private int splitK = Math.max(1, Integer.getInteger(SPLIT_K, 1));
    /** Split every product that can be, not only those under one wave (to check the path on small shapes). */
    private boolean splitAlways;
    private long splitWorkspace;
    private long splitWorkspaceBytes;
    private boolean closed;

    public GpuBackend(GpuRuntime runtime, DType dtype, boolean tf32) {
        this.rt = runtime;
        this.dtype = dtype;
        this.tf32 = tf32;
        this.memory = new DeviceArena(runtime);
        this.call = new KernelLaunch(runtime, host);
        // Enough blocks to fill the device several times over; grid-stride loops do the rest.
        this.maxBlocks = Math.max(1, runtime.multiprocessorCount()) * 32;
        try {
            for (String m : MODULES) modules.put(m, KernelImages.load(runtime, m));
            // The BLAS handle allocates when created, so it must exist before any capture.
            this.blas = runtime.blas();
            this.backward = new GpuBackwardOps(runtime, memory, host, maxBlocks);
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

    /** The runtime, for the timing harness (events, raw copies). */
    GpuRuntime runtime() {
        return rt;
    }

    /** Whether float32 matrix products may use TF32 matrix units. */
    public boolean tf32() {
        return tf32;
    }

    @Override
    public Tensor allocate(DType storage, int... shape) {
        long n = 1;
        for (int d : shape) {
            if (d <= 0) throw new IllegalArgumentException("tensor dimensions must be positive: " + Arrays.toString(shape));
            n = Math.multiplyExact(n, d);
        }
        long bytes = n * storage.bytes();
        long ptr = memory.carve(bytes);
        rt.memset(ptr, 0, bytes);
        return new GpuTensor(ptr, shape.clone(), storage, n);
    }

    /** One carve holding every tensor, each at the arena's alignment, so equal shapes lie at a fixed stride. */
    @Override
    public List<Tensor> allocateAdjacent(DType storage, List<int[]> shapes) {
        long[] elements = new long[shapes.size()];
        long total = 0;
        for (int i = 0; i < elements.length; i++) {
            long n = 1;
            for (int d : shapes.get(i)) {
                if (d <= 0) {
                    throw new IllegalArgumentException("tensor dimensions must be positive: " + Arrays.toString(shapes.get(i)));
                }
                n = Math.multiplyExact(n, d);
            }
            elements[i] = n;
            total = Math.addExact(total, DeviceArena.align(n * storage.bytes()));
        }
        List<Tensor> out = new ArrayList<>(elements.length);
        if (elements.length == 0) return out;
        long base = memory.carve(total);
        rt.memset(base, 0, total);
        long at = base;
        for (int i = 0; i < elements.length; i++) {
            out.add(new GpuTensor(at, shapes.get(i).clone(), storage, elements[i]));
            at += DeviceArena.align(elements[i] * storage.bytes());
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

    /** Token ids in device memory (int32), with their grouping by id for the embedding backward. */
    private record GpuTokenIds(long ptr, int batch, int seqLen, GpuBackwardOps.DeviceSegments segments)
            implements TokenIds {
    }

    @Override
    public TokenIds uploadIds(int[] ids, int batch, int seqLen) {
        if (ids.length != (long) batch * seqLen) {
            throw new IllegalArgumentException(ids.length + " token ids for batch " + batch + " × seqLen " + seqLen);
        }
        for (int id : ids) {
            if (id < 0) throw new IllegalArgumentException("negative token id " + id);
        }
        long bytes = 4L * ids.length;
        long ptr = memory.carve(bytes);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(bytes, 16);
            MemorySegment.copy(ids, 0, s, JAVA_INT, 0, ids.length);
            rt.copyToDevice(s, ptr, bytes);
        }
        return new GpuTokenIds(ptr, batch, seqLen, backward.uploadSegments(ids));
    }

    @Override
    public void synchronize() {
        rt.synchronize();
    }

    /**
     * Bytes of every buffer this backend has handed out (nothing is freed before close, so this is
     * the peak), as frameworks report allocated memory; the arena takes them from the device in
     * chunks of {@link DeviceArena#CHUNK_BYTES}, which would hide differences smaller than a chunk
     * (the checkpoints of one layer at two intervals, say).
     */
    @Override
    public long peakMemoryBytes() {
        return memory.carvedBytes();
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
     * everything it prepares on first use (inner-scan workspace, kernel argument arrays) exists
     * before the recording, which may not allocate. The replay reads and writes the same
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

    // ---------------------------------------------------------------- general

    @Override
    public void fill(Tensor t, float value) {
        GpuTensor g = gpu(t);
        int n = elements("fill", g);
        kernel("fill", g.dtype()).p(g).f(value).i(n).launch(blocks(n), THREADS, 0);
    }

    /**
     * Tensors that lie back to back (as {@link #allocateAdjacent} places them; the alignment gap
     * after each belongs to it) are set as one range: a gradient set of a whole model in one
     * launch instead of one per parameter.
     */
    @Override
    public void fillAll(List<Tensor> ts, float value) {
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
            call.start(function("fill", type)).p(ptr + off * type.bytes()).f(value).i(count)
                    .launch(blocks(count), THREADS, 0);
        }
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        GpuTensor o = gpu(out);
        sameShape("add", a, o);
        sameShape("add", b, o);
        sameType("add", o.dtype(), a, b);
        int n = elements("add", o);
        kernel("add", o.dtype()).p(a).p(b).p(o).i(n).launch(blocks(n), THREADS, 0);
    }

    @Override
    public void matmul(Tensor a, Tensor b, Tensor c, int m, int n, int k, boolean transA, boolean transB,
            boolean accumulate) {
        GpuTensor ga = gpu(a);
        GpuTensor gb = gpu(b);
        GpuTensor gc = gpu(c);
        requireSize("matmul", "a", ga, (long) m * k);
        requireSize("matmul", "b", gb, (long) k * n);
        requireSize("matmul", "c", gc, (long) m * n);
        sameType("matmul", gc.dtype(), ga, gb);
        ColumnMajorGemm g = ColumnMajorGemm.of(m, n, k, transA, transB);
        int parts = splitParts(m, n, k, gc.dtype());
        if (parts > 1) {
            // Part i reads columns [i·k/p, (i+1)·k/p) of op(A) and the same rows of op(B); the leading
            // dimensions stay those of the whole operands.
            int depth = k / parts;
            long strideA = transA ? (long) depth * m : depth;
            long strideB = transB ? depth : (long) depth * n;
            long mn = (long) m * n;
            long ws = splitWorkspace(mn * parts * 4);
            blas.gemmStridedBatched(g.transFirst(), g.transSecond(), g.rows(), g.cols(), depth, 1f, gb.ptr(),
                    g.ldFirst(), strideB, ga.ptr(), g.ldSecond(), strideA, 0f, ws, g.ldResult(), mn, parts,
                    DType.FLOAT32, tf32);
            call.start(function("sum_parts", DType.FLOAT32)).p(ws).i(parts).i((int) mn).p(gc).i((int) mn)
                    .i(accumulate ? 1 : 0).launch(blocks(mn), THREADS, 0);
            return;
        }
        blas.gemm(g.transFirst(), g.transSecond(), g.rows(), g.cols(), g.depth(), 1f, gb.ptr(), g.ldFirst(),
                ga.ptr(), g.ldSecond(), accumulate ? 1f : 0f, gc.ptr(), g.ldResult(), gc.dtype(), tf32);
    }

    /**
     * Sets the split of float32 products along k ({@link #SPLIT_K}); {@code always} splits every
     * product that can be, whatever its size, so that small checks take the path too.
     */
    public void forceSplitK(int parts, boolean always) {
        this.splitK = Math.max(1, parts);
        this.splitAlways = always;
    }

    /**
     * How many parts a product is split into along k: 1 unless split-K is on, the product is
     * float32 and under one wave of 128×128 output tiles; else the most parts up to the setting
     * that divide k into pieces of at least 64 (8 when forced).
     */
    private int splitParts(int m, int n, int k, DType type) {
        if (splitK <= 1 || type != DType.FLOAT32) return 1;
        long tiles = (long) ((m + 127) / 128) * ((n + 127) / 128);
        if (!splitAlways && tiles >= rt.multiprocessorCount()) return 1;
        int least = splitAlways ? 8 : 64;
        for (int p = splitK; p > 1; p--) {
            if (k % p == 0 && k / p >= least && (long) m * n * p <= Integer.MAX_VALUE) return p;
        }
        return 1;
    }

    /** Sets whether {@link #matmulSum} batches its products ({@link #BATCHED_SUMS}). */
    public void batchedSums(boolean on) {
        this.batchedSums = on;
    }

    /** The partial products of a split product (or of a sum of products), grown on first use of a larger one (setup or warmup). */
    private long splitWorkspace(long bytes) {
        if (bytes > splitWorkspaceBytes) {
            splitWorkspace = memory.carve(bytes);
            splitWorkspaceBytes = bytes;
        }
        return splitWorkspace;
    }

    /**
     * One strided-batched BLAS call when each operand list is one shared tensor (stride 0) or
     * tensors at a fixed positive stride, and the results do not overlap; otherwise one
     * {@link #matmul} per product. Small products (the 125m projections, under one wave of
     * output tiles each) then fill the device together.
     */
    @Override
    public void matmulBatched(List<Tensor> a, List<Tensor> b, List<Tensor> c, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate) {
        int count = org.tttbench.backend.TttOps.batchCount(a, b, c);
        DType type = gpu(c.get(0)).dtype();
        for (int i = 0; i < count; i++) {
            requireSize("matmulBatched", "a", gpu(a.get(a.size() == 1 ? 0 : i)), (long) m * k);
            requireSize("matmulBatched", "b", gpu(b.get(b.size() == 1 ? 0 : i)), (long) k * n);
            requireSize("matmulBatched", "c", gpu(c.get(i)), (long) m * n);
        }
        sameType("matmulBatched", type, a.toArray(Tensor[]::new));
        sameType("matmulBatched", type, b.toArray(Tensor[]::new));
        sameType("matmulBatched", type, c.toArray(Tensor[]::new));
        long strideA = stride(a, type);
        long strideB = stride(b, type);
        long strideC = stride(c, type);
        if (count == 1 || strideA < 0 || strideB < 0 || strideC < (long) m * n) {
            for (int i = 0; i < count; i++) {
                matmul(a.get(a.size() == 1 ? 0 : i), b.get(b.size() == 1 ? 0 : i), c.get(i), m, n, k, transA, transB,
                        accumulate);
            }
            return;
        }
        ColumnMajorGemm g = ColumnMajorGemm.of(m, n, k, transA, transB);
        blas.gemmStridedBatched(g.transFirst(), g.transSecond(), g.rows(), g.cols(), g.depth(), 1f,
                gpu(b.get(0)).ptr(), g.ldFirst(), strideB, gpu(a.get(0)).ptr(), g.ldSecond(), strideA,
                accumulate ? 1f : 0f, gpu(c.get(0)).ptr(), g.ldResult(), strideC, count, type, tf32);
    }

    /**
     * Float32 products whose operands lie at fixed strides run as one strided-batched launch into
     * a workspace, then one launch sums them (plus c when accumulating) into c: at 125m the three
     * 2048×768×768 products of Q, K and V's input gradient each fill under a wave, and chained
     * they run one after another. Otherwise, and for 16-bit storage (whose parts would be rounded
     * apart, as the chain rounds each partial sum), one {@link #matmul} after another.
     */
    @Override
    public void matmulSum(List<Tensor> a, List<Tensor> b, Tensor c, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate) {
        int count = Math.max(a.size(), b.size());
        org.tttbench.backend.TttOps.batchCount(a, b, java.util.Collections.nCopies(count, c));
        GpuTensor gc = gpu(c);
        DType type = gc.dtype();
        for (int i = 0; i < count; i++) {
            requireSize("matmulSum", "a", gpu(a.get(a.size() == 1 ? 0 : i)), (long) m * k);
            requireSize("matmulSum", "b", gpu(b.get(b.size() == 1 ? 0 : i)), (long) k * n);
        }
        requireSize("matmulSum", "c", gc, (long) m * n);
        sameType("matmulSum", type, a.toArray(Tensor[]::new));
        sameType("matmulSum", type, b.toArray(Tensor[]::new));
        long strideA = stride(a, type);
        long strideB = stride(b, type);
        long mn = (long) m * n;
        if (!batchedSums || count == 1 || type != DType.FLOAT32 || strideA < 0 || strideB < 0
                || mn * count > Integer.MAX_VALUE) {
            for (int i = 0; i < count; i++) {
                matmul(a.get(a.size() == 1 ? 0 : i), b.get(b.size() == 1 ? 0 : i), c, m, n, k, transA, transB,
                        accumulate || i > 0);
            }
            return;
        }
        ColumnMajorGemm g = ColumnMajorGemm.of(m, n, k, transA, transB);
        long ws = splitWorkspace(mn * count * 4);
        blas.gemmStridedBatched(g.transFirst(), g.transSecond(), g.rows(), g.cols(), g.depth(), 1f,
                gpu(b.get(0)).ptr(), g.ldFirst(), strideB, gpu(a.get(0)).ptr(), g.ldSecond(), strideA, 0f, ws,
                g.ldResult(), mn, count, DType.FLOAT32, tf32);
        call.start(function("sum_parts", DType.FLOAT32)).p(ws).i(count).i((int) mn).p(gc).i((int) mn)
                .i(accumulate ? 1 : 0).launch(blocks(mn), THREADS, 0);
    }

    /**
     * The stride in elements from each tensor of {@code ts} to the next: 0 for one shared
     * tensor, −1 when they do not lie at one fixed positive stride.
     */
    private long stride(List<Tensor> ts, DType type) {
        if (ts.size() == 1) return 0;
        long step = gpu(ts.get(1)).ptr() - gpu(ts.get(0)).ptr();
        if (step <= 0 || step % type.bytes() != 0) return -1;
        for (int i = 2; i < ts.size(); i++) {
            if (gpu(ts.get(i)).ptr() - gpu(ts.get(i - 1)).ptr() != step) return -1;
        }
        return step / type.bytes();
    }

    // ---------------------------------------------------------------- embedding

    @Override
    public void embedding(TokenIds ids, Tensor table, Tensor out) {
        GpuTokenIds gi = ids(ids);
        GpuTensor t = gpu(table);
        GpuTensor o = gpu(out);
        if (t.shape().length != 2) throw new IllegalArgumentException("embedding table must be [V, D], got " + t);
        int vocab = t.shape()[0];
        int dim = t.shape()[1];
        int tokens = gi.batch() * gi.seqLen();
        requireSize("embedding", "out", o, (long) tokens * dim);
        sameType("embedding", o.dtype(), t);
        int n = elements("embedding", o);
        kernel("embedding", o.dtype()).p(gi.ptr()).p(t).p(o).i(tokens).i(dim).i(vocab).launch(blocks(n), THREADS, 0);
    }

    @Override
    public void embeddingBackward(TokenIds ids, Tensor dOut, Tensor dTable) {
        backward.embeddingBackward(ids(ids).segments(), gpu(dOut), gpu(dTable));
    }

    // ---------------------------------------------------------------- norms

    @Override
    public void rmsNorm(Tensor x, Tensor gain, Tensor out, Tensor rstd) {
        GpuTensor gx = gpu(x);
        int dim = Math.toIntExact(gain.size());
        int rows = rows("rmsNorm", gx, dim);
        sameShape("rmsNorm", out, gx);
        sameType("rmsNorm", gx.dtype(), gain, out);
        statistic("rmsNorm", "rstd", rstd, rows);
        kernel("rmsnorm", gx.dtype()).p(gx).p(gain).p(out).p(rstd).i(rows).i(dim)
                .f((float) ModelConfig.RMS_NORM_EPS).launch(Math.min(rows, 65535), THREADS, 0);
    }

    /** One launch: each row's sum is stored and normed while it is on chip, instead of written and read again. */
    @Override
    public void addRmsNorm(Tensor a, Tensor b, Tensor sum, Tensor gain, Tensor out, Tensor rstd) {
        GpuTensor gs = gpu(sum);
        int dim = Math.toIntExact(gain.size());
        int rows = rows("addRmsNorm", gs, dim);
        sameShape("addRmsNorm", a, gs);
        sameShape("addRmsNorm", b, gs);
        sameShape("addRmsNorm", out, gs);
        sameType("addRmsNorm", gs.dtype(), a, b, gain, out);
        statistic("addRmsNorm", "rstd", rstd, rows);
        kernel("add_rmsnorm", gs.dtype()).p(a).p(b).p(gs).p(gain).p(out).p(rstd).i(rows).i(dim)
                .f((float) ModelConfig.RMS_NORM_EPS).launch(Math.min(rows, 65535), THREADS, 0);
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor gain, Tensor rstd, Tensor dOut, Tensor dx, Tensor dGain) {
        backward.rmsNormBackward(gpu(x), gpu(gain), gpu(rstd), gpu(dOut), gpu(dx), gpu(dGain));
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd) {
        GpuTensor gx = gpu(x);
        int dim = Math.toIntExact(weight.size());
        int rows = rows("layerNorm", gx, dim);
        sameShape("layerNorm", out, gx);
        requireSize("layerNorm", "bias", gpu(bias), dim);
        sameType("layerNorm", gx.dtype(), weight, bias, out);
        statistic("layerNorm", "mean", mean, rows);
        statistic("layerNorm", "rstd", rstd, rows);
        kernel("layernorm", gx.dtype()).p(gx).p(weight).p(bias).p(out).p(mean).p(rstd).i(rows).i(dim)
                .f((float) ModelConfig.LAYER_NORM_EPS).launch(Math.min(rows, 65535), THREADS, 0);
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dOut, Tensor dx,
            Tensor dWeight, Tensor dBias) {
        backward.layerNormBackward(gpu(x), gpu(weight), gpu(mean), gpu(rstd), gpu(dOut), gpu(dx), gpu(dWeight),
                gpu(dBias));
    }

    // ---------------------------------------------------------------- TTT layer inputs

    @Override
    public void splitHeads(Tensor x, Tensor heads, int numHeads, int miniBatch, boolean rope) {
        GpuTensor gh = gpu(heads);
        int[] s = gh.shape();
        if (s.length != 4 || s[1] != numHeads) {
            throw new IllegalArgumentException("splitHeads: heads must be [B, " + numHeads + ", L, F], got " + gh);
        }
        if (s[3] % 2 != 0) throw new IllegalArgumentException("splitHeads: head dim must be even, got " + s[3]);
        requireSize("splitHeads", "x", gpu(x), gh.elements());
        sameType("splitHeads", gh.dtype(), x);
        int pairs = elements("splitHeads", gh) / 2;
        kernel("split_heads", gh.dtype()).p(x).p(gh).i(s[0]).i(s[2]).i(numHeads).i(s[3]).i(miniBatch).i(rope ? 1 : 0)
                .f((float) ModelConfig.ROPE_THETA).launch(blocks(pairs), THREADS, 0);
    }

    @Override
    public void splitHeadsBackward(Tensor dHeads, Tensor dx, int numHeads, int miniBatch, boolean rope) {
        backward.splitHeadsBackward(gpu(dHeads), gpu(dx), numHeads, miniBatch, rope);
    }

    @Override
    public void tttLearningRate(Tensor x, Tensor weight, Tensor bias, Tensor lr) {
        GpuTensor gl = gpu(lr);
        int[] s = gl.shape();
        if (s.length != 3) throw new IllegalArgumentException("tttLearningRate: lr must be [B, H, L], got " + gl);
        int batch = s[0];
        int heads = s[1];
        int seqLen = s[2];
        requireSize("tttLearningRate", "bias", gpu(bias), heads);
        long dimL = weight.size() / heads;
        requireSize("tttLearningRate", "weight", gpu(weight), dimL * heads);
        int dim = Math.toIntExact(dimL);
        requireSize("tttLearningRate", "x", gpu(x), (long) batch * seqLen * dim);
        if (dim % heads != 0) throw new IllegalArgumentException("tttLearningRate: D " + dim + " not divisible by H " + heads);
        sameType("tttLearningRate", gl.dtype(), x, weight, bias);
        float scale = (float) (ModelConfig.BASE_LR / (dim / heads));
        int tokens = batch * seqLen;
        kernel("ttt_lr", gl.dtype()).p(x).p(weight).p(bias).p(gl).i(batch).i(seqLen).i(heads).i(dim).f(scale)
                .launch(Math.min(tokens, 65535), THREADS, 0);
    }

    @Override
    public void tttLearningRateBackward(Tensor x, Tensor weight, Tensor lr, Tensor dLr, Tensor dx, Tensor dWeight,
            Tensor dBias) {
        backward.tttLearningRateBackward(gpu(x), gpu(weight), gpu(lr), gpu(dLr), gpu(dx), gpu(dWeight), gpu(dBias));
    }

    @Override
    public void tokenEta(Tensor tokenIdx, Tensor tok) {
        GpuTensor gt = gpu(tok);
        int k = elements("tokenEta", gt);
        requireSize("tokenEta", "tokenIdx", gpu(tokenIdx), k);
        sameType("tokenEta", gt.dtype(), tokenIdx);
        kernel("token_eta", gt.dtype()).p(tokenIdx).p(gt).i(k).launch(blocks(k), THREADS, 0);
    }

    @Override
    public void tokenEtaBackward(Tensor tokenIdx, Tensor dTok, Tensor dTokenIdx) {
        backward.tokenEtaBackward(gpu(tokenIdx), gpu(dTok), gpu(dTokenIdx));
    }

    // ---------------------------------------------------------------- inner loop

    /**
     * Makes the inner scans run {@code variant} instead of the one chosen for the device (null:
     * back to that), so that verification and timing can check every kernel.
     */
    public void forceInnerVariant(InnerVariant variant) {
        this.forcedVariant = variant;
    }

    /** Whether the device runs thread block clusters (NVIDIA sm_90 and newer). */
    boolean clusters() {
        if (!rt.name().equals("cuda")) return false;
        String arch = rt.architecture();
        if (!arch.startsWith("sm_")) return false;
        try {
            return Integer.parseInt(arch.substring(3).replaceAll("[^0-9].*$", "")) >= 90;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    private boolean fits(InnerVariant v, TttType type, int headDim, int miniBatch) {
        try {
            InnerScanLayout layout = InnerScanLayout.of(v, type, headDim, miniBatch);
            return layout.sharedBytes(v.placement()) <= rt.maxSharedMemoryPerBlock();
        } catch (IllegalArgumentException | UnsupportedOperationException e) {
            return false;
        }
    }

    /** Every inner-scan kernel that can run a scan of this shape on this device. */
    public List<InnerVariant> innerVariants(TttType type, int headDim, int miniBatch) {
        List<InnerVariant> all = new ArrayList<>();
        for (InnerPlacement p : InnerPlacement.values()) all.add(InnerVariant.single(p));
        if (clusters()) {
            for (int c : type == TttType.MLP ? new int[] {2, 4, 8} : new int[] {2, 4}) all.add(InnerVariant.cluster(c));
        }
        all.add(InnerVariant.fused());
        if (type == TttType.LINEAR) all.add(InnerVariant.fusedQb());
        if (type == TttType.MLP && clusters()) {
            for (int c : new int[] {2, 4, 8}) all.add(InnerVariant.fused(c));
        }
        return all.stream().filter(v -> fits(v, type, headDim, miniBatch)).toList();
    }

    /**
     * The kernel an inner scan of this shape over {@code blocks} (batch × heads) sequences runs:
     * for TTT-MLP on a device with clusters, a cluster of 4 blocks, or of 2, whose blocks all fit
     * on the device at once with room to spare (a cluster must sit within one GPC); otherwise one
     * block per sequence, with the state in shared memory if it fits. Measured on an H200
     * (docs/perf.md): clusters of 8 are no faster than of 4 (the work every block repeats
     * dominates), and for TTT-Linear, whose state is small, clusters do not pay for their
     * barriers.
     */
    public InnerVariant innerVariant(TttType type, int headDim, int miniBatch, long blocks) {
        if (forcedVariant != null) return forcedVariant;
        // Measured on an H100 at 125m (docs/perf.md): TTT-MLP fused clusters of 8 1.52 ms, of 4 1.58, the
        // four-phase clusters of 4 2.38; TTT-Linear fused 0.52 ms against 0.97 for the four-phase kernel.
        if (type == TttType.MLP && clusters()) {
            for (InnerVariant v : List.of(InnerVariant.fused(8), InnerVariant.fused(4), InnerVariant.fused(2),
                    InnerVariant.cluster(4), InnerVariant.cluster(2))) {
                if (blocks * v.cluster() <= rt.multiprocessorCount() * 3L / 4 && fits(v, type, headDim, miniBatch)) {
                    return v;
                }
            }
        }
        if (type == TttType.LINEAR && fits(InnerVariant.fused(), type, headDim, miniBatch)) return InnerVariant.fused();
        InnerScanLayout layout = new InnerScanLayout(type, headDim, miniBatch);
        return InnerVariant.single(layout.choose(rt.maxSharedMemoryPerBlock()));
    }

    @Override
    public void innerForward(InnerInputs in, Tensor out, Tensor checkpoints, int interval, Tensor lastState) {
        boolean mlp = in.type() == TttType.MLP;
        int b = in.batch();
        int h = in.heads();
        int l = in.seqLen();
        int f = in.headDim();
        int k = in.miniBatch();
        if (l % k != 0) throw new IllegalArgumentException("innerForward: seq len " + l + " not divisible by " + k);
        int f1 = mlp ? 4 * f : f;
        long heads = (long) b * h * l * f;
        String op = "innerForward";
        requireSize(op, "xq", gpu(in.xq()), heads);
        requireSize(op, "xk", gpu(in.xk()), heads);
        requireSize(op, "xv", gpu(in.xv()), heads);
        requireSize(op, "lr", gpu(in.lr()), (long) b * h * l);
        requireSize(op, "tok", gpu(in.tok()), k);
        requireSize(op, "w1", gpu(in.w1()), (long) h * f * f1);
        requireSize(op, "b1", gpu(in.b1()), (long) h * f1);
        requireSize(op, "normWeight", gpu(in.normWeight()), (long) h * f);
        requireSize(op, "normBias", gpu(in.normBias()), (long) h * f);
        requireSize(op, "out", gpu(out), heads);
        DType t = gpu(out).dtype();
        sameType(op, t, in.xq(), in.xk(), in.xv(), in.lr(), in.tok(), in.w1(), in.b1(), in.normWeight(), in.normBias());
        if (mlp) {
            requireSize(op, "w2", gpu(in.w2()), (long) h * f1 * f);
            requireSize(op, "b2", gpu(in.b2()), (long) h * f);
            sameType(op, t, in.w2(), in.b2());
        }
        long stateSize = mlp ? (long) f * f1 + f1 + (long) f1 * f + f : (long) f * f + f;
        if (checkpoints != null) {
            if (interval < 1) throw new IllegalArgumentException("innerForward: checkpoint interval must be >= 1");
            int slots = (l / k + interval - 1) / interval;
            requireSize(op, "checkpoints", gpu(checkpoints), slots * (long) b * h * stateSize);
            sameType(op, DType.FLOAT32, checkpoints);
        }
        if (lastState != null) {
            requireSize(op, "lastState", gpu(lastState), (long) b * h * stateSize);
            sameType(op, DType.FLOAT32, lastState);
        }

        InnerVariant v = innerVariant(in.type(), f, k, (long) b * h);
        if (v.cluster() > 1 && !clusters()) {
            throw new IllegalArgumentException("inner scan kernel " + v + " needs thread block clusters, which "
                    + device() + " does not have");
        }
        InnerScanLayout layout = InnerScanLayout.of(v, in.type(), f, k);
        InnerPlacement p = v.placement();
        long shared = layout.sharedBytes(p);
        if (shared > rt.maxSharedMemoryPerBlock()) {
            throw new IllegalArgumentException("inner scan kernel " + v + " needs " + shared
                    + " bytes of shared memory per block; this device allows " + rt.maxSharedMemoryPerBlock());
        }
        long wsFloats = layout.workspaceFloats(p);
        long ws = workspace(wsFloats * 4 * b * h);
        // The cluster kernels of the linear scan take the same arguments and ignore the workspace.
        long fn = function((mlp ? "ttt_mlp_" : "ttt_linear_") + v.kernelName(), t);
        raiseSharedLimit(fn, shared);
        KernelLaunch c = call.start(fn).p(in.xq()).p(in.xk()).p(in.xv()).p(in.lr()).p(in.tok()).p(in.w1()).p(in.b1());
        if (mlp) c.p(in.w2()).p(in.b2());
        c.p(in.normWeight()).p(in.normBias()).p(out).p(checkpoints).i(checkpoints == null ? 1 : interval).p(lastState)
                .p(ws).i(Math.toIntExact(wsFloats)).i((int) shared).i(h).i(l).i(f).i(k)
                .f((float) ModelConfig.LAYER_NORM_EPS)
                .launch(Math.multiplyExact(Math.multiplyExact(b, h), v.cluster()), SCAN_THREADS, (int) shared);
    }

    /**
     * Makes the inner backward run with {@code placement} instead of the fastest one that fits
     * (null: back to that), so that verification can check every kernel.
     */
    public void forceInnerBackwardPlacement(InnerPlacement placement) {
        backward.forcePlacement(placement);
    }

    /**
     * Makes the TTT-MLP inner backward at checkpoint interval 1 run its chain on {@code blocks}
     * blocks per (batch, head): 1 (one block, every device), 2 or 4 (a thread block cluster); null:
     * the device's choice (see also the system property tttbench.mlp.chain).
     */
    public void forceInnerBackwardChain(Integer blocks) {
        backward.forceChain(blocks);
    }

    /** Every chain (blocks per (batch, head)) the TTT-MLP inner backward of this shape can run on this device. */
    public List<Integer> innerBackwardChains(TttType type, int headDim, int miniBatch) {
        return backward.chains(type, headDim, miniBatch);
    }

    /** Every placement an inner backward of this shape can run with on this device, fastest first. */
    public List<InnerPlacement> innerBackwardPlacements(TttType type, int headDim, int miniBatch) {
        return backward.placements(type, headDim, miniBatch);
    }

    @Override
    public void innerBackward(InnerInputs in, Tensor checkpoints, int interval, Tensor dOut, InnerGrads grads) {
        backward.innerBackward(in, gpu(checkpoints), interval, gpu(dOut), grads);
    }

    // ---------------------------------------------------------------- feed-forward

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        GpuTensor o = gpu(out);
        sameShape("swiglu", gate, o);
        sameShape("swiglu", up, o);
        sameType("swiglu", o.dtype(), gate, up);
        int n = elements("swiglu", o);
        kernel("swiglu", o.dtype()).p(gate).p(up).p(o).i(n).launch(blocks(n), THREADS, 0);
    }

    @Override
    public void swigluBackward(Tensor gate, Tensor up, Tensor dOut, Tensor dGate, Tensor dUp) {
        backward.swigluBackward(gpu(gate), gpu(up), gpu(dOut), gpu(dGate), gpu(dUp));
    }

    // ---------------------------------------------------------------- helpers

    private GpuTensor gpu(Tensor t) {
        if (t instanceof GpuTensor g) return g;
        throw new IllegalArgumentException(t == null ? "a tensor is missing (null)"
                : "tensor " + t + " does not belong to the GPU backend");
    }

    private static GpuTokenIds ids(TokenIds ids) {
        if (ids instanceof GpuTokenIds g) return g;
        throw new IllegalArgumentException("token ids do not belong to the GPU backend");
    }

    private int blocks(long n) {
        return (int) Math.max(1, Math.min((n + THREADS - 1) / THREADS, maxBlocks));
    }

    /** Element count as the kernels' int. */
    private static int elements(String op, GpuTensor t) {
        if (t.elements() > Integer.MAX_VALUE) {
            throw new UnsupportedOperationException(op + ": " + t + " has more than 2^31-1 elements");
        }
        return (int) t.elements();
    }

    private int rows(String op, GpuTensor x, int dim) {
        if (dim <= 0 || x.elements() % dim != 0) {
            throw new IllegalArgumentException(op + ": " + x + " is not a whole number of rows of " + dim);
        }
        return Math.toIntExact(x.elements() / dim);
    }

    private void requireSize(String op, String what, GpuTensor t, long n) {
        if (t.elements() != n) throw new IllegalArgumentException(op + ": " + what + " must have " + n + " elements, got " + t);
    }

    private void sameShape(String op, Tensor a, GpuTensor like) {
        if (gpu(a).elements() != like.elements()) {
            throw new IllegalArgumentException(op + ": " + a + " and " + like + " differ in size");
        }
    }

    private void sameType(String op, DType type, Tensor... ts) {
        for (Tensor t : ts) {
            if (gpu(t).dtype() != type) {
                throw new IllegalArgumentException(op + ": " + t + " is not stored as " + type.flag() + " like the others");
            }
        }
    }

    /** A saved statistic: null, or float32 with one value per row. */
    private void statistic(String op, String what, Tensor t, int rows) {
        if (t == null) return;
        requireSize(op, what, gpu(t), rows);
        sameType(op, DType.FLOAT32, t);
    }

    /** The workspace of the inner scans, grown on first use of a larger shape (setup or warmup, never mid-run). */
    private long workspace(long bytes) {
        if (bytes == 0) return 0;
        if (bytes > workspaceBytes) {
            workspace = memory.carve(bytes);
            workspaceBytes = bytes;
        }
        return workspace;
    }

    private void raiseSharedLimit(long function, long bytes) {
        Long set = sharedLimits.get(function);
        if (set != null && set >= bytes) return;
        rt.setMaxDynamicSharedMemory(function, (int) bytes);
        sharedLimits.put(function, bytes);
    }

    private static String suffix(DType t) {
        return switch (t) {
            case FLOAT32 -> "f32";
            case BFLOAT16 -> "bf16";
            case FLOAT16 -> "f16";
        };
    }

    private long function(String name, DType t) {
        String full = name + "_" + suffix(t);
        Long f = functions.get(full);
        if (f != null) return f;
        String module = moduleOf(name);
        long fn = rt.function(modules.get(module), full);
        functions.put(full, fn);
        return fn;
    }

    private static String moduleOf(String kernel) {
        if (kernel.startsWith("ttt_linear_")) return "ttt_linear";
        if (kernel.startsWith("ttt_mlp_")) return "ttt_mlp";
        return switch (kernel) {
            case "fill", "add", "swiglu", "sum_parts" -> "elementwise";
            case "embedding" -> "embedding";
            case "rmsnorm", "layernorm", "add_rmsnorm" -> "norms";
            case "split_heads", "ttt_lr", "token_eta" -> "ttt_inputs";
            default -> throw new IllegalArgumentException("no module holds kernel " + kernel);
        };
    }

    private KernelLaunch kernel(String name, DType t) {
        return call.start(function(name, t));
    }
}
