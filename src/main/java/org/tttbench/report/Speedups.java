package org.tttbench.report;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import org.tttbench.config.DType;
import org.tttbench.config.Preset;
import org.tttbench.config.TttType;
import org.tttbench.sweep.Config;
import org.tttbench.sweep.ResultFile;

/**
 * The speedup of every implementation against a baseline one, per configuration: the
 * baseline's time divided by the implementation's, so 2× means twice as fast as the baseline.
 */
final class Speedups {

    private Speedups() {}

    /**
     * What two implementations must share to be compared: the whole configuration but the
     * implementation. The checkpoint interval is the one the run used, whether or not it was
     * passed, so a driver that lacks the flag (its default, 1) meets a run given 1.
     */
    record Setting(String modelSize, TttType tttType, boolean backward, boolean innerOnly, int batch, int seqLen,
                   int miniBatch, DType dtype, int checkpointInterval) {

        static Setting of(Config c) {
            return new Setting(canonicalSize(c.modelSize()), c.tttType(), c.backward(), c.innerOnly(), c.batch(),
                    c.seqLen(), c.miniBatch(), c.dtype(), c.checkpointInterval());
        }

        /** "1.3b" and "1b" are one model. */
        private static String canonicalSize(String size) {
            try {
                return Preset.byName(size).name();
            } catch (IllegalArgumentException e) {
                return size;
            }
        }
    }

    /** One row: the baseline's time and each other implementation's speedup; NaN where it has no result. */
    record Row(Setting setting, double baselineMs, Map<String, Double> speedups, Map<String, Double> timesMs) {}

    /** The rows for every configuration the baseline has, in the order of {@code ok} (sorted by the caller). */
    static List<Row> rows(List<ResultFile> ok, String baseline) {
        Map<Setting, Double> base = new LinkedHashMap<>();
        Map<Setting, Map<String, Double>> others = new LinkedHashMap<>();
        for (ResultFile f : ok) {
            Setting s = Setting.of(f.config());
            double t = f.number("time_ms");
            if (f.config().implementation().equals(baseline)) base.putIfAbsent(s, t);
            else others.computeIfAbsent(s, k -> new LinkedHashMap<>()).putIfAbsent(f.config().implementation(), t);
        }
        List<String> impls = implementations(ok, baseline);
        List<Row> rows = new ArrayList<>();
        for (Map.Entry<Setting, Double> b : base.entrySet()) {
            Map<String, Double> times = others.getOrDefault(b.getKey(), Map.of());
            Map<String, Double> speedups = new LinkedHashMap<>();
            for (String impl : impls) speedups.put(impl, b.getValue() / times.getOrDefault(impl, Double.NaN));
            rows.add(new Row(b.getKey(), b.getValue(), speedups, times));
        }
        return rows;
    }

    /** Every implementation but the baseline, by name. */
    static List<String> implementations(List<ResultFile> ok, String baseline) {
        TreeSet<String> names = new TreeSet<>();
        for (ResultFile f : ok) names.add(f.config().implementation());
        names.remove(baseline);
        return List.copyOf(names);
    }

    static void html(StringBuilder html, List<ResultFile> ok, String baseline) {
        List<String> impls = implementations(ok, baseline);
        html.append("<h2>Speedup against ").append(ReportCommand.esc(baseline)).append("</h2>\n<p class=\"note\">")
                .append(ReportCommand.esc(baseline)).append("'s time divided by each implementation's, per"
                        + " configuration: above 1× is faster than ").append(ReportCommand.esc(baseline))
                .append(". Empty: no result of that implementation.</p>\n");
        html.append("<table>\n<tr><th>model size</th><th>ttt type</th><th>benchmark</th><th>batch</th><th>seq len</th>"
                + "<th>mini-batch</th><th>dtype</th><th>ckpt</th><th>").append(ReportCommand.esc(baseline))
                .append(" ms</th>");
        for (String impl : impls) html.append("<th>").append(ReportCommand.esc(impl)).append("</th>");
        html.append("</tr>\n");
        for (Row r : rows(ok, baseline)) {
            Setting s = r.setting();
            html.append("<tr><td class=\"t\">").append(ReportCommand.esc(s.modelSize())).append("</td><td class=\"t\">")
                    .append(s.tttType().flag()).append("</td><td class=\"t\">")
                    .append((s.innerOnly() ? "inner " : "") + (s.backward() ? "bwd" : "fwd")).append("</td><td>")
                    .append(s.batch()).append("</td><td>").append(s.seqLen()).append("</td><td>").append(s.miniBatch())
                    .append("</td><td class=\"t\">").append(s.dtype().flag()).append("</td><td>")
                    .append(s.checkpointInterval()).append("</td><td>")
                    .append(String.format(Locale.ROOT, "%.3f", r.baselineMs())).append("</td>");
            for (String impl : impls) {
                double x = r.speedups().get(impl);
                html.append("<td>");
                if (Double.isFinite(x)) {
                    html.append(String.format(Locale.ROOT, "%.2f× (%.3f ms)", x, r.timesMs().get(impl)));
                }
                html.append("</td>");
            }
            html.append("</tr>\n");
        }
        html.append("</table>\n");
    }
}
