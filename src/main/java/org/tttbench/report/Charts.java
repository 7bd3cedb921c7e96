package org.tttbench.report;

import java.awt.BasicStroke;
import java.awt.Color;
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
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.tttbench.sweep.Config;
import org.tttbench.sweep.ResultFile;

/**
 * The report's charts. A sweep varies many settings at once, and each chart shows the
 * effect of one: every other setting is held at the combination that has the most results
 * (named in the chart's subtitle), so a chart never mixes, say, two sequence lengths.
 */
final class Charts {

    private Charts() {}

    /**
     * A drawn chart.
     *
     * @param png   the image, or null when the results hold nothing for this plot
     * @param needs what results the plot is drawn from, for the page when there are none
     */
    record Chart(String title, String subtitle, String file, byte[] png, String needs) {}

    private static final int WIDTH = 900;
    /** JFreeChart's default series colours include yellow, unreadable on white; these are not. */
    private static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c),
            new Color(0xd62728), new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f),
            new Color(0xbcbd22), new Color(0x17becf)};
    private static final int HEIGHT = 480;

    static List<Chart> all(List<ResultFile> ok) {
        List<Chart> charts = new ArrayList<>();
        charts.add(bySize(ok, false));
        charts.add(bySize(ok, true));
        charts.add(line(ok, "Inner loop only: throughput by batch size", "inner-by-batch.png",
                "inner-only results at two or more batch sizes", f -> f.config().innerOnly(),
                c -> c.modelSize() + ", seq-len " + c.seqLen() + ", mini-batch " + c.miniBatch() + ", " + c.dtype().flag()
                        + ckpt(c),
                c -> c.implementation() + " " + c.tttType().flag() + " " + c.direction(), Config::batch, "batch",
                f -> f.number("throughput"), "tokens/s"));
        charts.add(line(ok, "Mini-batch scaling: throughput by mini-batch size", "mini-batch-scaling.png",
                "results at two or more mini-batch sizes", f -> f.config().checkpointInterval() == 1,
                c -> c.modelSize() + ", batch " + c.batch() + ", seq-len " + c.seqLen() + ", " + c.dtype().flag(),
                c -> c.implementation() + " " + c.tttType().flag() + " " + c.direction(), Config::miniBatch,
                "mini-batch size", f -> f.number("throughput"), "tokens/s"));
        charts.add(line(ok, "Checkpoint interval: time of forward+backward", "checkpoint-time.png",
                "backward results at two or more checkpoint intervals", f -> f.config().backward(),
                Charts::checkpointContext, c -> c.implementation() + " " + c.tttType().flag() + " " + c.direction(),
                Config::checkpointInterval, "checkpoint interval", f -> f.number("time_ms"), "ms"));
        charts.add(line(ok, "Checkpoint interval: peak device memory", "checkpoint-memory.png",
                "backward results that report peak memory, at two or more checkpoint intervals",
                f -> f.config().backward() && Double.isFinite(f.peakMemoryBytes()), Charts::checkpointContext,
                c -> c.implementation() + " " + c.tttType().flag() + " " + c.direction(), Config::checkpointInterval,
                "checkpoint interval", f -> f.peakMemoryBytes() / (1 << 20), "MiB"));
        return charts;
    }

    private static String ckpt(Config c) {
        return c.backward() && c.checkpointInterval() != 1 ? ", ckpt " + c.checkpointInterval() : "";
    }

    private static String checkpointContext(Config c) {
        return c.modelSize() + ", batch " + c.batch() + ", seq-len " + c.seqLen() + ", mini-batch " + c.miniBatch()
                + ", " + c.dtype().flag();
    }

    /** Throughput by model size, one bar per implementation and inner type. */
    private static Chart bySize(List<ResultFile> ok, boolean backward) {
        String title = backward ? "Throughput by model size: forward+backward" : "Throughput by model size: forward";
        String file = backward ? "throughput-by-size-bwd.png" : "throughput-by-size-fwd.png";
        Predicate<ResultFile> keep = f -> !f.config().innerOnly() && f.config().backward() == backward
                && f.config().checkpointInterval() == 1 && Double.isFinite(f.number("throughput"));
        Function<Config, String> context = c -> "batch " + c.batch() + ", seq-len " + c.seqLen() + ", mini-batch "
                + c.miniBatch() + ", " + c.dtype().flag();
        List<ResultFile> rows = commonest(ok.stream().filter(keep).toList(), context);
        String needs = "full-model " + (backward ? "backward" : "forward") + " results";
        if (rows.isEmpty()) return new Chart(title, "", file, null, needs);
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        List<ResultFile> bySize = new ArrayList<>(rows);
        bySize.sort(Comparator.comparingInt((ResultFile f) -> ReportCommand.sizeOrder(f.config().modelSize())));
        // Sizes first, in preset order, so the category axis reads small to large.
        for (ResultFile f : bySize) {
            Config c = f.config();
            data.addValue(f.number("throughput"), c.implementation() + " " + c.tttType().flag(), c.modelSize());
        }
        JFreeChart chart = ChartFactory.createBarChart(title, "model size", "tokens/s", data, PlotOrientation.VERTICAL,
                true, false, false);
        String subtitle = context.apply(rows.getFirst().config());
        chart.addSubtitle(new TextTitle(subtitle));
        CategoryPlot plot = chart.getCategoryPlot();
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
        for (int i = 0; i < data.getRowCount(); i++) plot.getRenderer().setSeriesPaint(i, PALETTE[i % PALETTE.length]);
        return new Chart(title, subtitle, file, png(chart), needs);
    }

    /** A line per series over a power-of-two setting, the other settings held at their commonest values. */
    private static Chart line(List<ResultFile> ok, String title, String file, String needs, Predicate<ResultFile> keep,
                              Function<Config, String> context, Function<Config, String> series,
                              Function<Config, Integer> x, String xLabel, ToDoubleFunction<ResultFile> y,
                              String yLabel) {
        List<ResultFile> candidates = ok.stream().filter(keep).filter(f -> Double.isFinite(y.applyAsDouble(f))).toList();
        // Only contexts where the setting actually varies make a line worth drawing.
        Map<String, List<ResultFile>> byContext = new LinkedHashMap<>();
        for (ResultFile f : candidates) byContext.computeIfAbsent(context.apply(f.config()), k -> new ArrayList<>()).add(f);
        List<ResultFile> rows = byContext.values().stream()
                .filter(g -> g.stream().map(f -> x.apply(f.config())).distinct().count() >= 2)
                .max(Comparator.comparingInt(List::size))
                .orElse(List.of());
        if (rows.isEmpty()) return new Chart(title, "", file, null, needs);
        Map<String, XYSeries> lines = new TreeMap<>();
        for (ResultFile f : rows) {
            lines.computeIfAbsent(series.apply(f.config()), XYSeries::new).add(x.apply(f.config()).doubleValue(),
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
        for (int i = 0; i < data.getSeriesCount(); i++) {
            renderer.setSeriesStroke(i, new BasicStroke(2f));
            renderer.setSeriesPaint(i, PALETTE[i % PALETTE.length]);
        }
        plot.setRenderer(renderer);
        return new Chart(title, subtitle, file, png(chart), needs);
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
