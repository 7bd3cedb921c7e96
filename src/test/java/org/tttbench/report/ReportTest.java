package org.tttbench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;
import org.tttbench.sweep.Config;

class ReportTest {

    static void result(Path dir, Config c, double time, Long peak) throws Exception {
        double throughput = c.batch() * c.seqLen() / (time / 1000);
        Files.writeString(dir.resolve(c.resultName()), String.format(Locale.ROOT,
                "{\"implementation\":\"%s\",\"model_size\":\"%s\",\"ttt_type\":\"%s\",\"backward\":%s,\"inner_only\":%s,"
                        + "\"batch\":%d,\"seq_len\":%d,\"mini_batch\":%d,\"checkpoint_interval\":%d,\"dtype\":\"%s\","
                        + "\"num_params\":12345,\"time_ms\":%s,\"throughput\":%s,\"device\":\"cpu <test>\"%s}\n",
                c.implementation(), c.modelSize(), c.tttType().flag(), c.backward(), c.innerOnly(), c.batch(), c.seqLen(),
                c.miniBatch(), c.checkpointInterval(), c.dtype().flag(), time, throughput,
                peak == null ? "" : ",\"peak_memory_bytes\":" + peak));
    }

    @Test
    void rendersHtmlAndNonEmptyPngsFromAResultsDirectory(@TempDir Path tmp) throws Exception {
        Path results = Files.createDirectories(tmp.resolve("results"));
        int n = 0;
        for (String impl : List.of("tttbench", "jax")) {
            for (String size : List.of("12m", "60m", "125m")) {
                for (boolean bwd : List.of(false, true)) {
                    result(results, new Config(impl, size, TttType.LINEAR, bwd, 1, 2048, 16, DType.FLOAT32, 1, false, false),
                            10 + size.length() + (bwd ? 20 : 0) + (impl.length()), bwd ? 1L << 30 : null);
                    n++;
                }
            }
            for (int batch : List.of(1, 2, 4, 8)) {
                result(results, new Config(impl, "125m", TttType.LINEAR, false, batch, 2048, 16, DType.FLOAT32, 1, false, true),
                        batch * 3.0, null);
                n++;
            }
            for (int mb : List.of(8, 32, 64)) { // 16 is above
                result(results, new Config(impl, "125m", TttType.LINEAR, false, 1, 2048, mb, DType.FLOAT32, 1, false, false),
                        40.0 / mb + 5, null);
                n++;
            }
            for (int c : List.of(2, 4, 8)) { // 1 is above
                result(results, new Config(impl, "125m", TttType.LINEAR, true, 1, 2048, 16, DType.FLOAT32, c, true, false),
                        50 + c, (1L << 30) / c);
                n++;
            }
        }
        Files.writeString(results.resolve("tttbench_1b_mlp_len2048_mb16_b1_float32_bwd.json.failed"),
                "loading\njava.lang.OutOfMemoryError: <device> memory\n[sweep] exit status 1\n");
        Files.writeString(results.resolve("jax_1b_mlp_len2048_mb16_b1_float32.json"), "oops\n");

        Path out = tmp.resolve("report");
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = ReportCommand.run(new String[] {results.toString(), "--out", out.toString()},
                new PrintStream(new ByteArrayOutputStream()), new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(0, status, err.toString(StandardCharsets.UTF_8));
        assertEquals("true", System.getProperty("java.awt.headless"));

        String html = Files.readString(out.resolve("index.html"));
        assertTrue(html.startsWith("<!DOCTYPE html>"));
        assertTrue(html.contains(n + " results, 1 failed, 1 invalid"), html.substring(0, 800));
        assertEquals(n, html.lines().filter(l -> l.startsWith("<tr><td class=\"t\">tttbench</td>")
                || l.startsWith("<tr><td class=\"t\">jax</td>")).count(), "one table row per result");
        assertTrue(html.contains("cpu &lt;test&gt;"), "text is escaped");
        assertTrue(html.contains("tttbench_1b_mlp_len2048_mb16_b1_float32_bwd.json.failed</td><td class=\"t\">"
                + "exit status 1: java.lang.OutOfMemoryError: &lt;device&gt; memory"), "failed run with its reason");
        assertTrue(html.contains("jax_1b_mlp_len2048_mb16_b1_float32.json</td><td class=\"t\">output under 100 bytes"));
        for (String png : List.of("fwd-full-by-size.png", "bwd-full-by-size.png", "fwd-inner-by-batch.png",
                "fwd-full-by-mini-batch.png", "bwd-full-ckpt-time.png", "bwd-full-ckpt-memory.png")) {
            Path p = out.resolve(png);
            assertTrue(Files.size(p) > 5000, png + " is " + Files.size(p) + " bytes");
            BufferedImage image = ImageIO.read(p.toFile());
            assertNotNull(image, png);
            assertEquals(900, image.getWidth());
            assertTrue(html.contains("src=\"data:image/png;base64,"), "charts are inlined");
            assertTrue(html.contains("<a href=\"" + png + "\">"), png);
            assertTrue(distinctColours(image) > 3, png + " is blank");
        }
    }

    private static int distinctColours(BufferedImage image) {
        java.util.Set<Integer> colours = new java.util.HashSet<>();
        for (int y = 0; y < image.getHeight(); y += 7) {
            for (int x = 0; x < image.getWidth(); x += 7) colours.add(image.getRGB(x, y));
        }
        return colours.size();
    }

    @Test
    void aMissingDirectoryIsAUsageError(@TempDir Path tmp) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = ReportCommand.run(new String[] {tmp.resolve("none").toString()},
                new PrintStream(new ByteArrayOutputStream()), new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, status);
        assertTrue(err.toString(StandardCharsets.UTF_8).startsWith("report: "));
    }

    @Test
    void emptyDirectoryStillRendersAPage(@TempDir Path tmp) throws Exception {
        Path page = ReportCommand.write(new org.tttbench.sweep.ResultsDir(tmp).list(), tmp, tmp.resolve("r"), null);
        String html = Files.readString(page);
        assertTrue(html.contains("No successful results."));
        assertTrue(html.contains("No results for these plots"));
        assertFalse(html.contains("<img"));
    }

    /** The bundle's runtime has no java.desktop and its jar no chart library: one line that says where report runs. */
    @Test
    void aRuntimeWithoutChartSupportIsNamedNotAStackTrace() {
        assertNull(ReportCommand.missingChartSupport("java.desktop", "org.jfree.chart.ChartFactory"));
        String noModule = ReportCommand.missingChartSupport("java.nonexistent", "org.jfree.chart.ChartFactory");
        assertTrue(noModule.startsWith("this Java runtime has no java.nonexistent, which the charts need"), noModule);
        String noLibrary = ReportCommand.missingChartSupport("java.desktop", "org.jfree.chart.NoSuchFactory");
        assertTrue(noLibrary.startsWith("this jar has no chart library (org.jfree.chart.NoSuchFactory)"), noLibrary);
        assertTrue(noLibrary.endsWith("java -jar target/benchmarks.jar report DIR"), noLibrary);
    }
}
