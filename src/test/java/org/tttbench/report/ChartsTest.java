package org.tttbench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;
import org.tttbench.sweep.Config;
import org.tttbench.sweep.ResultFile;
import org.tttbench.sweep.ResultsDir;

/** What a researcher reads off the charts: comparable lines, each its own colour and marker, readable axes. */
class ChartsTest {

    @BeforeAll
    static void headless() {
        System.setProperty("java.awt.headless", "true");
    }

    private static Config config(String impl, String size, boolean bwd, boolean inner, int batch) {
        return new Config(impl, size, TttType.LINEAR, bwd, batch, 2048, 16, DType.FLOAT32, 1, false, inner);
    }

    private static List<ResultFile> read(Path dir) throws Exception {
        return ReportCommand.sorted(new ResultsDir(dir).list().of(ResultFile.Kind.SUCCESS));
    }

    private static Map<String, Charts.Chart> drawn(List<ResultFile> ok) {
        return Charts.all(ok).stream().filter(Charts.Chart::drawn)
                .collect(Collectors.toMap(Charts.Chart::file, c -> c));
    }

    @Test
    void eachChartHoldsOneDirectionAndScope(@TempDir Path dir) throws Exception {
        // "fwdonly" has forward results only, "inneronly" inner-only ones only: neither may show up elsewhere.
        for (String size : List.of("12m", "60m", "125m")) {
            for (boolean bwd : List.of(false, true)) {
                for (boolean inner : List.of(false, true)) {
                    ReportTest.result(dir, config("both", size, bwd, inner, 1), 10 + (bwd ? 20 : 0), null);
                }
            }
            ReportTest.result(dir, config("fwdonly", size, false, false, 1), 5, null);
            ReportTest.result(dir, config("inneronly", size, true, true, 1), 7, null);
        }
        Map<String, Charts.Chart> charts = drawn(read(dir));
        assertEquals(Set.of("fwd-full-by-size.png", "bwd-full-by-size.png", "fwd-inner-by-size.png",
                "bwd-inner-by-size.png"), charts.keySet());
        assertEquals(List.of("both linear", "fwdonly linear"), charts.get("fwd-full-by-size.png").series());
        assertEquals(List.of("both linear"), charts.get("bwd-full-by-size.png").series());
        assertEquals(List.of("both linear"), charts.get("fwd-inner-by-size.png").series());
        assertEquals(List.of("both linear", "inneronly linear"), charts.get("bwd-inner-by-size.png").series());
        assertTrue(charts.get("bwd-inner-by-size.png").title().startsWith("Forward+backward, inner loop only: "));
    }

