package org.tttbench.report;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import org.tttbench.config.Preset;
import org.tttbench.io.AtomicFile;
import org.tttbench.sweep.Config;
import org.tttbench.sweep.ResultFile;
import org.tttbench.sweep.ResultsDir;

/**
 * {@code report RESULTS_DIR [--out DIR] [--baseline IMPL]}: one self-contained HTML page
 * (charts inlined) with PNG charts beside it, drawn from a sweep's results directory: the plots
 * researchers make of these sweeps, the speedup of every implementation against a baseline
 * one, a table of every result, and the failed runs with their reason. Every file is written
 * beside and renamed, so a browser never shows half a page.
 */
public final class ReportCommand {

    static final String USAGE = "usage: report RESULTS_DIR [--out DIR] [--baseline IMPLEMENTATION]"
            + "   (default DIR: RESULTS_DIR/report)";

    private ReportCommand() {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        // Before any AWT class loads: charts are drawn off-screen, also on machines with no display.
        System.setProperty("java.awt.headless", "true");
        Path results = null;
        Path outDir = null;
        String baseline = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) {
                out.println(USAGE);
                return 0;
            } else if (a.equals("--out")) {
                if (i + 1 >= args.length) return usage(err, "--out needs a directory");
                outDir = Path.of(args[++i]);
            } else if (a.equals("--baseline")) {
                if (i + 1 >= args.length) return usage(err, "--baseline needs an implementation name");
                baseline = args[++i];
            } else if (a.startsWith("-")) {
                return usage(err, "unknown option " + a);
            } else if (results != null) {
                return usage(err, "one results directory only, got " + results + " and " + a);
            } else {
                results = Path.of(a);
            }
        }
        if (results == null) return usage(err, "a results directory is required");
        if (!Files.isDirectory(results)) return usage(err, results + " is not a directory");
        if (outDir == null) outDir = results.resolve("report");
        if (Files.exists(outDir) && !Files.isDirectory(outDir)) return usage(err, "--out " + outDir + " is not a directory");
        String missing = missingChartSupport("java.desktop", "org.jfree.chart.ChartFactory");
        if (missing != null) return usage(err, missing);
        try {
            ResultsDir.Listing listing = new ResultsDir(results).list();
            if (baseline != null) {
                List<String> impls = listing.of(ResultFile.Kind.SUCCESS).stream()
                        .map(f -> f.config().implementation()).distinct().sorted().toList();
                if (!impls.contains(baseline)) {
                    return usage(err, "--baseline " + baseline + ": no result of that implementation in " + results
                            + " (results of: " + (impls.isEmpty() ? "none" : String.join(", ", impls)) + ")");
                }
            }
            Path page = write(listing, results, outDir, baseline);
            err.println("report: wrote " + page);
            return 0;
        } catch (IOException e) {
            err.println("report: " + e);
            return 1;
        } catch (UncheckedIOException e) {
            err.println("report: " + e.getCause());
            return 1;
        }
    }

    /**
     * Why this runtime cannot draw the charts, or null: the bundle's runtime and jar carry only
     * what benchmarks need, without {@code module} (AWT) and the chart library ({@code chartClass}).
     */
    static String missingChartSupport(String module, String chartClass) {
        String what = null;
        if (ModuleLayer.boot().findModule(module).isEmpty()) {
            what = "this Java runtime has no " + module;
        } else {
            try {
                Class.forName(chartClass, false, ReportCommand.class.getClassLoader());
            } catch (ClassNotFoundException e) {
                what = "this jar has no chart library (" + chartClass + ")";
            }
        }
        return what == null ? null : what + ", which the charts need (the bundle runs benchmarks only); run report"
                + " from the full build on a JDK 25: java -jar target/benchmarks.jar report DIR";
    }

    private static int usage(PrintStream err, String message) {
        err.println("report: " + message);
        return 2;
    }

    /**
     * Writes index.html and the charts' PNGs into {@code outDir}; returns the page.
     *
     * @param baseline the implementation the speedup table divides by, or null for none
     */
    public static Path write(ResultsDir.Listing listing, Path results, Path outDir, String baseline)
            throws IOException {
        List<ResultFile> ok = sorted(listing.of(ResultFile.Kind.SUCCESS));
        Files.createDirectories(outDir);
        StringBuilder html = new StringBuilder();
        html.append("""
                <!DOCTYPE html>
                <html lang="en"><head><meta charset="utf-8"><title>tttbench sweep report</title>
                <style>
                body { font-family: sans-serif; margin: 2em; color: #222; }
                table { border-collapse: collapse; font-size: 0.85em; }
                th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
                th { background: #eee; } td.t { text-align: left; }
                img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
                .note { color: #666; }
                </style></head><body>
                """);
        html.append("<h1>tttbench sweep report</h1>\n<p class=\"note\">")
                .append(esc(results.toAbsolutePath().normalize().toString())).append(" · ")
                .append(ok.size()).append(" results, ").append(listing.of(ResultFile.Kind.FAILED).size())
                .append(" failed, ").append(listing.of(ResultFile.Kind.INVALID).size()).append(" invalid · ")
                .append(esc(ZonedDateTime.now().format(DateTimeFormatter.RFC_1123_DATE_TIME))).append("</p>\n");

        html.append("<h2>Charts</h2>\n");
        List<Charts.Chart> charts = Charts.all(ok);
        for (Charts.Chart chart : charts) {
            if (!chart.drawn()) continue;
            html.append("<h3>").append(esc(chart.title())).append("</h3>\n");
            AtomicFile.write(outDir.resolve(chart.file()), chart.png());
            html.append("<p class=\"note\">").append(esc(chart.subtitle())).append(" · <a href=\"")
                    .append(esc(chart.file())).append("\">").append(esc(chart.file())).append("</a></p>\n")
                    .append("<img alt=\"").append(esc(chart.title())).append("\" src=\"data:image/png;base64,")
                    .append(Base64.getEncoder().encodeToString(chart.png())).append("\">\n");
        }

        List<String> notDrawn = charts.stream().filter(c -> !c.drawn()).map(Charts.Chart::title).toList();
        if (!notDrawn.isEmpty()) {
            html.append("<p class=\"note\">No results for these plots (they need a setting swept at two values or"
                    + " more): ").append(esc(String.join("; ", notDrawn))).append(".</p>\n");
        }
        if (baseline != null) Speedups.html(html, ok, baseline);
        else if (!ok.isEmpty()) {
            html.append("<p class=\"note\">For a table of speedups against one implementation, run report with"
                    + " --baseline IMPLEMENTATION.</p>\n");
        }

        html.append("<h2>Results</h2>\n");
        resultsTable(html, ok);
        html.append("<h2>Failed runs</h2>\n");
        problemTable(html, sorted(listing.of(ResultFile.Kind.FAILED)), "none");
        if (!listing.of(ResultFile.Kind.INVALID).isEmpty()) {
            html.append("<h2>Invalid result files</h2>\n<p class=\"note\">Remove them with sweep --clean-invalid;"
                    + " the next sweep runs them again.</p>\n");
            problemTable(html, sorted(listing.of(ResultFile.Kind.INVALID)), "none");
        }
        html.append("</body></html>\n");
        Path page = outDir.resolve("index.html");
        AtomicFile.write(page, html.toString());
        return page;
    }

    private static void resultsTable(StringBuilder html, List<ResultFile> ok) {
        if (ok.isEmpty()) {
            html.append("<p class=\"note\">No successful results.</p>\n");
            return;
        }
        html.append("<table>\n<tr><th>implementation</th><th>model size</th><th>ttt type</th><th>benchmark</th>"
                + "<th>batch</th><th>seq len</th><th>mini-batch</th><th>dtype</th><th>ckpt</th><th>time ms</th>"
                + "<th>± stdev</th><th>tokens/s</th><th>peak memory MiB</th><th>params</th><th>device</th><th>sweep device</th></tr>\n");
        for (ResultFile f : ok) {
            Config c = f.config();
            html.append("<tr><td class=\"t\">").append(esc(c.implementation())).append("</td><td class=\"t\">")
                    .append(esc(c.modelSize())).append("</td><td class=\"t\">").append(c.tttType().flag())
                    .append("</td><td class=\"t\">").append(c.direction()).append("</td><td>").append(c.batch())
                    .append("</td><td>").append(c.seqLen()).append("</td><td>").append(c.miniBatch())
                    .append("</td><td class=\"t\">").append(c.dtype().flag()).append("</td><td>")
                    .append(c.checkpointInterval()).append("</td><td>").append(num(f.number("time_ms"), "%.3f"))
                    .append("</td><td>").append(num(f.number("time_ms_stdev"), "%.3f")).append("</td><td>")
                    .append(num(f.number("throughput"), "%,.0f")).append("</td><td>")
                    .append(num(f.peakMemoryBytes() / (1 << 20), "%,.1f")).append("</td><td>")
                    .append(num(f.number("num_params"), "%,.0f")).append("</td><td class=\"t\">")
                    .append(esc(f.text("device"))).append("</td><td class=\"t\">")
                    .append(esc(f.text("sweep_device"))).append("</td></tr>\n");
        }
        html.append("</table>\n");
    }

    private static void problemTable(StringBuilder html, List<ResultFile> files, String none) {
        if (files.isEmpty()) {
            html.append("<p class=\"note\">").append(none).append("</p>\n");
            return;
        }
        html.append("<table>\n<tr><th>file</th><th>reason</th></tr>\n");
        for (ResultFile f : files) {
            html.append("<tr><td class=\"t\">").append(esc(f.path().getFileName().toString()))
                    .append("</td><td class=\"t\">").append(esc(f.reason())).append("</td></tr>\n");
        }
        html.append("</table>\n");
    }

    /** Implementation, then model size in the order of SPEC §1, then the rest of the configuration. */
    static List<ResultFile> sorted(List<ResultFile> files) {
        List<ResultFile> out = new ArrayList<>(files);
        out.sort(Comparator.comparing((ResultFile f) -> f.config().implementation())
                .thenComparingInt(f -> sizeOrder(f.config().modelSize()))
                .thenComparing(f -> f.config().modelSize())
                .thenComparing(f -> f.config().tttType())
                .thenComparing(f -> f.config().innerOnly())
                .thenComparing(f -> f.config().backward())
                .thenComparing(f -> f.config().dtype())
                .thenComparingInt(f -> f.config().batch())
                .thenComparingInt(f -> f.config().seqLen())
                .thenComparingInt(f -> f.config().miniBatch())
                .thenComparingInt(f -> f.config().checkpointInterval()));
        return out;
    }

    static int sizeOrder(String modelSize) {
        try {
            return Preset.ALL.indexOf(Preset.byName(modelSize));
        } catch (IllegalArgumentException e) {
            return Integer.MAX_VALUE; // a size another suite knows and we do not: last
        }
    }

    private static String num(double x, String format) {
        return Double.isFinite(x) ? String.format(Locale.ROOT, format, x) : "";
    }

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
