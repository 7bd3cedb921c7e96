package org.tttbench.tools;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import org.tttbench.backend.Tensor;
import org.tttbench.config.BackendKind;
import org.tttbench.config.BenchmarkKind;
import org.tttbench.config.Workload;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;
import org.tttbench.gpu.Blas;
import org.tttbench.gpu.GpuBackend;
import org.tttbench.gpu.GpuException;
import org.tttbench.gpu.GpuRuntime;
import org.tttbench.gpu.GpuRuntimes;
import org.tttbench.gpu.KernelArgs;
import org.tttbench.gpu.KernelImages;
import org.tttbench.harness.BenchmarkWork;


/**
 * A self-check of a GPU runtime on a real device, independent of the model: device properties,
 * memory and copies, the smoke kernels of hip/smoke.hip, the vendor BLAS against a float64
 * product on the CPU, events, and a captured graph replayed. Then, on the backend, that every
 * benchmark's run recorded into a graph and replayed writes the same bits as the run issued op by
 * op ({@link #graphReplays}), which is what the benchmark times. One PASS/FAIL line per check;
 * the exit status is 1 when any check fails.
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -cp benchmarks.jar org.tttbench.gpu.GpuSmoke [cuda|hip]
 *      [--graphs-only | --no-graphs] [--model-size 12m] [--seq-len 2048]</pre>
 */
public final class GpuSmoke {

    private int failures;
    private final Random random = new Random(20261126);

    /** The checkpoint intervals the graph check records the backward at: powers of two and one that leaves a remainder. */
    static final int[] GRAPH_INTERVALS = {1, 2, 3, 4, 8, 16};