    @Test
    void everyLineHasAColourAndAMarkerOfItsOwnEvenPastThePalette(@TempDir Path dir) throws Exception {
        int n = 14;
        for (int i = 0; i < n; i++) {
            for (String size : List.of("12m", "60m")) {
                ReportTest.result(dir, config("impl" + (char) ('a' + i), size, false, false, 1), 10 + i, null);
            }
        }
        Charts.Chart chart = drawn(read(dir)).get("fwd-full-by-size.png");
        assertEquals(n, chart.series().size());
        assertEquals(n, new HashSet<>(chart.colours()).size(), "a colour used twice: " + chart.colours());
        assertEquals(n, new HashSet<>(Charts.markers(n).stream().map(ChartsTest::outline).toList()).size(),
                "a marker used twice");
        // Every line's colour is drawn, not only assigned.
        BufferedImage image = ImageIO.read(new ByteArrayInputStream(chart.png()));
        Set<Integer> pixels = new HashSet<>();
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) pixels.add(image.getRGB(x, y) & 0xFFFFFF);
        }
        for (Color c : chart.colours()) assertTrue(pixels.contains(c.getRGB() & 0xFFFFFF), "not drawn: " + c);
        for (int size : new int[] {1, 10, 11, 40}) assertEquals(size, new HashSet<>(Charts.colours(size)).size());
    }

    private static String outline(java.awt.Shape s) {
        StringBuilder sb = new StringBuilder();
        double[] p = new double[6];
        for (var it = s.getPathIterator(null); !it.isDone(); it.next()) {
            int type = it.currentSegment(p);
            sb.append(type).append(':').append(Math.round(p[0] * 10)).append(',').append(Math.round(p[1] * 10)).append(';');
        }
        return sb.toString();
    }

    @Test
    void aValueAxisSpanningMoreThanTenfoldIsLogarithmic(@TempDir Path dir) throws Exception {
        Path narrow = Files.createDirectories(dir.resolve("narrow"));
        Path wide = Files.createDirectories(dir.resolve("wide"));
        for (int batch : List.of(1, 2, 4, 8)) {
            ReportTest.result(narrow, config("a", "12m", false, true, batch), 10 + batch, null); // throughput ~1.7×
            ReportTest.result(wide, config("a", "12m", false, true, batch), 10, null);
            ReportTest.result(wide, config("b", "12m", false, true, batch), 1000, null); // 100× slower
        }
        assertFalse(drawn(read(narrow)).get("fwd-inner-by-batch.png").logAxis());
        assertTrue(drawn(read(wide)).get("fwd-inner-by-batch.png").logAxis());
    }

    @Test
    void speedupsAgainstABaselinePerConfiguration(@TempDir Path dir) throws Exception {
        Path results = Files.createDirectories(dir.resolve("results"));
        ReportTest.result(results, config("jax", "12m", false, false, 1), 10, null);
        ReportTest.result(results, config("jax", "12m", true, false, 1), 30, null);
        ReportTest.result(results, config("tttbench", "12m", false, false, 1), 4, null);
        // Given --checkpoint-interval 1 where jax ran its default: the same configuration.
        ReportTest.result(results, new Config("tttbench", "12m", TttType.LINEAR, true, 1, 2048, 16, DType.FLOAT32, 1,
                true, false), 60, null);
        ReportTest.result(results, config("pytorch", "12m", false, false, 1), 20, null);
        List<Speedups.Row> rows = Speedups.rows(read(results), "jax");
        assertEquals(2, rows.size());
        assertEquals(2.5, rows.get(0).speedups().get("tttbench"), 1e-12);
        assertEquals(0.5, rows.get(0).speedups().get("pytorch"), 1e-12);
        assertEquals(0.5, rows.get(1).speedups().get("tttbench"), 1e-12);
        assertTrue(Double.isNaN(rows.get(1).speedups().get("pytorch")));

        Path out = dir.resolve("report");
        Result r = report(results.toString(), "--out", out.toString(), "--baseline", "jax");
        assertEquals(0, r.status(), r.err());
        String html = Files.readString(out.resolve("index.html"));
        assertTrue(html.contains("<h2>Speedup against jax</h2>"), html);
        assertTrue(html.contains("<td>10.000</td><td>0.50× (20.000 ms)</td><td>2.50× (4.000 ms)</td>"), html);
        assertTrue(html.contains("<td>30.000</td><td></td><td>0.50× (60.000 ms)</td>"), html);

        Result unknown = report(results.toString(), "--out", out.toString(), "--baseline", "triton");
        assertEquals(2, unknown.status());
        assertEquals("", unknown.out());
        assertEquals("report: --baseline triton: no result of that implementation in " + results
                + " (results of: jax, pytorch, tttbench)\n", unknown.err());
        assertEquals(2, report(results.toString(), "--baseline").status());
    }

    record Result(int status, String out, String err) {}

    static Result report(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = ReportCommand.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void innerLoopTimesPerHeadAreChartedAgainstTheHeadDim(@TempDir Path dir) throws Exception {
        for (String size : List.of("125m-h32", "125m", "760m")) {
            for (boolean inner : List.of(false, true)) {
                ReportTest.result(dir, config("impl", size, false, inner, 1), 10, null);
            }
        }
        Map<String, Charts.Chart> charts = drawn(read(dir));
        assertTrue(charts.containsKey("fwd-inner-by-head-dim.png"), charts.keySet().toString());
        assertEquals(List.of("impl linear"), charts.get("fwd-inner-by-head-dim.png").series());
        assertFalse(charts.containsKey("fwd-full-by-head-dim.png"), "a full model's time is not a head's");
    }
}
