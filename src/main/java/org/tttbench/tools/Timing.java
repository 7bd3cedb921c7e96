package org.tttbench.tools;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.tttbench.backend.Backend;
import org.tttbench.backend.KernelChoice;
import org.tttbench.backend.ScanShape;
import org.tttbench.config.BackendKind;
import org.tttbench.config.BenchmarkKind;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.config.Workload;
import org.tttbench.gpu.Blas;
import org.tttbench.gpu.GpuBackend;
import org.tttbench.gpu.GpuRuntime;
import org.tttbench.harness.Backends;
import org.tttbench.harness.BenchmarkWork;
import org.tttbench.tools.DeviceTimer.Stats;
import org.tttbench.verify.Verifier;

/**
 * Device-event timings of the four benchmarks on the GPU backend, apart from JMH: for each
 * configuration it checks the kernels at a reduced size ({@link Verifier#checkConfig}), builds
 * the benchmark's work, and times it issued op by op and replayed from a captured graph, with
 * the peak device memory. --kernels also times the work with every inner-scan kernel the device
 * can run at its shape; --breakdown prints the device time of each op of one run; --ceilings
 * first measures the two rates the floors in docs/perf.md use (a device-to-device copy, large
 * float32 products).
 *
 * <pre>
 * java -cp benchmarks.jar org.tttbench.tools.Timing --model-size 125m,1b --ttt-type linear,mlp
 *      [--what forward,innerForward,backward,innerBackward] [--dtype float32] [--batch 1]
 *      [--seq-len 2048] [--mini-batch 16] [--intervals 1,4] [--warmup 3] [--repeats 10] [--tf32]
 *      [--ceilings] [--no-check] [--kernels] [--breakdown] [--no-graph]
 * </pre>
 */
public final class Timing {

