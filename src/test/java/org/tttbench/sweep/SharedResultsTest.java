package org.tttbench.sweep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.io.AtomicFile;

/** Sweeps that share a results directory, and runs that must end with everything they started. */
class SharedResultsTest {

    @TempDir
    Path tmp;

    private Path plan(Path impl, String lists) throws IOException {
        Path p = tmp.resolve("plan.json");
        Files.writeString(p, """
                {"implementations": {"fake": "%s"},
                 "passes": [{"name": "p", "implementations": ["fake"], "model_sizes": ["12m"], "seq_lens": [64], %s}]}
                """.formatted(impl, lists));
        return p;
    }

    private long calls() throws IOException {
        Path log = tmp.resolve("calls.log");
        return Files.exists(log) ? Files.readAllLines(log).size() : 0;
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    @Timeout(120)
    void twoSweepsSharingADirectoryRunEachConfigurationOnce() throws Exception {
        Path plan = plan(Fakes.okScript(tmp, "ok", 0.3), "\"batches\": [1, 2, 3, 4, 5, 6]");
        Path results = tmp.resolve("results");
        List<Fakes.Result> outcomes = new ArrayList<>();
        List<Thread> sweeps = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            Thread t = new Thread(() -> {
                Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--device-memory", "0");
                synchronized (outcomes) {
                    outcomes.add(r);
                }
            });
            sweeps.add(t);
            t.start();
        }
        for (Thread t : sweeps) t.join();
        for (Fakes.Result r : outcomes) assertEquals(0, r.status(), r.err());
        assertEquals(6, calls(), "each configuration ran once: " + outcomes);
        assertEquals(6, names(results).size(), names(results).toString());
        assertTrue(names(results).stream().allMatch(n -> n.endsWith(".json")), "results only, no claims left: "
                + names(results));
        assertTrue(Files.list(results).noneMatch(p -> p.getFileName().toString().endsWith(".claim")));
    }

    private static void claim(Path results, String stem, String host, long pid, Instant since, Instant until)
            throws IOException {
        Files.createDirectories(results);
        Files.writeString(results.resolve("." + stem + ".claim"), "{\"host\":\"" + host + "\",\"pid\":" + pid
                + ",\"process_start\":\"\",\"since\":\"" + since + "\",\"until\":\"" + until + "\"}");
    }

    @Test
    @Timeout(60)
    void staleClaimsAreTakenOverAndLiveOnesAreLeftToTheirSweep() throws Exception {
        Path plan = plan(Fakes.okScript(tmp, "ok", 0), "\"batches\": [1, 2, 3, 4]");
        Path results = tmp.resolve("results");
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        Instant now = Instant.now();
        String stem = "fake_12m_linear_len64_mb16_b%d_float32";
        claim(results, stem.formatted(1), AtomicFile.HOST, gone.pid(), now, now.plusSeconds(3600)); // its sweep is gone
        claim(results, stem.formatted(2), "elsewhere", 42, now.minusSeconds(7200), now.minusSeconds(60)); // too old
        claim(results, stem.formatted(3), "elsewhere", 42, now, now.plusSeconds(3600)); // running over there
        Path unreadable = results.resolve("." + stem.formatted(4) + ".claim");
        Files.writeString(unreadable, "{\"host\":"); // its writer was killed mid-write, long ago
        Files.setLastModifiedTime(unreadable, FileTime.from(now.minusSeconds(600)));

        Fakes.Result status = Fakes.sweep(plan.toString(), "--results", results.toString(), "--status");
        assertTrue(status.out().contains("running now: 1\n  " + stem.formatted(3) + ": elsewhere pid 42 since "),
                status.out());

        Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--device-memory", "0");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.err().contains("elsewhere " + stem.formatted(3) + ": running on elsewhere pid 42"), r.err());
        assertTrue(r.err().contains("1 running in another sweep, 3 to run"), r.err());
        assertEquals(3, calls());
        assertEquals(List.of("." + stem.formatted(3) + ".claim", stem.formatted(1) + ".json", stem.formatted(2) + ".json",
                stem.formatted(4) + ".json"), names(results));
    }

