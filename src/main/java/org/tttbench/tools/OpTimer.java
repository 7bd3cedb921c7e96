package org.tttbench.tools;

import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.tttbench.backend.Backend;
import org.tttbench.backend.TttOps;
import org.tttbench.gpu.GpuBackend;
import org.tttbench.gpu.GpuRuntime;

/**
 * A backend that records device events around each op of the model while {@code on}, for a
 * per-op breakdown of one run: each op between its own events, so the shares are exact while
 * their sum leaves out the gaps between ops.
 */
final class OpTimer {

    /** The ops a breakdown names: those of {@link TttOps}; anything else a backend does is not an op of the model. */
    private static final Set<String> OPS = opNames();

    private final GpuBackend g;
    private final GpuRuntime rt;
    private final List<long[]> events = new ArrayList<>();
    private final List<String> names = new ArrayList<>();
    private boolean on;

    OpTimer(GpuBackend g) {
        this.g = g;
        this.rt = g.runtime();
    }

    private static Set<String> opNames() {
        Set<String> s = new java.util.HashSet<>();
        for (Method m : TttOps.class.getDeclaredMethods()) {
            if (!java.lang.reflect.Modifier.isStatic(m.getModifiers())) s.add(m.getName());
        }
        return Set.copyOf(s);
    }

    /** The backend to build the work on: the GPU backend, each op timed while a breakdown runs. */
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
        return switch (op) {
            case "fillAll" -> "fillAll (" + ((List<?>) a[0]).size() + " tensors)";
            // matmulBatched(a, b, c, m, n, k, transA, transB, accumulate): which operand is shared says which
            // products they are (one input to several weights, or several weight gradients from one input).
            case "matmulBatched" -> {
                List<?> la = (List<?>) a[0];
                List<?> lb = (List<?>) a[1];
                String shared = la.size() == 1 && lb.size() > 1 ? ", A shared"
                        : lb.size() == 1 && la.size() > 1 ? ", B shared" : "";
                yield String.format(Locale.ROOT, "matmulBatched %d× %s%s", ((List<?>) a[2]).size(), dims(a), shared);
            }
            case "matmulSum" -> String.format(Locale.ROOT, "matmulSum %d× %s",
                    Math.max(((List<?>) a[0]).size(), ((List<?>) a[1]).size()), dims(a));
            case "matmul" -> "matmul " + dims(a);
            default -> op;
        };
    }

    /** "MxNxK" and the transposes of a product's (…, m, n, k, transA, transB, …) arguments. */
    private static String dims(Object[] a) {
        return String.format(Locale.ROOT, "%dx%dx%d%s%s", (int) a[3], (int) a[4], (int) a[5],
                (boolean) a[6] ? " Aᵀ" : "", (boolean) a[7] ? " Bᵀ" : "");
    }

    /** Times each op of one more run of {@code work} between its own events and prints the table. */
    void breakdown(Runnable work, String label, PrintStream out) {
        on = true;
        work.run();
        g.synchronize();
        on = false;
        out.println(label + "  breakdown of one run (each op between its own events):");
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
