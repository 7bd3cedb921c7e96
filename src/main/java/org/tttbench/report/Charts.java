package org.tttbench.report;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Polygon;
import java.awt.Shape;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.text.DecimalFormat;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.ToDoubleFunction;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberTickUnit;
import org.jfree.chart.axis.ValueAxis;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.DefaultDrawingSupplier;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.category.LineAndShapeRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.tttbench.config.Preset;
import org.tttbench.sweep.Config;
import org.tttbench.sweep.ResultFile;

/**
 * The report's charts. A chart holds one direction and one scope (forward or backward, full
 * model or inner loop only), so the lines on it measure the same work; it varies one setting,
 * and holds every other at the combination that has the most results (named in its
 * subtitle). Every line has a colour and a marker of its own, and a value axis spanning more
 * than 10× is logarithmic, so a fast and a slow implementation are both readable.
 */
final class Charts {

    private Charts() {}

    /**
     * A chart of the report.
     *
     * @param png     the image, or null when the results hold nothing for this plot
     * @param series  the lines, in legend order
     * @param colours each line's colour, in the same order
     * @param logAxis whether the value axis is logarithmic
     */
    record Chart(String title, String subtitle, String file, byte[] png, List<String> series, List<Color> colours,
                 boolean logAxis) {

        boolean drawn() {
            return png != null;
        }

        static Chart notDrawn(String title, String file) {
            return new Chart(title, "", file, null, List.of(), List.of(), false);
        }
    }

    /** The direction and scope of a chart: what every result on it measures. */
    enum Work {
        FULL_FWD(false, false), FULL_BWD(true, false), INNER_FWD(false, true), INNER_BWD(true, true);

        final boolean backward;
        final boolean innerOnly;

        Work(boolean backward, boolean innerOnly) {
            this.backward = backward;
            this.innerOnly = innerOnly;
        }

        boolean holds(Config c) {
            return c.backward() == backward && c.innerOnly() == innerOnly;
        }

        String title() {
            return (backward ? "Forward+backward" : "Forward") + ", " + (innerOnly ? "inner loop only" : "full model");
        }

        String file() {
            return (backward ? "bwd" : "fwd") + "-" + (innerOnly ? "inner" : "full");
        }
    }

    private static final int WIDTH = 900;
    private static final int HEIGHT = 480;
    /** Values that span more than this factor are drawn on a log axis. */
    static final double LOG_SPAN = 10;

