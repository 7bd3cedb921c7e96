package org.tttbench.sweep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

class SweepRunTest {

    @TempDir
    Path tmp;

    private Path plan(String json) throws IOException {
        Path p = tmp.resolve("plan.json");
        Files.writeString(p, json);
        return p;
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    @Timeout(60)
    void fakeImplementationsOkAndFailingLeaveResultsAndTombstones() throws Exception {
        Path ok = Fakes.okScript(tmp, "ok", 0);
        Path bad = Fakes.failingScript(tmp, "bad");
        Path results = tmp.resolve("results");
        Path plan = plan("""
                {"implementations": {"fake": "%s", "broken": "%s"},
                 "passes": [{"name": "p", "implementations": ["fake", "broken"], "model_sizes": ["12m"],
                             "ttt_types": ["linear", "mlp"], "seq_lens": [64, 100], "mini_batches": [16],
                             "directions": ["fwd", "bwd"], "inner_only": [false, true], "warmup": 0, "repeats": 1}]}
                """.formatted(ok, bad));
        Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--device-memory", "0");
        assertEquals(0, r.status(), r.err());
        // 2 impls × 2 types × 2 directions × 2 inner = 16 runnable; seq-len 100 is skipped with its reason
        assertTrue(r.err().contains("skip fake_12m_linear_len100_mb16_b1_float32: seq-len 100 is not divisible by mini-batch 16"),
                r.err());
        assertTrue(r.err().contains("[16/16]"), r.err());
        assertTrue(r.err().lines().anyMatch(l -> l.startsWith("[1/16] ") && l.contains("elapsed") && l.contains("remaining")));
        List<String> files = names(results);
        assertEquals(16, files.size(), files.toString());
        assertEquals(8, files.stream().filter(f -> f.startsWith("fake_") && f.endsWith(".json")).count());
        assertEquals(8, files.stream().filter(f -> f.startsWith("broken_") && f.endsWith(".json.failed")).count());

        String line = Files.readString(results.resolve("fake_12m_mlp_len64_mb16_b1_float32_bwd_inner.json")).strip();
        assertTrue(line.startsWith("{\"implementation\":\"ok\",\"model_size\":\"12m\",\"ttt_type\":\"mlp\",\"backward\":true,"
                + "\"inner_only\":true"), line);
        assertFalse(line.contains("\n"));

        List<String> tomb = Files.readAllLines(results.resolve("broken_12m_linear_len64_mb16_b1_float32.json.failed"));
        assertEquals(Runner.TAIL_LINES + 1, tomb.size()); // the last 50 lines of output, then the verdict
        assertEquals("[sweep] exit status 3", tomb.getLast());
        assertTrue(tomb.contains("java.lang.OutOfMemoryError: device memory"));
        assertFalse(tomb.contains("line 1"), "the head of a long output is dropped");
        assertEquals("line 32", tomb.getFirst(), "stdout's last 49 lines, then stderr's one");

        // Re-running does nothing: done and failed runs are both skipped.
        Files.delete(tmp.resolve("calls.log"));
        Fakes.Result again = Fakes.sweep(plan.toString(), "--results", results.toString());
        assertEquals(0, again.status(), again.err());
        assertTrue(again.err().contains("16 done or failed before") && again.err().contains(", 0 to run"), again.err());
        assertFalse(Files.exists(tmp.resolve("calls.log")));

        // --clear-failures removes the tombstones, so the next sweep retries exactly those.
        Fakes.Result cleared = Fakes.sweep("--results", results.toString(), "--clear-failures");
        assertEquals(0, cleared.status());
        assertTrue(cleared.err().contains("removed 8 tombstones"), cleared.err());
        assertEquals(8, names(results).size());
        Fakes.Result dry = Fakes.sweep(plan.toString(), "--results", results.toString(), "--dry-run");
        assertEquals(0, dry.status(), dry.err());
        assertEquals(8, dry.out().lines().filter(l -> l.startsWith("run  broken_")).count(), dry.out());
        assertTrue(dry.out().contains("bad.sh") && dry.out().contains("--model-size 12m"), dry.out());
        assertEquals(8, names(results).size(), "a dry run runs nothing");
    }

    @Test
    @Timeout(60)
    void statusAndCsvMatchTheFiles() throws Exception {
        Path ok = Fakes.okScript(tmp, "ok", 0);
        Path bad = Fakes.failingScript(tmp, "bad");
        Path results = tmp.resolve("results");
        Path plan = plan("""
                {"implementations": {"fake": "%s", "broken": "%s"},
                 "passes": [{"name": "p", "implementations": ["fake", "broken"], "model_sizes": ["12m", "60m"],
                             "seq_lens": [64], "mini_batches": [8, 16], "batches": [1, 2]}]}
                """.formatted(ok, bad));
        assertEquals(0, Fakes.sweep(plan.toString(), "--results", results.toString()).status());
        // Invalid files as an older sweep could leave them, and a file that is no result at all.
        Files.writeString(results.resolve("jax_12m_linear_len64_mb16_b1_float32.json"), "{\"time_ms\": 1}\n");
        Files.writeString(results.resolve("jax_12m_linear_len64_mb8_b1_float32.json"),
                "Traceback (most recent call last):\n  File \"benchmark.py\", line 1, in <module>\n    main()\n"
                        + "RuntimeError: HIP out of memory. Tried to allocate 2.00 GiB\n");
        Files.writeString(results.resolve("notes.txt"), "my notes");

        Fakes.Result status = Fakes.sweep(plan.toString(), "--results", results.toString(), "--status");
        assertEquals(0, status.status(), status.err());
        List<String> files = names(results);
        long successful = files.stream().filter(f -> f.endsWith(".json") && f.startsWith("fake_")).count();
        long failed = files.stream().filter(f -> f.endsWith(".json.failed")).count();
        assertEquals(8, successful);
        assertEquals(8, failed);
        assertTrue(status.out().contains("successful: " + successful + "\n"), status.out());
        assertTrue(status.out().contains("failed: " + failed + "\n"), status.out());
        assertTrue(status.out().contains("invalid: 2\n"), status.out());
        assertTrue(status.out().contains("jax_12m_linear_len64_mb16_b1_float32.json: output under 100 bytes (15)"),
                status.out());
        assertTrue(status.out().contains("jax_12m_linear_len64_mb8_b1_float32.json: no line starting with '{'"),
                status.out());
        assertTrue(status.out().contains("pending: 0 of 16"), status.out());

        Fakes.Result csv = Fakes.sweep("--results", results.toString(), "--csv");
        assertEquals(0, csv.status(), csv.err());
        List<String> rows = csv.out().lines().toList();
        assertEquals(String.join(",", ResultsDir.CSV_COLUMNS), rows.getFirst());
        assertEquals(successful + failed, rows.size() - 1, "one row per result and per tombstone");
        Map<String, String> byName = new HashMap<>();
        for (String row : rows.subList(1, rows.size())) {
            String[] f = row.split(",", -1);
            assertEquals(13, f.length, row);
            Config c = new Config(f[0], f[1], org.tttbench.config.TttType.parse(f[2]), Boolean.parseBoolean(f[3]),
                    Integer.parseInt(f[4]), Integer.parseInt(f[5]), Integer.parseInt(f[6]),
                    org.tttbench.config.DType.parse(f[7]), Integer.parseInt(f[10]), false, Boolean.parseBoolean(f[12]));
            boolean isFailed = Boolean.parseBoolean(f[11]);
            String name = isFailed ? c.tombstoneName() : c.resultName();
            assertTrue(files.contains(name), "CSV row without its file: " + row);
            byName.put(name, row);
            if (isFailed) {
                assertEquals("", f[8]);
            } else {
                // time_ms is the file's own value: batch·10 + mini-batch, .25
                assertEquals((c.batch() * 10 + c.miniBatch()) + ".25", f[8], row);
                assertEquals("6400", f[9]);
            }
        }
        assertEquals(successful + failed, byName.size());

        Fakes.Result clean = Fakes.sweep("--results", results.toString(), "--clean-invalid");
        assertEquals(0, clean.status());
        assertTrue(clean.err().contains("removed 2 invalid"), clean.err());
        assertFalse(Files.exists(results.resolve("jax_12m_linear_len64_mb16_b1_float32.json")));
        assertTrue(Files.exists(results.resolve("notes.txt")), "files that are not results are left alone");
        assertEquals(16 + 1, names(results).size());
    }

    @Test
    @Timeout(60)
    void killedMidSweepAndResumedEveryResultExactlyOnce() throws Exception {
        Path ok = Fakes.okScript(tmp, "ok", 0.25);
        Path results = tmp.resolve("results");
        Path plan = plan("""
                {"implementations": {"fake": "%s"},
                 "passes": [{"name": "p", "implementations": ["fake"], "model_sizes": ["12m"], "ttt_types": ["linear", "mlp"],
                             "seq_lens": [64], "mini_batches": [8, 16], "batches": [1, 2, 4]}]}
                """.formatted(ok));
        List<String> expected = Plan.load(plan).expand().runs().stream().map(p -> p.config().resultName()).sorted().toList();
        assertEquals(12, expected.size());

        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process sweep = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                SweepCommand.class.getName(), plan.toString(), "--results", results.toString())
                .redirectErrorStream(true).redirectOutput(tmp.resolve("sweep.log").toFile()).start();
        // Kill it with SIGKILL (no shutdown hook runs) once a few results are in.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (countResults(results) < 4) {
            assertTrue(sweep.isAlive(), "the sweep ended early: " + Files.readString(tmp.resolve("sweep.log")));
            assertTrue(System.nanoTime() < deadline, "no progress: " + Files.readString(tmp.resolve("sweep.log")));
            Thread.sleep(20);
        }
        sweep.destroyForcibly(); // SIGKILL on Unix
        assertTrue(sweep.waitFor(10, TimeUnit.SECONDS));
        int before = countResults(results);
        assertTrue(before >= 4 && before < 12, "killed after " + before);
        // Whatever is there is whole: every result file is a valid result.
        for (ResultFile f : new ResultsDir(results).list().files()) {
            assertEquals(ResultFile.Kind.SUCCESS, f.kind(), f.path() + ": " + f.reason());
        }