    public static void main(String[] args) {
        BackendKind named = null;
        boolean runtimeChecks = true;
        boolean graphChecks = true;
        String size = "12m";
        int seqLen = 2048;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--graphs-only" -> runtimeChecks = false;
                case "--no-graphs" -> graphChecks = false;
                case "--model-size" -> size = args[++i];
                case "--seq-len" -> seqLen = Integer.parseInt(args[++i]);
                default -> named = BackendKind.parse(args[i]);
            }
        }
        List<GpuRuntimes.Probe> probes = GpuRuntimes.probe();
        for (GpuRuntimes.Probe p : probes) System.out.println("probe " + p);
        BackendKind kind = named != null ? named
                : probes.stream().filter(GpuRuntimes.Probe::usable).map(GpuRuntimes.Probe::kind).findFirst().orElse(null);
        if (kind == null) {
            System.out.println("smoke: no usable GPU runtime (see the probe lines above)");
            System.exit(2);
        }
        int failed = 0;
        GpuSmoke smoke = new GpuSmoke();
        try {
            if (runtimeChecks) {
                try (GpuRuntime rt = GpuRuntimes.open(kind)) {
                    failed = smoke.run(rt);
                }
            }
            if (graphChecks) {
                final BackendKind k = kind;
                failed = smoke.graphReplays(dtype -> new GpuBackend(GpuRuntimes.open(k), dtype, false), size, seqLen,
                        List.of(DType.FLOAT32, DType.BFLOAT16), GRAPH_INTERVALS);
            }
        } catch (GpuException e) {
            System.out.println("smoke: " + e.getMessage());
            System.exit(2);
            return;
        }
        System.out.println(failed == 0 ? "smoke: all checks passed" : "smoke: " + failed + " check(s) failed");
        System.exit(failed == 0 ? 0 : 1);
    }

    /** Failed checks so far. */
    int failures() {
        return failures;
    }

    private void check(boolean ok, String what) {
        System.out.println((ok ? "PASS " : "FAIL ") + what);
        if (!ok) failures++;
    }

    int run(GpuRuntime rt) {
        System.out.printf("device %s (%s): %s, %d multiprocessors, warp %d, %d KiB shared per block, %.1f GiB%n",
                rt.name(), rt.architecture(), rt.deviceName(), rt.multiprocessorCount(), rt.warpSize(),
                rt.maxSharedMemoryPerBlock() / 1024, rt.totalMemory() / (double) (1L << 30));
        try (Arena arena = Arena.ofConfined()) {
            kernels(rt, arena);
            products(rt, arena);
        }
        return failures;
    }

    private float[] randomFloats(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) random.nextGaussian();
        return v;
    }

    private static MemorySegment upload(GpuRuntime rt, Arena arena, float[] data, long dev) {
        MemorySegment host = arena.allocateFrom(JAVA_FLOAT, data);
        rt.copyToDevice(host, dev, host.byteSize());
        return host;
    }

    private static float[] download(GpuRuntime rt, Arena arena, long dev, int n) {
        MemorySegment host = arena.allocate(JAVA_FLOAT, n);
        rt.copyToHost(dev, host, host.byteSize());
        return host.toArray(JAVA_FLOAT);
    }

    private void kernels(GpuRuntime rt, Arena arena) {
        long module = KernelImages.load(rt, "smoke");
        long axpy = rt.function(module, "smoke_axpy");
        long warp = rt.function(module, "smoke_warp_size");

        long w = rt.malloc(4);
        rt.launch(warp, 1, 1, 1, 64, 1, 1, 0, new KernelArgs(arena, 1).pointer(w).segment());
        MemorySegment wHost = arena.allocate(JAVA_INT);
        rt.copyToHost(w, wHost, 4);
        check(wHost.get(JAVA_INT, 0) == rt.warpSize(),
                "kernel warpSize " + wHost.get(JAVA_INT, 0) + " = runtime warpSize " + rt.warpSize());
        rt.free(w);

        int n = 1 << 20;
        long bytes = 4L * n;
        float a = 1.5f;
        float[] x = randomFloats(n);
        float[] y0 = randomFloats(n);
        long dx = rt.malloc(bytes);
        long dy = rt.malloc(bytes);
        long dz = rt.malloc(bytes);
        upload(rt, arena, x, dx);
        upload(rt, arena, y0, dy);
        MemorySegment args = new KernelArgs(arena, 4).f32(a).pointer(dx).pointer(dy).i32(n).segment();
        int blocks = 2 * rt.multiprocessorCount();
        rt.launch(axpy, blocks, 1, 1, 256, 1, 1, 0, args);
        check(maxRelError(download(rt, arena, dy, n), axpyRef(a, x, y0, 1)) < 1e-6, "smoke_axpy, 2^20 elements");

        rt.memset(dz, 0x7f, bytes);
        rt.copyDeviceToDevice(dy, dz, bytes / 2);
        float[] z = download(rt, arena, dz, n);
        float[] y1 = axpyRef(a, x, y0, 1);
        boolean copied = true;
        for (int i = 0; i < n; i++) {
            float want = i < n / 2 ? y1[i] : Float.intBitsToFloat(0x7f7f7f7f);
            if (Float.floatToRawIntBits(z[i]) != Float.floatToRawIntBits(want)) {
                copied = false;
                break;
            }
        }
        check(copied, "memset then device-to-device copy of half");

        // A graph of 8 launches replayed 3 times must equal 24 launches.
        upload(rt, arena, y0, dy);
        rt.synchronize();
        rt.beginCapture();
        for (int i = 0; i < 8; i++) rt.launch(axpy, blocks, 1, 1, 256, 1, 1, 0, args);
        long graph = rt.endCapture();
        float[] before = download(rt, arena, dy, n);
        check(maxRelError(before, y0) == 0, "capture did not run the captured work");
        for (int i = 0; i < 3; i++) rt.launchGraph(graph);
        check(maxRelError(download(rt, arena, dy, n), axpyRef(a, x, y0, 24)) < 1e-5, "graph of 8 launches replayed 3 times");
        rt.destroyGraph(graph);

        // Devices newer than the cubins load the PTX, which the driver compiles: check that path here too.
        for (KernelImages.Image ptx : KernelImages.index()) {
            if (!ptx.vendor().equals(KernelImages.vendorOf(rt)) || !ptx.kind().equals("ptx") || !ptx.name().equals("smoke")) {
                continue;
            }
            long jitted = rt.function(rt.loadModule(KernelImages.read(ptx)), "smoke_axpy");
            upload(rt, arena, y0, dy);
            rt.launch(jitted, blocks, 1, 1, 256, 1, 1, 0, args);
            check(maxRelError(download(rt, arena, dy, n), axpyRef(a, x, y0, 1)) < 1e-6,
                    "smoke_axpy from " + ptx.path() + " (compiled by the driver)");
        }

        launchCost(rt, axpy, arena, dx, dy);
        rt.free(dx);
        rt.free(dy);
        rt.free(dz);
    }

    /** Time per tiny launch, issued one by one through FFM and replayed from a graph. */
    private void launchCost(GpuRuntime rt, long axpy, Arena arena, long dx, long dy) {
        MemorySegment args = new KernelArgs(arena, 4).f32(0f).pointer(dx).pointer(dy).i32(256).segment();
        int count = 2000;
        long start = rt.createEvent();
        long end = rt.createEvent();
        for (int warm = 0; warm < 2; warm++) {
            rt.synchronize();
            long t0 = System.nanoTime();
            rt.recordEvent(start);
            for (int i = 0; i < count; i++) rt.launch(axpy, 1, 1, 1, 256, 1, 1, 0, args);
            rt.recordEvent(end);
            rt.synchronize();
            long host = System.nanoTime() - t0;
            if (warm == 1) {
                System.out.printf("launch: %.2f us per launch issued one by one (host), %.2f us (device events)%n",
                        host / 1e3 / count, rt.elapsedMillis(start, end) * 1e3 / count);
            }
        }
        rt.beginCapture();
        for (int i = 0; i < count; i++) rt.launch(axpy, 1, 1, 1, 256, 1, 1, 0, args);
        long graph = rt.endCapture();
        for (int warm = 0; warm < 2; warm++) {
            rt.synchronize();
            long t0 = System.nanoTime();
            rt.recordEvent(start);
            rt.launchGraph(graph);
            rt.recordEvent(end);
            rt.synchronize();
            long host = System.nanoTime() - t0;
            if (warm == 1) {
                System.out.printf("graph: %.2f us per launch replayed (host), %.2f us (device events)%n",
                        host / 1e3 / count, rt.elapsedMillis(start, end) * 1e3 / count);
            }
        }
        rt.destroyGraph(graph);
        rt.destroyEvent(start);
        rt.destroyEvent(end);
    }

    private static float[] axpyRef(float a, float[] x, float[] y, int times) {
        float[] r = y.clone();
        for (int t = 0; t < times; t++) {
            for (int i = 0; i < r.length; i++) r[i] = (float) ((double) a * x[i] + r[i]);
        }
        return r;
    }

    private static double maxRelError(float[] got, float[] want) {
        double worst = 0;
        for (int i = 0; i < got.length; i++) {
            if (Float.isNaN(got[i])) return Double.POSITIVE_INFINITY;
            double e = Math.abs(got[i] - want[i]) / Math.max(1.0, Math.abs(want[i]));
            worst = Math.max(worst, e);
        }
        return worst;
    }

    private void products(GpuRuntime rt, Arena arena) {
        Blas blas = rt.blas();
        // Column-major, C (m×n) = A (m×k) · B^T where B is stored n×k, with odd sizes on purpose.
        int m = 192, n = 160, k = 224, batch = 3;
        gemmCase(rt, blas, arena, m, n, k, 1, DType.FLOAT32, false, 1e-5);
        gemmCase(rt, blas, arena, m, n, k, 1, DType.FLOAT32, true, 3e-3);
        gemmCase(rt, blas, arena, m, n, k, 1, DType.BFLOAT16, false, 1e-2);
        gemmCase(rt, blas, arena, m, n, k, 1, DType.FLOAT16, false, 3e-3);
        gemmCase(rt, blas, arena, m, n, k, batch, DType.FLOAT32, false, 1e-5);
        gemmCase(rt, blas, arena, m, n, k, batch, DType.BFLOAT16, false, 1e-2);
    }

    private void gemmCase(GpuRuntime rt, Blas blas, Arena arena, int m, int n, int k, int batch, DType type,
            boolean tf32, double tolerance) {
        float[] a = randomFloats(m * k * batch);
        float[] b = randomFloats(n * k * batch);
        type.round(a);
        type.round(b);
        int es = type.bytes();
        long da = rt.malloc((long) a.length * es);
        long db = rt.malloc((long) b.length * es);
        long dc = rt.malloc((long) m * n * batch * es);
        rt.copyToDevice(encode(arena, a, type), da, (long) a.length * es);
        rt.copyToDevice(encode(arena, b, type), db, (long) b.length * es);
        rt.memset(dc, 0xff, (long) m * n * batch * es); // NaN everywhere: an unwritten element fails
        float alpha = 0.75f;
        if (batch == 1) {
            blas.gemm(false, true, m, n, k, alpha, da, m, db, n, 0f, dc, m, type, tf32);
        } else {
            blas.gemmStridedBatched(false, true, m, n, k, alpha, da, m, (long) m * k, db, n, (long) n * k, 0f,
                    dc, m, (long) m * n, batch, type, tf32);
        }
        MemorySegment host = arena.allocate((long) m * n * batch * es);
        rt.copyToHost(dc, host, host.byteSize());
        float[] c = decode(host, m * n * batch, type);
        double num = 0, den = 0;
        for (int p = 0; p < batch; p++) {
            for (int j = 0; j < n; j++) {
                for (int i = 0; i < m; i++) {
                    double s = 0;
                    for (int l = 0; l < k; l++) s += (double) a[p * m * k + l * m + i] * b[p * n * k + l * n + j];
                    double want = alpha * s;
                    double got = c[p * m * n + j * m + i];
                    num += (got - want) * (got - want);
                    den += want * want;
                }
            }
        }
        double rel = Double.isNaN(num) ? Double.POSITIVE_INFINITY : Math.sqrt(num / den);
        check(rel < tolerance, String.format("%s %s%s %dx%dx%d: relative error %.2e < %.0e",
                batch == 1 ? "gemm" : "gemmStridedBatched x" + batch, type.flag(), tf32 ? " tf32" : "", m, n, k,
                rel, tolerance));
        rt.free(da);
        rt.free(db);
        rt.free(dc);
    }

    /** The device bytes of values already rounded to {@code type}. */
    private static MemorySegment encode(Arena arena, float[] v, DType type) {
        if (type == DType.FLOAT32) return arena.allocateFrom(JAVA_FLOAT, v);
        MemorySegment s = arena.allocate(JAVA_SHORT, v.length);
        for (int i = 0; i < v.length; i++) {
            short bits = type == DType.BFLOAT16
                    ? (short) (Float.floatToRawIntBits(v[i]) >>> 16)
                    : Float.floatToFloat16(v[i]);
            s.setAtIndex(JAVA_SHORT, i, bits);
        }
        return s;
    }

    private static float[] decode(MemorySegment s, int n, DType type) {
        if (type == DType.FLOAT32) return s.asSlice(0, 4L * n).toArray(JAVA_FLOAT);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            short bits = s.getAtIndex(JAVA_SHORT, i);
            v[i] = type == DType.BFLOAT16 ? Float.intBitsToFloat((bits & 0xFFFF) << 16) : Float.float16ToFloat(bits);
        }
        return v;
    }

    // ---------------------------------------------------------------- graph replay of the benchmarks

    /**
     * For each benchmark of SPEC §4 (every checkpoint interval of {@code intervals} the sequence
     * allows, for the two backwards), TTT-Linear and TTT-MLP, and each dtype: the run recorded
     * into a graph, replayed over outputs poisoned with NaN, writes every output bit for bit as
     * the same run issued op by op did. Recording itself fails on any op that is not plain stream
     * work (an allocation, a copy to the host, a synchronize), which the line reports.
     *
     * @param open a fresh backend of the dtype (closed here), so that every case records into a
     *             clean arena
     * @return failed checks so far
     */
    public int graphReplays(Function<DType, GpuBackend> open, String size, int seqLen, List<DType> dtypes,
            int[] intervals) {
        int miniBatch = 16;
        int miniBatches = seqLen / miniBatch;
        for (DType dtype : dtypes) {
            for (TttType type : TttType.values()) {
                for (BenchmarkKind kind : BenchmarkKind.values()) {
                    boolean backward = kind.backward();
                    for (int c : backward ? intervals : new int[] {1}) {
                        if (c > miniBatches) continue;
                        Workload config = new Workload(size, type, backward, kind.innerOnly(), 1, seqLen, miniBatch, dtype,
                                c, false, null);
                        String label = String.format(Locale.ROOT, "graph replay = eager run, bit for bit: %s %s %s %s%s",
                                size, type.flag(), kind.method(), dtype.flag(), backward ? " c=" + c : "");
                        try (GpuBackend be = open.apply(dtype)) {
                            String diff = graphReplayDifference(be, BenchmarkWork.build(be, config));
                            check(diff == null, label + (diff == null ? "" : ": " + diff));
                        } catch (RuntimeException e) {
                            check(false, label + ": " + e);
                        }
                    }
                }
            }
        }
        return failures;
    }

    /** Null when a replay of {@code w} writes what its eager run wrote; else what differs. */
    static String graphReplayDifference(GpuBackend be, BenchmarkWork w) {
        be.synchronize();
        // graph() runs the work eagerly first, then records it without running it.
        Runnable replay = be.graph(w::run);
        be.synchronize();
        Map<String, Tensor> outputs = w.outputs();
        Map<String, float[]> eager = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : outputs.entrySet()) {
            float[] v = be.download(e.getValue());
            for (float x : v) {
                // A NaN in the eager output would hide an output the replay failed to write.
                if (Float.isNaN(x)) return "the eager run wrote NaN into " + e.getKey();
            }
            eager.put(e.getKey(), v);
        }
        for (Map.Entry<String, Tensor> e : outputs.entrySet()) {
            float[] nan = new float[eager.get(e.getKey()).length];
            Arrays.fill(nan, Float.NaN);
            be.upload(nan, e.getValue());
        }
        replay.run();
        be.synchronize();
        List<String> differing = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : outputs.entrySet()) {
            float[] want = eager.get(e.getKey());
            float[] got = be.download(e.getValue());
            int bad = 0;
            int first = -1;
            for (int i = 0; i < want.length; i++) {
                if (Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(want[i])) {
                    if (first < 0) first = i;
                    bad++;
                }
            }
            if (bad > 0) {
                differing.add(String.format(Locale.ROOT, "%s (%d of %d differ; [%d] %s vs %s)", e.getKey(), bad,
                        want.length, first, got[first], want[first]));
            }
        }
        if (differing.isEmpty()) return null;
        return differing.size() + " of " + outputs.size() + " outputs differ: "
                + String.join(", ", differing.subList(0, Math.min(3, differing.size())));
    }
}