    /** Readable on white, and far apart; lines beyond these get colours spread around the hue circle. */
    private static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c),
            new Color(0xd62728), new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f),
            new Color(0xbcbd22), new Color(0x17becf)};

    /** Every chart of the report in the page's order, drawn where the results hold data for it. */
    static List<Chart> all(List<ResultFile> ok) {
        List<Chart> charts = new ArrayList<>();
        for (Work w : Work.values()) {
            charts.add(bySize(ok, w));
            charts.add(line(ok, w, "throughput by batch size", "by-batch", f -> true,
                    c -> c.modelSize() + ", seq-len " + c.seqLen() + ", mini-batch " + c.miniBatch() + ", "
                            + c.dtype().flag() + ckpt(c), Config::batch, "batch", f -> f.number("throughput"),
                    "tokens/s"));
            charts.add(line(ok, w, "throughput by mini-batch size", "by-mini-batch",
                    f -> f.config().checkpointInterval() == 1,
                    c -> c.modelSize() + ", batch " + c.batch() + ", seq-len " + c.seqLen() + ", " + c.dtype().flag(),
                    Config::miniBatch, "mini-batch size", f -> f.number("throughput"), "tokens/s"));
            if (w.innerOnly) {
                // One TTT layer: its heads run side by side, so time per head shows what a head dim costs.
                charts.add(line(ok, w, "time per head by head dim", "by-head-dim",
                        f -> f.config().checkpointInterval() == 1 && headDim(f.config()) != null,
                        c -> "batch " + c.batch() + ", seq-len " + c.seqLen() + ", mini-batch " + c.miniBatch() + ", "
                                + c.dtype().flag(), Charts::headDim, "head dim",
                        f -> f.number("time_ms") / Preset.byName(f.config().modelSize()).heads(), "ms per head"));
            }
            if (!w.backward) continue;
            charts.add(line(ok, w, "time by checkpoint interval", "ckpt-time", f -> true,
                    Charts::checkpointContext, Config::checkpointInterval, "checkpoint interval",
                    f -> f.number("time_ms"), "ms"));
            charts.add(line(ok, w, "peak device memory by checkpoint interval", "ckpt-memory",
                    f -> Double.isFinite(f.peakMemoryBytes()), Charts::checkpointContext, Config::checkpointInterval,
                    "checkpoint interval", f -> f.peakMemoryBytes() / (1 << 20), "MiB"));
        }
        return charts;
    }

    /** The head dim of a preset's model, or null for a model size this suite does not know. */
    private static Integer headDim(Config c) {
        try {
            Preset p = Preset.byName(c.modelSize());
            return p.hidden() / p.heads();
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    private static String ckpt(Config c) {
        return c.backward() ? ", ckpt " + c.checkpointInterval() : "";
    }

    private static String checkpointContext(Config c) {
        return c.modelSize() + ", batch " + c.batch() + ", seq-len " + c.seqLen() + ", mini-batch " + c.miniBatch()
                + ", " + c.dtype().flag();
    }

    private static String series(Config c) {
        return c.implementation() + " " + c.tttType().flag();
    }

    /** Throughput by model size (sizes in preset order), one line per implementation and inner type. */
    private static Chart bySize(List<ResultFile> ok, Work w) {
        String title = w.title() + ": throughput by model size";
        Predicate<ResultFile> keep = f -> w.holds(f.config()) && f.config().checkpointInterval() == 1
                && Double.isFinite(f.number("throughput"));
        Function<Config, String> context = c -> "batch " + c.batch() + ", seq-len " + c.seqLen() + ", mini-batch "
                + c.miniBatch() + ", " + c.dtype().flag();
        List<ResultFile> rows = commonest(ok.stream().filter(keep).toList(), context);
        if (rows.stream().map(f -> f.config().modelSize()).distinct().count() < 2) {
            return Chart.notDrawn(title, w.file() + "-by-size.png"); // one size is a point, not a trend
        }
        List<ResultFile> bySize = new ArrayList<>(rows);
        bySize.sort(Comparator.comparingInt((ResultFile f) -> ReportCommand.sizeOrder(f.config().modelSize())));
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        Map<String, Integer> lines = new TreeMap<>();
        for (ResultFile f : rows) lines.put(series(f.config()), 0);
        // Rows in name order first, so the dataset's series indices are those of `lines` (and its colours).
        for (String s : lines.keySet()) data.addValue(null, s, bySize.getFirst().config().modelSize());
        for (ResultFile f : bySize) data.addValue(f.number("throughput"), series(f.config()), f.config().modelSize());
        JFreeChart chart = ChartFactory.createLineChart(title, "model size", "tokens/s", data, PlotOrientation.VERTICAL,
                true, false, false);
        String subtitle = context.apply(rows.getFirst().config());
        chart.addSubtitle(new TextTitle(subtitle));
        CategoryPlot plot = chart.getCategoryPlot();
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
        LineAndShapeRenderer renderer = new LineAndShapeRenderer(true, true);
        List<Color> colours = style(data.getRowCount(), renderer::setSeriesPaint, renderer::setSeriesShape,
                i -> renderer.setSeriesStroke(i, new BasicStroke(2f)));
        plot.setRenderer(renderer);
        boolean log = valueAxis(rows.stream().mapToDouble(f -> f.number("throughput")).toArray(), "tokens/s",
                plot::setRangeAxis);
        return new Chart(title, subtitle, w.file() + "-by-size.png", png(chart), List.copyOf(lines.keySet()), colours,
                log);
    }

    /** A line per series over a power-of-two setting, the other settings held at their commonest values. */
    private static Chart line(List<ResultFile> ok, Work w, String what, String file, Predicate<ResultFile> keep,
                               Function<Config, String> context, Function<Config, Integer> x, String xLabel,
                               ToDoubleFunction<ResultFile> y, String yLabel) {
        String title = w.title() + ": " + what;
        List<ResultFile> candidates = ok.stream().filter(f -> w.holds(f.config())).filter(keep)
                .filter(f -> Double.isFinite(y.applyAsDouble(f)) && y.applyAsDouble(f) > 0).toList();
        // Only contexts where the setting actually varies make a line worth drawing.
        Map<String, List<ResultFile>> byContext = new LinkedHashMap<>();
        for (ResultFile f : candidates) byContext.computeIfAbsent(context.apply(f.config()), k -> new ArrayList<>()).add(f);
        List<ResultFile> rows = byContext.values().stream()
                .filter(g -> g.stream().map(f -> x.apply(f.config())).distinct().count() >= 2)
                .max(Comparator.comparingInt(List::size))
                .orElse(List.of());
        if (rows.isEmpty()) return Chart.notDrawn(title, w.file() + "-" + file + ".png");
        Map<String, XYSeries> lines = new TreeMap<>();
        for (ResultFile f : rows) {
            lines.computeIfAbsent(series(f.config()), XYSeries::new).add(x.apply(f.config()).doubleValue(),
                    y.applyAsDouble(f));
        }
        XYSeriesCollection data = new XYSeriesCollection();
        lines.values().forEach(data::addSeries);
        JFreeChart chart = ChartFactory.createXYLineChart(title, xLabel, yLabel, data, PlotOrientation.VERTICAL, true,
                false, false);
        String subtitle = context.apply(rows.getFirst().config());
        chart.addSubtitle(new TextTitle(subtitle));
        XYPlot plot = chart.getXYPlot();
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
        // Batch, mini-batch and checkpoint sizes are swept in powers of two: a log2 axis spaces them evenly.
        LogAxis axis = new LogAxis(xLabel);
        axis.setBase(2);
        axis.setTickUnit(new NumberTickUnit(1));
        axis.setNumberFormatOverride(new DecimalFormat("0"));
        axis.setSmallestValue(0.5);
        plot.setDomainAxis(axis);
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, true);
        List<Color> colours = style(data.getSeriesCount(), renderer::setSeriesPaint, renderer::setSeriesShape,
                i -> renderer.setSeriesStroke(i, new BasicStroke(2f)));
        plot.setRenderer(renderer);
        boolean log = valueAxis(rows.stream().mapToDouble(y).toArray(), yLabel, plot::setRangeAxis);
        return new Chart(title, subtitle, w.file() + "-" + file + ".png", png(chart), List.copyOf(lines.keySet()),
                colours, log);
    }

    private interface SeriesPaint {
        void set(int series, java.awt.Paint paint);
    }

    private interface SeriesShape {
        void set(int series, Shape shape);
    }

    /** Gives each of {@code n} series its own colour and marker; returns the colours. */
    private static List<Color> style(int n, SeriesPaint paint, SeriesShape shape,
                                     java.util.function.IntConsumer stroke) {
        List<Color> colours = colours(n);
        List<Shape> markers = markers(n);
        for (int i = 0; i < n; i++) {
            paint.set(i, colours.get(i));
            shape.set(i, markers.get(i));
            stroke.accept(i);
        }
        return colours;
    }

    /** {@code n} distinct colours: the palette first, then hues spread evenly, darker on each round. */
    static List<Color> colours(int n) {
        List<Color> out = new ArrayList<>();
        for (int i = 0; i < n && i < PALETTE.length; i++) out.add(PALETTE[i]);
        int extra = n - out.size();
        for (int i = 0; i < extra; i++) {
            Color c = Color.getHSBColor((i * 0.618034f) % 1f, 0.75f, 0.85f - 0.25f * (i % 3) / 2f);
            while (out.contains(c)) c = c.darker();
            out.add(c);
        }
        return out;
    }

    /** {@code n} distinct markers: JFreeChart's ten, then regular polygons of ever more corners. */
    static List<Shape> markers(int n) {
        List<Shape> out = new ArrayList<>(List.of(DefaultDrawingSupplier.createStandardSeriesShapes()));
        for (int corners = 5; out.size() < n; corners++) {
            Polygon p = new Polygon();
            for (int k = 0; k < corners; k++) {
                double a = 2 * Math.PI * k / corners;
                p.addPoint((int) Math.round(5 * Math.sin(a)), (int) Math.round(-5 * Math.cos(a)));
            }
            out.add(p);
        }
        return out.subList(0, n);
    }

    private interface AxisSetter {
        void set(ValueAxis axis);
    }

    /** A log value axis when the values span more than {@link #LOG_SPAN}×; returns whether it is one. */
    private static boolean valueAxis(double[] values, String label, AxisSetter set) {
        double min = Double.POSITIVE_INFINITY;
        double max = 0;
        for (double v : values) {
            if (!(v > 0) || !Double.isFinite(v)) continue;
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        if (!(max / min > LOG_SPAN)) return false;
        LogAxis axis = new LogAxis(label);
        axis.setSmallestValue(min / 2);
        axis.setNumberFormatOverride(new DecimalFormat("0.###E0"));
        set.set(axis);
        return true;
    }

    /** The rows of the context (the other settings) that has the most results. */
    private static List<ResultFile> commonest(List<ResultFile> rows, Function<Config, String> context) {
        Map<String, List<ResultFile>> groups = new LinkedHashMap<>();
        for (ResultFile f : rows) groups.computeIfAbsent(context.apply(f.config()), k -> new ArrayList<>()).add(f);
        return groups.values().stream().max(Comparator.comparingInt(List::size)).orElse(List.of());
    }

    private static byte[] png(JFreeChart chart) {
        chart.setBackgroundPaint(Color.WHITE);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try {
            ChartUtils.writeChartAsPNG(bytes, chart, WIDTH, HEIGHT);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }
}