        Fakes.Result resumed = Fakes.sweep(plan.toString(), "--results", results.toString());
        assertEquals(0, resumed.status(), resumed.err());
        assertTrue(resumed.err().contains(before + " done or failed before"), resumed.err());
        assertEquals(expected, names(results), "every result exactly once, no temporaries left");
        for (ResultFile f : new ResultsDir(results).list().files()) {
            assertEquals(ResultFile.Kind.SUCCESS, f.kind(), f.path() + ": " + f.reason());
        }
        // Finished runs were not repeated: at most the one in flight at the kill ran twice.
        List<String> calls = Files.readAllLines(tmp.resolve("calls.log"));
        Set<String> distinct = new HashSet<>(calls);
        assertEquals(12, distinct.size());
        assertTrue(calls.size() <= 13, calls.size() + " calls for 12 configurations");
    }

    private static int countResults(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return 0;
        try (Stream<Path> s = Files.list(dir)) {
            return (int) s.filter(p -> p.getFileName().toString().endsWith(".json")).count();
        }
    }

    @Test
    @Timeout(30)
    void configurationsThatCannotFitTheDeviceAreSkippedWithTheEstimate() throws Exception {
        Path ok = Fakes.okScript(tmp, "ok", 0);
        Path results = tmp.resolve("results");
        Path plan = plan("""
                {"implementations": {"fake": "%s"},
                 "passes": [{"name": "p", "implementations": ["fake"], "model_sizes": ["12m", "1b"], "seq_lens": [2048],
                             "directions": ["bwd"]}]}
                """.formatted(ok));
        Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--device-memory", "4");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.err().contains("skip fake_1b_linear_len2048_mb16_b1_float32_bwd: needs about "), r.err());
        assertTrue(r.err().contains("the device has 4.0 GiB"), r.err());
        assertEquals(List.of("fake_12m_linear_len2048_mb16_b1_float32_bwd.json"), names(results));
    }

    @Test
    void builtinImplementationIsThisSuiteInAFreshJvm() throws Exception {
        Plan plan = PlanTest.parse("""
                {"implementations": {"custom": "java -jar my.jar --backend cpu"},
                 "passes": [{"name": "p", "implementations": ["tttbench", "custom"], "model_sizes": ["12m"],
                             "seq_lens": [64], "inner_only": [true], "warmup": 0, "repeats": 1}]}""");
        List<Plan.Planned> runs = plan.expand().runs();
        Implementations impls = new Implementations(plan.implementations());
        List<String> cmd = impls.invocation(runs.get(0)).command();
        assertEquals(Path.of(System.getProperty("java.home"), "bin", "java").toString(), cmd.get(0));
        assertEquals(List.of("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-cp"),
                cmd.subList(1, 4));
        for (String entry : cmd.get(4).split(java.io.File.pathSeparator)) assertTrue(Path.of(entry).isAbsolute(), entry);
        assertEquals("org.tttbench.cli.Main", cmd.get(5));
        assertEquals(List.of("--model-size", "12m", "--ttt-type", "linear", "--batch", "1", "--seq-len", "64",
                "--mini-batch", "16", "--dtype", "float32", "--inner-only", "--warmup", "0", "--repeats", "1", "--json",
                "--comment", "sweep:tttbench_12m_linear_len64_mb16_b1_float32_inner"), cmd.subList(6, cmd.size()));
        // A command from the plan gets the flags as whole words, never re-split by the shell.
        List<String> custom = impls.invocation(runs.get(1)).command();
        assertEquals(List.of("/bin/sh", "-c", "java -jar my.jar --backend cpu \"$@\"", "sh", "--model-size"),
                custom.subList(0, 5));
    }

    /**
     * The built-in implementation swept beside a fake good and a fake failing one. It needs the
     * standard-flag adapter (org.tttbench.cli.Main) and the JMH benchmarks (built by -Pjmh) on
     * the class path, and runs on whatever backend it picks (the CPU where there is no GPU):
     * 12m, inner only, one short sequence.
     */
    @Test
    @Timeout(300)
    void builtinSweptAlongsideExternalImplementations() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(classExists(Implementations.MAIN_CLASS)
                        && SweepRunTest.class.getResource("/META-INF/BenchmarkList") != null,
                "the CLI and the JMH benchmarks are not built (they are with -Pjmh)");
        Path ok = Fakes.okScript(tmp, "ok", 0);
        Path bad = Fakes.failingScript(tmp, "bad");
        Path results = tmp.resolve("results");
        Path plan = plan("""
                {"implementations": {"fake": "%s", "broken": "%s"},
                 "passes": [{"name": "p", "implementations": ["tttbench", "fake", "broken"], "model_sizes": ["12m"],
                             "seq_lens": [16], "mini_batches": [16], "inner_only": [true], "warmup": 0, "repeats": 1}]}
                """.formatted(ok, bad));
        Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--timeout", "240");
        assertEquals(0, r.status(), r.err());
        ResultsDir.Listing l = new ResultsDir(results).list();
        List<String> ok2 = l.of(ResultFile.Kind.SUCCESS).stream().map(f -> f.path().getFileName().toString()).toList();
        assertTrue(ok2.contains("tttbench_12m_linear_len16_mb16_b1_float32_inner.json"),
                "built-in failed: " + l.files().stream().map(f -> f.path().getFileName() + ": " + f.reason())
                        .collect(Collectors.joining("; ")));
        ResultFile builtin = l.of(ResultFile.Kind.SUCCESS).stream()
                .filter(f -> f.config().implementation().equals("tttbench")).findFirst().orElseThrow();
        assertEquals("tttbench", builtin.text("implementation"));
        assertTrue(builtin.number("time_ms") > 0);
        assertEquals(Arrays.asList("broken_12m_linear_len16_mb16_b1_float32_inner.json.failed"),
                l.of(ResultFile.Kind.FAILED).stream().map(f -> f.path().getFileName().toString()).toList());
        assertNotNull(l.of(ResultFile.Kind.SUCCESS).stream().filter(f -> f.config().implementation().equals("fake"))
                .findFirst().orElse(null));
    }

    private static boolean classExists(String name) {
        try {
            Class.forName(name, false, SweepRunTest.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    @Test
    void badUsageIsOneLineAndStatusTwo() throws Exception {
        Path plan = plan(PlanTest.ISSUE_PLAN);
        List<String[]> cases = new ArrayList<>();
        cases.add(new String[] {plan.toString()});
        cases.add(new String[] {plan.toString(), "--results", "r", "--timeout", "0"});
        cases.add(new String[] {plan.toString(), "--results", "r", "--shard", "3/2"});
        cases.add(new String[] {plan.toString(), "--results", "r", "--devices", "0,,1"});
        cases.add(new String[] {plan.toString(), "--results", "r", "--status", "--csv"});
        cases.add(new String[] {plan.toString(), "--results", "r", "--frobnicate"});
        cases.add(new String[] {"--results", "r"});
        cases.add(new String[] {tmp.resolve("missing.json").toString(), "--results", "r"});
        for (String[] args : cases) {
            Fakes.Result r = Fakes.sweep(args);
            assertEquals(2, r.status(), String.join(" ", args) + " → " + r.err());
            assertTrue(r.err().startsWith("sweep: "), r.err());
            assertEquals("", r.out());
        }
        Fakes.Result r = Fakes.sweep(plan.toString(), "--results", "r", "--timeout", "x");
        assertEquals("sweep: --timeout must be a non-negative integer, got 'x'\n", r.err());
    }
}