    /** A benchmark that leaves a double-forked helper (reparented, so not its descendant) and one child, then waits. */
    private Path forkingScript() throws IOException {
        return Fakes.script(tmp, "forking", """
                #!/bin/bash
                echo "starting helpers"
                ( sleep 300 & echo $! > "$(dirname "$0")/orphan.pid" )
                sleep 300 &
                echo $! > "$(dirname "$0")/child.pid"
                wait
                """);
    }

    private List<Long> helperPids() throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(tmp.resolve("orphan.pid")) || !Files.exists(tmp.resolve("child.pid"))) {
            assertTrue(System.nanoTime() < deadline, "the benchmark never started its helpers");
            Thread.sleep(20);
        }
        Thread.sleep(100); // the pid files are written, now their content
        return List.of(Long.parseLong(Files.readString(tmp.resolve("orphan.pid")).strip()),
                Long.parseLong(Files.readString(tmp.resolve("child.pid")).strip()));
    }

    @Test
    @Timeout(60)
    void aTimeoutEndsTheRunsWholeProcessGroupDoubleForkedHelpersIncluded() throws Exception {
        Assumptions.assumeTrue(ProcessGroups.available(), "no setsid here to give a run its own process group");
        Path plan = plan(forkingScript(), "\"batches\": [1]");
        Path results = tmp.resolve("results");
        Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--timeout", "2",
                "--device-memory", "0");
        assertEquals(0, r.status(), r.err());
        List<Long> helpers = helperPids();
        long orphan = helpers.get(0);
        assertTrue(ProcessHandle.of(orphan).isEmpty() || ProcessHandle.current().descendants()
                .noneMatch(h -> h.pid() == orphan), "the orphan is no descendant of the sweep: only its group finds it");
        Thread.sleep(300);
        for (long pid : helpers) assertFalse(running(pid), "helper " + pid + " survived the timeout");
        assertEquals("[sweep] timed out after 2 s (process tree killed)",
                Files.readAllLines(results.resolve("fake_12m_linear_len64_mb16_b1_float32.json.failed")).getLast());
    }

    @Test
    @Timeout(90)
    void sigtermOfTheSweepEndsTheRunItStartedAndWritesNothingForIt() throws Exception {
        Assumptions.assumeTrue(ProcessGroups.available(), "no setsid here to give a run its own process group");
        Path plan = plan(forkingScript(), "\"batches\": [1]");
        Path results = tmp.resolve("results");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process sweep = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), SweepCommand.class.getName(), plan.toString(), "--results",
                results.toString(), "--device-memory", "0")
                .redirectErrorStream(true).redirectOutput(tmp.resolve("sweep.log").toFile()).start();
        List<Long> helpers = helperPids();
        assertTrue(Files.exists(results.resolve(".fake_12m_linear_len64_mb16_b1_float32.claim")), "claimed while it runs");
        sweep.destroy(); // SIGTERM, as a scheduler or kill sends it
        assertTrue(sweep.waitFor(30, TimeUnit.SECONDS), Files.readString(tmp.resolve("sweep.log")));
        Thread.sleep(300);
        for (long pid : helpers) assertFalse(running(pid), "helper " + pid + " survived the sweep");
        assertEquals(List.of(), names(results), "no result, no tombstone, no claim: " + Files.readString(tmp.resolve("sweep.log")));
    }

    /** Alive and not a zombie: an orphan killed here waits for an init that may reap it late. */
    static boolean running(long pid) throws IOException {
        Path stat = Path.of("/proc/" + pid + "/stat");
        if (!Files.exists(stat)) return false;
        String s = Files.readString(stat);
        char state = s.charAt(s.lastIndexOf(')') + 2);
        return state != 'Z' && state != 'X';
    }

    @Test
    @Timeout(30)
    void anUnwritableResultsDirectoryIsAnErrorBeforeTheFirstRun() throws Exception {
        Path plan = plan(Fakes.okScript(tmp, "ok", 0), "\"batches\": [1]");
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        List<Path> unwritable = new ArrayList<>(List.of(file.resolve("results"), file));
        if (!"root".equals(System.getProperty("user.name"))) { // root writes anywhere
            Path readOnly = Files.createDirectories(tmp.resolve("read-only"));
            assertTrue(readOnly.toFile().setWritable(false, false));
            unwritable.add(readOnly);
        }
        for (Path results : unwritable) {
            Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--device-memory", "0");
            assertEquals(2, r.status(), r.err());
            assertEquals("", r.out());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().startsWith("sweep: --results " + results + ": cannot write there"), r.err());
            assertEquals(0, calls(), "nothing ran");
        }
    }

    @Test
    @Timeout(30)
    void aDirectoryWithAResultsNameIsReportedNotCountedAsDone() throws Exception {
        Path plan = plan(Fakes.okScript(tmp, "ok", 0), "\"batches\": [1, 2]");
        Path results = tmp.resolve("results");
        Files.createDirectories(results.resolve("fake_12m_linear_len64_mb16_b1_float32.json"));
        Fakes.Result status = Fakes.sweep(plan.toString(), "--results", results.toString(), "--status");
        assertTrue(status.out().contains("invalid: 1\n  fake_12m_linear_len64_mb16_b1_float32.json: not a regular file"
                + " (a directory)"), status.out());
        assertTrue(status.out().contains("pending: 2 of 2"), status.out());
        Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--device-memory", "0");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.err().contains("skip fake_12m_linear_len64_mb16_b1_float32: " + results
                + "/fake_12m_linear_len64_mb16_b1_float32.json exists and is not a regular file"), r.err());
        assertEquals(1, calls());
        assertTrue(Files.isRegularFile(results.resolve("fake_12m_linear_len64_mb16_b2_float32.json")));
        assertEquals(0, Fakes.sweep("--results", results.toString(), "--clean-invalid").status());
        assertTrue(Files.isDirectory(results.resolve("fake_12m_linear_len64_mb16_b1_float32.json")),
                "a directory is its owner's to remove");
    }

    /** One line of the recording fake's runs.log. */
    private record Run(int batch, long start, long end, String cuda, String hip) {}

    @Test
    @Timeout(60)
    void devicesRunTwoConfigurationsAtOnceEachSeeingOnlyItsOwnDevice() throws Exception {
        Path plan = plan(Fakes.recordingScript(tmp, "rec", 1.0), "\"batches\": [1, 2, 3, 4]");
        Path results = tmp.resolve("results");
        Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--devices", "0,1",
                "--device-memory", "0");
        assertEquals(0, r.status(), r.err());
        List<Run> runs = new ArrayList<>();
        for (String line : Files.readAllLines(tmp.resolve("runs.log"))) {
            Map<String, String> kv = new HashMap<>();
            for (String part : line.split(" ")) kv.put(part.substring(0, part.indexOf('=')), part.substring(part.indexOf('=') + 1));
            runs.add(new Run(Integer.parseInt(kv.get("batch")), Long.parseLong(kv.get("start")),
                    Long.parseLong(kv.get("end")), kv.get("cuda"), kv.get("hip")));
        }
        assertEquals(4, runs.size(), runs.toString());
        boolean overlap = false;
        for (Run a : runs) {
            assertTrue(a.cuda().equals("0") || a.cuda().equals("1"), a.toString());
            assertEquals(a.cuda(), a.hip(), "both vendors' variables name the one device: " + a);
            for (Run b : runs) {
                if (a != b && a.start() < b.end() && b.start() < a.end()) {
                    assertTrue(!a.cuda().equals(b.cuda()), "two runs at once on device " + a.cuda() + ": " + runs);
                    overlap = true;
                }
            }
            String stem = "fake_12m_linear_len64_mb16_b" + a.batch() + "_float32";
            ResultFile f = new ResultsDir(results).list().of(ResultFile.Kind.SUCCESS).stream()
                    .filter(x -> x.config().stem().equals(stem)).findFirst().orElseThrow();
            assertEquals(a.cuda(), f.text("sweep_device"), "the stored result names the device it ran on");
            assertTrue(r.err().contains("[start] " + stem + " on device " + a.cuda() + "\n"), r.err());
            assertTrue(r.err().lines().anyMatch(l -> l.contains("ok     " + stem + ".json") && l.contains(" on device "
                    + a.cuda() + " ")), r.err());
        }
        assertTrue(overlap, "no two runs overlapped in time: " + runs);
    }
}
