package org.tttbench.gpu;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.tttbench.backend.Backend;
import org.tttbench.backend.Backends;
import org.tttbench.backend.Tensor;
import org.tttbench.config.BackendKind;
import org.tttbench.config.BenchConfig;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.model.Parameters;
import org.tttbench.model.Workload;
import org.tttbench.verify.Verifier;

/**
 * A small timing harness for the GPU backend, apart from JMH: for each configuration it checks
 * the kernels at a reduced size ({@link Verifier#checkConfig}), builds the benchmark's workload,
 * and times it with device events, issued op by op and replayed from a captured graph. With
 * --ceilings it first measures the two rates the floors in docs/perf.md use: a device-to-device
 * copy and a large float32 product.
 *
 * <pre>
 * java -cp benchmarks.jar org.tttbench.gpu.GpuTiming --model-size 125m,1b --ttt-type linear,mlp
 *      [--what forward,inner] [--dtype float32] [--batch 1] [--seq-len 2048] [--warmup 3]
 *      [--repeats 10] [--tf32] [--ceilings] [--no-check] [--variants] [--breakdown]
 * </pre>
 * --breakdown also prints the device time of each op of one run (each op between its own events,
 * as {@link BackwardTiming} does). {@code -Dtttbench.fusedOps=false} times the model with its ops
 * issued one by one (see {@link org.tttbench.model.TttModel#FUSED_OPS}); {@code -Dtttbench.splitK=N}
 * and {@code -Dtttbench.batchedSums=true} select how the GPU runs products (see
 * {@link GpuBackend#SPLIT_K}, {@link GpuBackend#BATCHED_SUMS}). Each label names the settings that
 * are not the defaults.
 * --variants also times the work with every inner-scan kernel the device can run (state
 * placements, cluster sizes).
 * <pre>
 * </pre>
 */
public final class GpuTiming {

