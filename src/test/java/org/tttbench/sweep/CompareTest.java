package org.tttbench.sweep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CompareTest {

    @TempDir
    Path tmp;

    /** One entry of a JMH -rf json file, with the confidence interval score ± error. */
    private static String jmh(String method, String mode, String size, int seqLen, double score, double error) {
        return String.format(Locale.ROOT, """
                {"jmhVersion": "1.37", "benchmark": "org.tttbench.bench.TttBenchmark.%s", "mode": "%s", "threads": 1,
                 "forks": 1, "params": {"modelSize": "%s", "tttType": "linear", "seqLen": "%d", "backend": "cpu"},
                 "primaryMetric": {"score": %s, "scoreError": %s, "scoreConfidence": [%s, %s],
                                   "scorePercentiles": {"0.0": %s}, "scoreUnit": "%s", "rawData": [[%s, %s]]},
                 "secondaryMetrics": {}}""", method, mode, size, seqLen, score, error, score - error, score + error,
                score, mode.equals("thrpt") ? "ops/s" : "ms/op", score - error, score + error);
    }

    private Path file(String name, String... entries) throws Exception {
        Path p = tmp.resolve(name);
        Files.writeString(p, "[\n" + String.join(",\n", entries) + "\n]\n");
        return p;
    }

    @Test
    void flagsAPlanted30PercentRegressionAndIgnoresA3PercentChangeWithinNoise() throws Exception {
        Path base = file("base.json",
                jmh("forward", "ss", "12m", 64, 100.0, 1.0),
                jmh("forward", "ss", "12m", 128, 200.0, 8.0),
                jmh("innerForward", "thrpt", "12m", 64, 50.0, 0.5));
        Path cur = file("cur.json",
                // listed in another order: matching is by name and params, not position
                jmh("innerForward", "thrpt", "12m", 64, 50.5, 0.5),
                jmh("forward", "ss", "12m", 128, 206.0, 8.0), // +3%, intervals overlap
                jmh("forward", "ss", "12m", 64, 130.0, 1.0)); // +30%, intervals apart
        Fakes.Result r = Fakes.compare(base.toString(), cur.toString());
        assertEquals(1, r.status(), r.out() + r.err());
        List<String> regressions = r.out().lines().filter(l -> l.contains("REGRESSION")).toList();
        assertEquals(1, regressions.size(), r.out());
        assertTrue(regressions.getFirst().contains("seqLen=64") && regressions.getFirst().contains(".forward"), r.out());
        assertTrue(regressions.getFirst().contains("+30.0%"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.contains("seqLen=128") && l.contains("ok (+3.0%)")), r.out());
        assertTrue(r.out().contains("3 matched, 1 regressions beyond 10.0%"), r.out());

        // The same files with a looser threshold pass.
        assertEquals(0, Fakes.compare(base.toString(), cur.toString(), "--threshold", "35").status());
        // No change at all passes.
        assertEquals(0, Fakes.compare(base.toString(), base.toString()).status());
    }

    @Test
    void aLargeSlowdownInsideOverlappingIntervalsIsNoise() throws Exception {
        Path base = file("base.json", jmh("backward", "avgt", "12m", 64, 100.0, 40.0));
        Path cur = file("cur.json", jmh("backward", "avgt", "12m", 64, 130.0, 40.0));
        Fakes.Result r = Fakes.compare(base.toString(), cur.toString());
        assertEquals(0, r.status(), r.out());
        assertTrue(r.out().contains("slower within noise (+30.0%)"), r.out());
    }

    @Test
    void throughputModeTreatsALowerScoreAsSlower() throws Exception {
        Path base = file("base.json", jmh("innerForward", "thrpt", "12m", 64, 100.0, 1.0));
        Path cur = file("cur.json", jmh("innerForward", "thrpt", "12m", 64, 70.0, 1.0));
        assertEquals(1, Fakes.compare(base.toString(), cur.toString()).status());
        assertEquals(0, Fakes.compare(cur.toString(), base.toString()).status()); // faster is fine
    }

    @Test
    void aGateThatMatchesNothingFails() throws Exception {
        Path base = file("base.json", jmh("forward", "ss", "12m", 64, 100.0, 1.0));
        Path cur = file("cur.json", jmh("forward", "ss", "60m", 64, 300.0, 1.0));
        Fakes.Result r = Fakes.compare(base.toString(), cur.toString());
        assertEquals(1, r.status(), r.out());
        assertTrue(r.out().contains("0 matched, 0 regressions beyond 10.0%, 1 only in baseline, 1 only in current"),
                r.out());
        assertEquals("compare: no benchmark of the baseline " + base + " is in " + cur + "\n", r.err());
    }

    @Test
    void anEmptyBaselineFails() throws Exception {
        Path cur = file("cur.json", jmh("forward", "ss", "12m", 64, 100.0, 1.0));
        for (Path base : List.of(file("empty.json"), Files.createDirectories(tmp.resolve("empty-results")))) {
            Fakes.Result r = Fakes.compare(base.toString(), cur.toString());
            assertEquals(1, r.status(), r.out() + r.err());
            assertEquals("compare: the baseline " + base + " holds no benchmarks, so there is nothing to gate on\n",
                    r.err());
        }
    }

    @Test
    void aScoreThatIsNotAFinitePositiveNumberFails() throws Exception {
        Path base = file("base.json", jmh("forward", "ss", "12m", 64, 100.0, 1.0),
                jmh("forward", "ss", "12m", 128, 200.0, 1.0));
        for (String bad : List.of("\"NaN\"", "\"Infinity\"", "0.0", "-5.0")) {
            Path cur = tmp.resolve("cur.json");
            Files.writeString(cur, Files.readString(file("c.json", jmh("forward", "ss", "12m", 64, 100.0, 1.0),
                    jmh("forward", "ss", "12m", 128, 200.0, 1.0))).replaceFirst("\"score\": 100.0", "\"score\": " + bad));
            Fakes.Result r = Fakes.compare(base.toString(), cur.toString());
            assertEquals(1, r.status(), bad + ": " + r.out() + r.err());
            assertTrue(r.out().lines().anyMatch(l -> l.contains("seqLen=64") && l.contains("NOT A SCORE (current ")),
                    r.out());
            assertTrue(r.err().startsWith("compare: 1 matched benchmarks have no finite positive score, first "
                    + "org.tttbench.bench.TttBenchmark.forward"), r.err());
            // the same file as the baseline fails too: the gate cannot judge against it
            assertEquals(1, Fakes.compare(cur.toString(), base.toString()).status(), bad);
        }
    }

    @Test
    void jmhNaNConfidenceFromOneIterationIsAPointInterval() throws Exception {
        Path base = file("base.json", jmh("forward", "ss", "12m", 64, 100.0, 1.0));
        Path cur = tmp.resolve("cur.json");
        Files.writeString(cur, Files.readString(file("c.json", jmh("forward", "ss", "12m", 64, 130.0, 1.0)))
                .replace("\"scoreError\": 1.0", "\"scoreError\": \"NaN\"")
                .replace("\"scoreConfidence\": [129.0, 131.0]", "\"scoreConfidence\": [\"NaN\", \"NaN\"]"));
        assertTrue(Files.readString(cur).contains("[\"NaN\", \"NaN\"]"));
        assertEquals(1, Fakes.compare(base.toString(), cur.toString()).status());
    }

    /** A result line as the built-in adapter prints it, spread of the repeats included. */
    private static void resultLine(Path dir, Config c, double mean, double min, double max) throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(c.resultName()), String.format(Locale.ROOT,
                "{\"implementation\":\"%s\",\"model_size\":\"%s\",\"ttt_type\":\"%s\",\"backward\":%s,\"inner_only\":%s,"
                        + "\"batch\":%d,\"seq_len\":%d,\"mini_batch\":%d,\"checkpoint_interval\":%d,\"dtype\":\"%s\","
                        + "\"num_params\":1,\"time_ms\":%s,\"throughput\":1.0,\"device\":\"cpu\",\"time_ms_min\":%s,"
                        + "\"time_ms_max\":%s}\n", c.implementation(), c.modelSize(), c.tttType().flag(), c.backward(),
                c.innerOnly(), c.batch(), c.seqLen(), c.miniBatch(), c.checkpointInterval(), c.dtype().flag(), mean,
                min, max));
    }

    @Test
    void resultsDirectoriesCompareByConfiguration() throws Exception {
        Config a = new Config("tttbench", "12m", org.tttbench.config.TttType.LINEAR, false, 1, 64, 16,
                org.tttbench.config.DType.FLOAT32, 1, false, false);
        Config b = new Config("tttbench", "12m", org.tttbench.config.TttType.LINEAR, true, 1, 64, 16,
                org.tttbench.config.DType.FLOAT32, 2, true, false);
        Path base = tmp.resolve("base");
        Path cur = tmp.resolve("cur");
        resultLine(base, a, 10.0, 9.9, 10.1);
        resultLine(base, b, 30.0, 29.0, 31.0);
        resultLine(cur, a, 13.0, 12.9, 13.1); // +30%
        resultLine(cur, b, 30.9, 30.0, 31.8); // +3%
        Files.writeString(cur.resolve("tttbench_12m_linear_len64_mb16_b1_float32_bwd_ckpt4.json.failed"), "x\n");
        Fakes.Result r = Fakes.compare(base.toString(), cur.toString());
        assertEquals(1, r.status(), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("tttbench fwd") && l.contains("REGRESSION")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("tttbench bwd") && l.contains("checkpoint_interval=2")
                && l.contains("ok (+3.0%)")), r.out());
    }

    @Test
    void badInputIsStatusTwo() throws Exception {
        Path notJson = tmp.resolve("x.json");
        Files.writeString(notJson, "hello");
        assertEquals(2, Fakes.compare(notJson.toString(), notJson.toString()).status());
        assertEquals(2, Fakes.compare(tmp.resolve("missing").toString(), notJson.toString()).status());
        assertEquals(2, Fakes.compare(notJson.toString()).status());
        assertEquals(2, Fakes.compare(tmp.toString(), tmp.toString(), "--threshold", "-5").status());
    }
}