    private Timing() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    private record Options(List<String> sizes, List<TttType> types, List<BenchmarkKind> what, DType dtype, int batch,
            int seqLen, int miniBatch, List<Integer> intervals, int warmup, int repeats, boolean tf32, boolean ceilings,
            boolean check, boolean kernels, boolean breakdown, boolean graph) {

        static Options parse(String[] args) {
            List<String> sizes = List.of("125m");
            List<TttType> types = List.of(TttType.LINEAR);
            List<BenchmarkKind> what = List.of(BenchmarkKind.FORWARD, BenchmarkKind.INNER_FORWARD);
            DType dtype = DType.FLOAT32;
            int batch = 1;
            int seqLen = 2048;
            int miniBatch = 16;
            List<Integer> intervals = List.of(1);
            int warmup = 3;
            int repeats = 10;
            boolean tf32 = false;
            boolean ceilings = false;
            boolean check = true;
            boolean kernels = false;
            boolean breakdown = false;
            boolean graph = true;
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--tf32" -> tf32 = true;
                    case "--ceilings" -> ceilings = true;
                    case "--no-check" -> check = false;
                    case "--kernels" -> kernels = true;
                    case "--breakdown" -> breakdown = true;
                    case "--no-graph" -> graph = false;
                    default -> {
                        if (i + 1 >= args.length) throw new IllegalArgumentException("unknown option or missing value: " + a);
                        String v = args[++i];
                        switch (a) {
                            case "--model-size" -> sizes = List.of(v.split(","));
                            case "--ttt-type" -> types = Arrays.stream(v.split(",")).map(TttType::parse).toList();
                            case "--what" -> what = Arrays.stream(v.split(",")).map(BenchmarkKind::byMethod).toList();
                            case "--dtype" -> dtype = DType.parse(v);
                            case "--batch" -> batch = Integer.parseInt(v);
                            case "--seq-len" -> seqLen = Integer.parseInt(v);
                            case "--mini-batch" -> miniBatch = Integer.parseInt(v);
                            case "--intervals" -> intervals = Arrays.stream(v.split(",")).map(Integer::parseInt).toList();
                            case "--warmup" -> warmup = Integer.parseInt(v);
                            case "--repeats" -> repeats = Integer.parseInt(v);
                            default -> throw new IllegalArgumentException("unknown option " + a);
                        }
                    }
                }
            }
            return new Options(sizes, types, what, dtype, batch, seqLen, miniBatch, intervals, warmup, repeats, tf32,
                    ceilings, check, kernels, breakdown, graph);
        }
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        Options o;
        try {
            o = Options.parse(args);
        } catch (IllegalArgumentException e) {
            err.println("timing: " + e.getMessage());
            return 2;
        }
        List<String> summary = new ArrayList<>();
        if (o.ceilings()) {
            try (Backend b = Backends.open(BackendKind.AUTO, DType.FLOAT32, false)) {
                if (!(b instanceof GpuBackend g)) {
                    err.println("timing: no GPU");
                    return 2;
                }
                summary.addAll(ceilings(g.runtime(), out));
            }
        }
        for (String size : o.sizes()) {
            for (TttType type : o.types()) {
                for (BenchmarkKind kind : o.what()) {
                    for (int c : kind.backward() ? o.intervals() : List.of(1)) {
                        Workload w = new Workload(size, type, kind.backward(), kind.innerOnly(), o.batch(), o.seqLen(),
                                o.miniBatch(), o.dtype(), c, o.tf32(), null);
                        String label = String.format(Locale.ROOT, "%-8s %-6s %-13s %-8s B=%d L=%d K=%d%s%s", size,
                                type.flag(), kind.method(), o.dtype().flag(), o.batch(), o.seqLen(), o.miniBatch(),
                                kind.backward() ? " c=" + c : "", o.tf32() ? " tf32" : "");
                        try {
                            summary.addAll(time(w, label, o, out));
                        } catch (RuntimeException e) {
                            out.println(label + "  FAILED: " + e);
                            summary.add(label + "  FAILED: " + e.getMessage());
                        }
                    }
                }
            }
        }
        out.println();
        out.println("summary (device time between events)");
        summary.forEach(out::println);
        return 0;
    }

    private static List<String> time(Workload w, String label, Options o, PrintStream out) {
        List<String> lines = new ArrayList<>();
        try (Backend b = Backends.open(BackendKind.AUTO, w.dtype(), w.tf32())) {
            if (!(b instanceof GpuBackend g)) throw new IllegalStateException("no GPU backend");
            if (o.check()) g.runReleasing(() -> Verifier.checkConfig(g, w));
            OpTimer timer = o.breakdown() ? new OpTimer(g) : null;
            BenchmarkWork work = BenchmarkWork.build(timer != null ? timer.proxy() : g, w);
            g.synchronize();
            GpuRuntime rt = g.runtime();
            ModelConfig m = w.model();
            ScanShape shape = new ScanShape(m.tttType(), m.headDim(), m.miniBatch(), w.dtype(),
                    (long) w.batch() * m.heads(), w.checkpointInterval());
            KernelChoice chosen = g.kernels(shape);
            String tag = label + " [" + (w.backward() ? chosen.label() : chosen.forward()) + "]";
            if (o.kernels()) {
                for (KernelChoice k : g.kernelOptions(shape)) {
                    if (k.backward() != null && !w.backward()) continue;
                    g.force(k);
                    String l = String.format(Locale.ROOT, "%s  kernel %-36s %s", label, k.label(),
                            Stats.of(DeviceTimer.measure(rt, work::run, 2, o.repeats())).format());
                    out.println(l);
                    lines.add(l);
                }
                g.force(KernelChoice.OWN);
            }
            double[] eager = DeviceTimer.measure(rt, work::run, o.warmup(), o.repeats());
            String mem = String.format(Locale.ROOT, "peak %.3f GiB", g.peakMemoryBytes() / (double) (1L << 30));
            lines.add(tag + "  ops:   " + Stats.of(eager).format() + "  " + mem);
            out.println(lines.getLast());
            if (o.graph()) {
                Runnable replay = g.graph(work::run);
                lines.add(tag + "  graph: " + Stats.of(DeviceTimer.measure(rt, replay, o.warmup(), o.repeats())).format());
                out.println(lines.getLast());
            }
            if (timer != null) timer.breakdown(work::run, tag, out);
            out.println("  device: " + g.device());
            out.flush();
        }
        return lines;
    }

    /** The copy bandwidth and float32 product rates of the device, measured on random data. */
    private static List<String> ceilings(GpuRuntime rt, PrintStream out) {
        List<String> lines = new ArrayList<>();
        long bytes = 1L << 30;
        long src = random(rt, bytes, 1);
        long dst = rt.malloc(bytes);
        double[] copy = DeviceTimer.measure(rt, () -> rt.copyDeviceToDevice(src, dst, bytes), 2, 10);
        lines.add(String.format(Locale.ROOT, "ceiling: device copy %.0f GB/s (read + write of 1 GiB, median)",
                2.0 * bytes / (Stats.of(copy).median() * 1e-3) / 1e9));
        rt.free(src);
        rt.free(dst);
        int n = 8192;
        long size = 4L * n * n;
        long a = random(rt, size, 2);
        long b = random(rt, size, 3);
        long c = rt.malloc(size);
        Blas blas = rt.blas();
        double flops = 2.0 * n * n * n;
        for (boolean tf32 : new boolean[] {false, true}) {
            double[] ms = DeviceTimer.measure(rt,
                    () -> blas.gemm(true, false, n, n, n, 1f, b, n, a, n, 0f, c, n, DType.FLOAT32, tf32), 2, 5);
            lines.add(String.format(Locale.ROOT, "ceiling: float32 GEMM %d^3 %s %.1f TFLOP/s (median)", n,
                    tf32 ? "TF32" : "strict", flops / (Stats.of(ms).median() * 1e-3) / 1e12));
        }
        rt.free(a);
        rt.free(b);
        rt.free(c);
        lines.forEach(out::println);
        return lines;
    }

    /** A device buffer of {@code bytes} bytes of normal floats (never zeros: they run faster than real data). */
    private static long random(GpuRuntime rt, long bytes, long seed) {
        long p = rt.malloc(bytes);
        SplittableRandom r = new SplittableRandom(seed);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(bytes, 16);
            for (long i = 0; i < bytes / 4; i++) s.setAtIndex(JAVA_FLOAT, i, (float) r.nextGaussian());
            rt.copyToDevice(s, p, bytes);
        }
        return p;
    }
}
