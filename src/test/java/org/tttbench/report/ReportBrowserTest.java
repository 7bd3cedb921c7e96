package org.tttbench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;
import org.tttbench.sweep.Config;

/**
 * The report as a researcher opens it: in a real (headless) browser, the page renders and every
 * chart image loads. A screenshot of it is kept in the build directory
 * ({@code report-screenshot.png}) to look at. Needs Chromium (Debian's package
 * {@code chromium}; .ci/run installs it); without it the test is skipped, saying so.
 */
class ReportBrowserTest {

    private static Optional<Path> chromium() {
        String path = System.getenv().getOrDefault("PATH", "");
        for (String name : List.of("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")) {
            for (String dir : path.split(File.pathSeparator)) {
                Path p = Path.of(dir, name);
                if (!dir.isEmpty() && Files.isExecutable(p)) return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    /** target/, beside target/test-classes, whatever -Dtttbench.buildDir made it. */
    private static Path buildDir() throws Exception {
        return Path.of(ReportBrowserTest.class.getProtectionDomain().getCodeSource().getLocation().toURI()).getParent();
    }

    private static String run(Path tmp, List<String> command) throws Exception {
        Path out = Files.createTempFile(tmp, "chromium", ".out");
        Process p = new ProcessBuilder(command).redirectOutput(out.toFile())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        p.getOutputStream().close();
        if (!p.waitFor(90, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("chromium did not finish: " + command);
        }
        assertEquals(0, p.exitValue(), "chromium failed: " + command + "\n" + Files.readString(out));
        return Files.readString(out);
    }

    @Test
    @Timeout(240)
    void thePageRendersInABrowserWithEveryImageLoaded(@TempDir Path tmp) throws Exception {
        Optional<Path> browser = chromium();
        Assumptions.assumeTrue(browser.isPresent(),
                "no chromium on PATH: install Debian's chromium (apt-get install -y chromium) to check the report in a browser");
        Path results = Files.createDirectories(tmp.resolve("results"));
        for (String impl : List.of("tttbench", "jax", "pytorch")) {
            for (String size : List.of("12m", "60m", "125m")) {
                for (boolean bwd : List.of(false, true)) {
                    ReportTest.result(results, new Config(impl, size, TttType.MLP, bwd, 1, 2048, 16, DType.FLOAT32, 1,
                            false, false), (impl.length() * 3 + size.length()) * (bwd ? 3 : 1), null);
                }
            }
            for (int batch : List.of(1, 2, 4)) {
                ReportTest.result(results, new Config(impl, "125m", TttType.MLP, false, batch, 2048, 16, DType.FLOAT32,
                        1, false, true), batch * impl.length(), null);
            }
        }
        Path out = tmp.resolve("report");
        ChartsTest.Result r = ChartsTest.report(results.toString(), "--out", out.toString(), "--baseline", "jax");
        assertEquals(0, r.status(), r.err());
        String html = Files.readString(out.resolve("index.html"));
        int images = (int) Pattern.compile("<img ").matcher(html).results().count();
        assertTrue(images >= 3, "the page should hold charts: " + images);

        // A probe page beside the report loads it in a frame and records what the browser made of it.
        Files.writeString(out.resolve("probe.html"), """
                <!DOCTYPE html><html><body><iframe id="f" src="index.html" onload="check()"></iframe><script>
                function check() {
                  const d = document.getElementById('f').contentDocument;
                  const imgs = [...d.images];
                  document.body.setAttribute('data-result', JSON.stringify({title: d.title, images: imgs.length,
                      loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length, tables: d.querySelectorAll('table').length}));
                }
                </script></body></html>
                """);
        List<String> common = new ArrayList<>(List.of(browser.get().toString(), "--headless", "--no-sandbox",
                "--disable-gpu", "--allow-file-access-from-files", "--user-data-dir=" + tmp.resolve("profile")));
        List<String> dump = new ArrayList<>(common);
        dump.addAll(List.of("--virtual-time-budget=10000", "--dump-dom", out.resolve("probe.html").toUri().toString()));
        Matcher m = Pattern.compile("data-result=\"([^\"]*)\"").matcher(run(tmp, dump));
        assertTrue(m.find(), "the probe never saw the page load");
        JsonNode seen = new ObjectMapper().readTree(m.group(1).replace("&quot;", "\"").replace("&amp;", "&"));
        assertEquals("tttbench sweep report", seen.get("title").asText());
        assertEquals(images, seen.get("images").asInt(), "the browser found other images than the page holds");
        assertEquals(images, seen.get("loaded").asInt(), "an image did not load: " + seen);
        assertEquals(2, seen.get("tables").asInt(), "speedups and results: " + seen);

        Path screenshot = buildDir().resolve("report-screenshot.png");
        Files.deleteIfExists(screenshot);
        List<String> shot = new ArrayList<>(common);
        shot.addAll(List.of("--hide-scrollbars", "--window-size=1280,2400", "--screenshot=" + screenshot,
                out.resolve("index.html").toUri().toString()));
        run(tmp, shot);
        BufferedImage image = ImageIO.read(screenshot.toFile());
        assertNotNull(image, "no screenshot at " + screenshot);
        assertEquals(1280, image.getWidth());
        java.util.Set<Integer> colours = new java.util.HashSet<>();
        for (int y = 0; y < image.getHeight(); y += 5) {
            for (int x = 0; x < image.getWidth(); x += 5) colours.add(image.getRGB(x, y));
        }
        assertTrue(colours.size() > 20, "the screenshot is blank");
    }
}