    private GpuTiming() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    record Stats(double mean, double median, double min, double max) {
        static Stats of(double[] ms) {
            double[] s = ms.clone();
            Arrays.sort(s);
            double mean = Arrays.stream(s).average().orElse(Double.NaN);
            double median = s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
            return new Stats(mean, median, s[0], s[s.length - 1]);
        }

        String format() {
            return String.format(Locale.ROOT, "mean %9.3f  median %9.3f  min %9.3f  max %9.3f ms", mean, median, min, max);
        }
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        List<String> sizes = List.of("125m");
        List<TttType> types = List.of(TttType.LINEAR);
        List<String> what = List.of("forward", "inner");
        DType dtype = DType.FLOAT32;
        int batch = 1;
        int seqLen = 2048;
        int warmup = 3;
        int repeats = 10;
        boolean tf32 = false;
        boolean ceilings = false;
        boolean check = true;
        boolean breakdown = false;
        List<InnerVariant> variants = List.of();
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--tf32" -> tf32 = true;
                    case "--ceilings" -> ceilings = true;
                    case "--no-check" -> check = false;
                    case "--variants" -> variants = null;
                    case "--breakdown" -> breakdown = true;
                    default -> {
                        if (i + 1 >= args.length) throw new IllegalArgumentException("unknown option or missing value: " + a);
                        String v = args[++i];
                        switch (a) {
                            case "--model-size" -> sizes = List.of(v.split(","));
                            case "--ttt-type" -> types = Arrays.stream(v.split(",")).map(TttType::parse).toList();
                            case "--what" -> what = List.of(v.split(","));
                            case "--dtype" -> dtype = DType.parse(v);
                            case "--batch" -> batch = Integer.parseInt(v);
                            case "--seq-len" -> seqLen = Integer.parseInt(v);
                            case "--warmup" -> warmup = Integer.parseInt(v);
                            case "--repeats" -> repeats = Integer.parseInt(v);
                            default -> throw new IllegalArgumentException("unknown option " + a);
                        }
                    }
                }
            }
        } catch (IllegalArgumentException e) {
            err.println("timing: " + e.getMessage());
            return 2;
        }
        List<String> summary = new ArrayList<>();
        if (ceilings) {
            try (Backend b = Backends.open(BackendKind.AUTO, DType.FLOAT32, false)) {
                if (!(b instanceof GpuBackend g)) {
                    err.println("timing: no GPU");
                    return 2;
                }
                summary.addAll(ceilings(g, out));
            }
        }
        for (String size : sizes) {
            for (TttType type : types) {
                for (String w : what) {
                    boolean inner = w.equals("inner");
                    BenchConfig config = new BenchConfig(size, type, false, batch, seqLen, 16, dtype, warmup, repeats,
                            false, inner, 1, null, BackendKind.AUTO, tf32, null);
                    String label = String.format(Locale.ROOT, "%-8s %-6s %-7s %-8s B=%d L=%d%s", size, type.flag(),
                            inner ? "inner" : "forward", dtype.flag(), batch, seqLen, tf32 ? " tf32" : "")
                            + (inner ? "" : switches());
                    try {
                        if (check) Verifier.checkConfig(config);
                        summary.addAll(time(config, label, warmup, repeats, out, variants == null, breakdown));
                    } catch (RuntimeException e) {
                        out.println(label + "  FAILED: " + e.getMessage());
                        summary.add(label + "  FAILED");
                    }
                }
            }
        }
        out.println();
        out.println("summary (device time between events)");
        summary.forEach(out::println);
        return 0;
    }

    /**
     * @param everyVariant also time the work with every inner-scan kernel the device can run,
     *                     not only the one chosen for it
     */
    private static List<String> time(BenchConfig config, String label, int warmup, int repeats, PrintStream out,
            boolean everyVariant, boolean breakdown) {
        List<String> lines = new ArrayList<>();
        try (Backend b = Backends.open(config.backend(), config.dtype(), config.tf32())) {
            if (!(b instanceof GpuBackend g)) throw new IllegalStateException("no GPU backend");
            BackwardTiming.OpTimer timer = breakdown ? new BackwardTiming.OpTimer(g) : null;
            Workload wl = Workload.build(timer != null ? timer.proxy() : b, config,
                    config.innerOnly() ? Workload.Kind.INNER_FORWARD : Workload.Kind.FORWARD);
            b.synchronize();
            GpuRuntime rt = g.runtime();
            ModelConfig m = config.model();
            InnerVariant chosen = g.innerVariant(m.tttType(), m.headDim(), m.miniBatch(), (long) config.batch() * m.heads());
            label = label + " [" + chosen + "]";
            if (everyVariant) {
                for (InnerVariant v : g.innerVariants(m.tttType(), m.headDim(), m.miniBatch())) {
                    // The global-memory placements only matter to the inner scan alone.
                    if (!config.innerOnly() && v.placement() != InnerPlacement.SHARED && !v.equals(chosen)) continue;
                    g.forceInnerVariant(v);
                    String l = String.format(Locale.ROOT, "%s  kernel %-11s %s", label, v.kernelName(),
                            Stats.of(measure(rt, wl::run, 2, repeats)).format());
                    out.println(l);
                    lines.add(l);
                }
                g.forceInnerVariant(null);
            }
            double[] eager = measure(rt, wl::run, warmup, repeats);
            Runnable replay = g.graph(wl::run);
            double[] graph = measure(rt, replay, warmup, repeats);
            String mem = String.format(Locale.ROOT, "peak %.2f GiB", b.peakMemoryBytes() / (double) (1L << 30));
            lines.add(label + "  ops:   " + Stats.of(eager).format() + "  " + mem);
            lines.add(label + "  graph: " + Stats.of(graph).format());
            out.println(lines.get(lines.size() - 2));
            out.println(lines.get(lines.size() - 1));
            if (timer != null) timer.breakdown(wl, b, label, out);
            out.println("  device: " + b.device());
            out.flush();
        }
        return lines;
    }

    /** The settings of the model's ops and products that are not the defaults, for a label. */
    static String switches() {
        StringBuilder s = new StringBuilder();
        if (!org.tttbench.model.TttModel.fusedOps()) s.append(" unfused");
        int split = Integer.getInteger(GpuBackend.SPLIT_K, 1);
        if (split > 1) s.append(" splitK=").append(split);
        if ("true".equalsIgnoreCase(System.getProperty(GpuBackend.BATCHED_SUMS, "false").trim())) {
            s.append(" batched-sums");
        }
        return s.toString();
    }

    /** Milliseconds of each timed run, between events recorded around it. */
    private static double[] measure(GpuRuntime rt, Runnable work, int warmup, int repeats) {
        for (int i = 0; i < warmup; i++) work.run();
        rt.synchronize();
        long start = rt.createEvent();
        long end = rt.createEvent();
        try {
            double[] ms = new double[repeats];
            for (int i = 0; i < repeats; i++) {
                rt.recordEvent(start);
                work.run();
                rt.recordEvent(end);
                ms[i] = rt.elapsedMillis(start, end);
            }
            return ms;
        } finally {
            rt.destroyEvent(start);
            rt.destroyEvent(end);
        }
    }

    /** The copy bandwidth and float32 product rates of the device, measured. */
    private static List<String> ceilings(GpuBackend g, PrintStream out) {
        List<String> lines = new ArrayList<>();
        GpuRuntime rt = g.runtime();
        long bytes = 1L << 30;
        Tensor src = g.allocate(DType.FLOAT32, (int) (bytes / 4));
        Tensor dst = g.allocate(DType.FLOAT32, (int) (bytes / 4));
        float[] host = new float[(int) (bytes / 4)];
        Parameters.fillNormal(host, 1, 1);
        g.upload(host, src);
        long s = ((GpuTensor) src).ptr();
        long d = ((GpuTensor) dst).ptr();
        double[] copy = measure(rt, () -> rt.copyDeviceToDevice(s, d, bytes), 2, 10);
        double gbs = 2.0 * bytes / (Stats.of(copy).median() * 1e-3) / 1e9;
        lines.add(String.format(Locale.ROOT, "ceiling: device copy %.0f GB/s (read + write of 1 GiB, median)", gbs));
        int n = 8192;
        Tensor a = g.allocate(DType.FLOAT32, n, n);
        Tensor bm = g.allocate(DType.FLOAT32, n, n);
        Tensor c = g.allocate(DType.FLOAT32, n, n);
        float[] h = new float[n * n];
        Parameters.fillNormal(h, 1, 2);
        g.upload(h, a);
        Parameters.fillNormal(h, 1, 3);
        g.upload(h, bm);
        double flops = 2.0 * n * n * n;
        double[] strict = measure(rt, () -> g.matmul(a, bm, c, n, n, n, false, true, false), 2, 5);
        lines.add(String.format(Locale.ROOT, "ceiling: float32 GEMM %d^3 strict %.1f TFLOP/s (median)", n,
                flops / (Stats.of(strict).median() * 1e-3) / 1e12));
        Blas blas = rt.blas();
        long pa = ((GpuTensor) a).ptr();
        long pb = ((GpuTensor) bm).ptr();
        long pc = ((GpuTensor) c).ptr();
        double[] tf = measure(rt, () -> blas.gemm(true, false, n, n, n, 1f, pb, n, pa, n, 0f, pc, n, DType.FLOAT32, true),
                2, 5);
        lines.add(String.format(Locale.ROOT, "ceiling: float32 GEMM %d^3 TF32 %.1f TFLOP/s (median)", n,
                flops / (Stats.of(tf).median() * 1e-3) / 1e12));
        lines.forEach(out::println);
        return lines;
    }
}
