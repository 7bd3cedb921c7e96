package org.tttbench.gpu;

import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.tttbench.backend.Backend;
import org.tttbench.backend.Backends;
import org.tttbench.config.BackendKind;
import org.tttbench.config.BenchConfig;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;
import org.tttbench.model.Workload;

/**
 * Device-event timings of the backward benchmarks (inner backward and the full training step),
 * apart from JMH: for each configuration and checkpoint interval, the mean, median and spread of
 * runs issued op by op and replayed from a captured graph, the peak device memory, and with
 * --breakdown the device time of each op of one run (each op between its own events, so the
 * shares are exact while the total includes the gaps between ops).
 *
 * <pre>
 * java -cp benchmarks.jar org.tttbench.gpu.BackwardTiming --model-size 125m --ttt-type linear,mlp
 *      [--what inner,full] [--dtype float32] [--batch 1] [--seq-len 2048] [--intervals 1]
 *      [--warmup 3] [--repeats 10] [--breakdown] [--no-graph] [--chain auto,1,2,4]
 * </pre>
 *
 * <p>--chain times the TTT-MLP backward at interval 1 with its chain forced on that many blocks
 * per (batch, head), each in turn: 1 (one block, the kernel of every device), 2 or 4 (a thread
 * block cluster, sm_90); auto is the device's choice.
 */
public final class BackwardTiming {

    /** The ops a breakdown names; anything else a backend does is not an op of the model. */
    private static final Set<String> OPS = Set.of("fill", "fillAll", "add", "matmul", "matmulBatched", "matmulSum",
            "embedding", "embeddingBackward", "rmsNorm", "addRmsNorm", "rmsNormBackward", "layerNorm",
            "layerNormBackward", "splitHeads", "splitHeadsBackward", "tttLearningRate", "tttLearningRateBackward",
            "tokenEta", "tokenEtaBackward", "innerForward", "innerBackward", "swiglu", "swigluBackward");

    private BackwardTiming() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        List<String> sizes = List.of("125m");
        List<TttType> types = List.of(TttType.LINEAR);
        List<String> what = List.of("inner", "full");
        List<Integer> intervals = List.of(1);
        DType dtype = DType.FLOAT32;
        int batch = 1;
        int seqLen = 2048;
        int warmup = 3;
        int repeats = 10;
        boolean breakdown = false;
        boolean graph = true;
        List<String> chains = List.of("auto");
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--breakdown" -> breakdown = true;
                    case "--no-graph" -> graph = false;
                    default -> {
                        if (i + 1 >= args.length) throw new IllegalArgumentException("unknown option or missing value: " + a);
                        String v = args[++i];
                        switch (a) {
                            case "--model-size" -> sizes = List.of(v.split(","));
                            case "--ttt-type" -> types = Arrays.stream(v.split(",")).map(TttType::parse).toList();
                            case "--what" -> what = List.of(v.split(","));
                            case "--intervals" -> intervals = Arrays.stream(v.split(",")).map(Integer::parseInt).toList();
                            case "--dtype" -> dtype = DType.parse(v);
                            case "--batch" -> batch = Integer.parseInt(v);
                            case "--seq-len" -> seqLen = Integer.parseInt(v);
                            case "--warmup" -> warmup = Integer.parseInt(v);
                            case "--repeats" -> repeats = Integer.parseInt(v);
                            case "--chain" -> {
                                chains = List.of(v.split(","));
                                for (String c : chains) {
                                    if (!List.of("auto", "1", "2", "4").contains(c)) {
                                        throw new IllegalArgumentException("--chain takes auto, 1, 2, 4, not " + c);
                                    }
                                }
                            }
                            default -> throw new IllegalArgumentException("unknown option " + a);
                        }
                    }
                }
            }
        } catch (IllegalArgumentException e) {
            err.println("backward timing: " + e.getMessage());
            return 2;
        }
        List<String> summary = new ArrayList<>();
        for (String size : sizes) {
            for (TttType type : types) {
                for (String w : what) {
                    boolean inner = w.equals("inner");
                    for (int c : intervals) {
                        for (String chain : type == TttType.MLP && c == 1 ? chains : List.of("auto")) {
                            BenchConfig config = new BenchConfig(size, type, true, batch, seqLen, 16, dtype, warmup,
                                    repeats, false, inner, c, null, BackendKind.AUTO, false, null);
                            String label = String.format(Locale.ROOT, "%-5s %-6s %-13s %-8s B=%d L=%d c=%-2d", size,
                                    type.flag(), inner ? "inner-bwd" : "full-bwd", dtype.flag(), batch, seqLen, c)
                                    + (chain.equals("auto") ? "" : " chain=" + chain) + (inner ? "" : GpuTiming.switches());
                            Integer blocks = chain.equals("auto") ? null : Integer.valueOf(chain);
                            try {
                                summary.addAll(time(config, label, warmup, repeats, breakdown, graph, blocks, out));
                            } catch (RuntimeException e) {
                                out.println(label + "  FAILED: " + e);
                                summary.add(label + "  FAILED: " + e.getMessage());
                            }
                        }
                    }
                }
            }
        }
        out.println();
        out.println("summary (device time between events; ms)");
        summary.forEach(out::println);
        return 0;
    }

    private static List<String> time(BenchConfig config, String label, int warmup, int repeats, boolean breakdown,
            boolean graph, Integer chain, PrintStream out) {
        List<String> lines = new ArrayList<>();
        try (Backend b = Backends.open(config.backend(), config.dtype(), config.tf32())) {
            if (!(b instanceof GpuBackend g)) throw new IllegalStateException("no GPU backend");
            if (chain != null) g.forceInnerBackwardChain(chain);
            GpuRuntime rt = g.runtime();
            Workload.Kind kind = config.innerOnly() ? Workload.Kind.INNER_BACKWARD : Workload.Kind.BACKWARD;
            OpTimer timer = breakdown ? new OpTimer(g) : null;
            Workload wl = Workload.build(timer != null ? timer.proxy() : b, config, kind);
            b.synchronize();
            if (timer != null) timer.on = false;
            double[] eager = measure(rt, wl::run, warmup, repeats);
            String mem = String.format(Locale.ROOT, "peak %.3f GiB", b.peakMemoryBytes() / (double) (1L << 30));
            lines.add(label + "  ops:   " + stats(eager) + "  " + mem);
            out.println(lines.getLast());
            if (graph) {
                Runnable replay = g.graph(wl::run);
                double[] gr = measure(rt, replay, warmup, repeats);
                lines.add(label + "  graph: " + stats(gr));
                out.println(lines.getLast());
            }
            if (timer != null) timer.breakdown(wl, b, label, out);
            out.println("  device: " + b.device());
            out.flush();
        }
        return lines;
    }

    static String stats(double[] ms) {
        double[] s = ms.clone();
        Arrays.sort(s);
        double mean = Arrays.stream(s).average().orElse(Double.NaN);
        double median = s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
        return String.format(Locale.ROOT, "mean %9.3f  median %9.3f  min %9.3f  max %9.3f", mean, median, s[0],
                s[s.length - 1]);
    }

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

    /** A backend that records device events around each op while {@code on}, for a per-op breakdown. */
    static final class OpTimer {
        private final GpuBackend g;
        private final GpuRuntime rt;
        private final List<long[]> events = new ArrayList<>();
        private final List<String> names = new ArrayList<>();
        boolean on;

        OpTimer(GpuBackend g) {
            this.g = g;
            this.rt = g.runtime();
        }

        Backend proxy() {
            return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                    (p, m, a) -> invoke(m, a));
        }

        private Object invoke(Method m, Object[] a) throws Throwable {
            boolean timed = on && OPS.contains(m.getName());
            long[] ev = null;
            if (timed) {
                ev = new long[] {rt.createEvent(), rt.createEvent()};
                rt.recordEvent(ev[0]);
            }
            try {
                return m.invoke(g, a);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            } finally {
                if (timed) {
                    rt.recordEvent(ev[1]);
                    events.add(ev);
                    names.add(label(m.getName(), a));
                }
            }
        }

        private static String label(String op, Object[] a) {
            if (op.equals("fillAll")) return "fillAll (" + ((List<?>) a[0]).size() + " tensors)";
            if (op.equals("matmulBatched")) {
                // matmulBatched(a, b, c, m, n, k, transA, transB, accumulate): which operand is shared says which
                // products they are (one input to several weights, or several weight gradients from one input).
                List<?> la = (List<?>) a[0];
                List<?> lb = (List<?>) a[1];
                String shared = la.size() == 1 && lb.size() > 1 ? ", A shared" : lb.size() == 1 && la.size() > 1
                        ? ", B shared" : "";
                return String.format(Locale.ROOT, "matmulBatched %d× %dx%dx%d%s%s%s", ((List<?>) a[2]).size(),
                        (int) a[3], (int) a[4], (int) a[5], (boolean) a[6] ? " Aᵀ" : "", (boolean) a[7] ? " Bᵀ" : "",
                        shared);
            }
            if (op.equals("matmulSum")) {
                // matmulSum(a, b, c, m, n, k, transA, transB, accumulate): several products summed into one result.
                return String.format(Locale.ROOT, "matmulSum %d× %dx%dx%d%s%s",
                        Math.max(((List<?>) a[0]).size(), ((List<?>) a[1]).size()), (int) a[3], (int) a[4], (int) a[5],
                        (boolean) a[6] ? " Aᵀ" : "", (boolean) a[7] ? " Bᵀ" : "");
            }
            if (!op.equals("matmul")) return op;
            // matmul(a, b, c, m, n, k, transA, transB, accumulate)
            return String.format(Locale.ROOT, "matmul %dx%dx%d%s%s", (int) a[3], (int) a[4], (int) a[5],
                    (boolean) a[6] ? " Aᵀ" : "", (boolean) a[7] ? " Bᵀ" : "");
        }

        /** Times each op of one more run of {@code wl} between its own events and prints the table. */
        void breakdown(Workload wl, Backend b, String label, PrintStream out) {
            on = true;
            wl.run();
            b.synchronize();
            on = false;
            out.println(label + "  breakdown of one run (each op between its own events):");
            report(out);
        }

        void report(PrintStream out) {
            Map<String, double[]> byOp = new LinkedHashMap<>();
            double total = 0;
            for (int i = 0; i < events.size(); i++) {
                long[] ev = events.get(i);
                double ms = rt.elapsedMillis(ev[0], ev[1]);
                total += ms;
                double[] acc = byOp.computeIfAbsent(names.get(i), k -> new double[2]);
                acc[0] += ms;
                acc[1]++;
                rt.destroyEvent(ev[0]);
                rt.destroyEvent(ev[1]);
            }
            events.clear();
            names.clear();
            final double sum = total;
            byOp.entrySet().stream().sorted((x, y) -> Double.compare(y.getValue()[0], x.getValue()[0]))
                    .forEach(e -> out.printf(Locale.ROOT, "    %-36s %9.3f ms %5.1f%%  (%d calls)%n", e.getKey(),
                            e.getValue()[0], 100 * e.getValue()[0] / sum, (int) e.getValue()[1]));
            out.printf(Locale.ROOT, "    %-36s %9.3f ms%n", "sum of op times", sum);
        }
    }
}
