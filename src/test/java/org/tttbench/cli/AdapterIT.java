package org.tttbench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Runs the packaged benchmarks.jar as users do, in a child process. */
class AdapterIT {

    record Outcome(int status, String stdout, String stderr) {
    }

    static Outcome runJar(String... args) throws IOException, InterruptedException {
        Path jar = Path.of(System.getProperty("tttbench.jar", "target/benchmarks.jar"));
        assertTrue(Files.isRegularFile(jar), "build benchmarks.jar first (./mvnw -Pjmh package): " + jar);
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile("adapter", ".out");
        Path err = Files.createTempFile("adapter", ".err");
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + cmd);
        }
        Outcome o = new Outcome(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                Files.readString(err, StandardCharsets.UTF_8));
        Files.delete(out);
        Files.delete(err);
        return o;
    }

    static JsonNode resultLine(Outcome o) throws IOException {
        assertEquals(0, o.status(), () -> "stderr:\n" + o.stderr());
        List<String> lines = o.stdout().lines().toList();
        assertEquals(1, lines.size(), () -> "stdout must hold the result line alone:\n" + o.stdout());
        assertTrue(lines.get(0).startsWith("{") && lines.get(0).length() >= 100);
        return new ObjectMapper().readTree(lines.get(0));
    }

    @Test
    void innerForwardThroughTheAdapterPrintsOneValidLine() throws Exception {
        JsonNode r = resultLine(runJar("--model-size", "12m", "--ttt-type", "linear", "--inner-only", "--seq-len", "64",
                "--warmup", "1", "--repeats", "2", "--backend", "cpu", "--json", "--comment", "adapter-it"));
        List<String> keys = new ArrayList<>();
        r.fieldNames().forEachRemaining(keys::add);
        assertEquals(BenchResultTest.FAMILY_KEYS, keys.subList(0, BenchResultTest.FAMILY_KEYS.size()));
        assertEquals("12m", r.get("model_size").asText());
        assertTrue(r.get("inner_only").asBoolean());
        assertEquals(false, r.get("backward").asBoolean());
        assertEquals(2, r.get("times_ms").size());
        assertTrue(r.get("time_ms").asDouble() > 0);
        assertEquals("cpu", r.get("backend").asText());
    }

    @Test
    void innerBackwardThroughTheAdapterPrintsOneValidLine() throws Exception {
        JsonNode r = resultLine(runJar("--model-size", "12m", "--ttt-type", "mlp", "--inner-only", "--backward",
                "--seq-len", "64", "--checkpoint-interval", "2", "--warmup", "0", "--repeats", "1", "--backend", "cpu",
                "--json"));
        assertTrue(r.get("backward").asBoolean());
        assertEquals("mlp", r.get("ttt_type").asText());
        assertEquals(2, r.get("checkpoint_interval").asInt());
    }

    @Test
    void listsTheFourBenchmarks() throws Exception {
        Outcome o = runJar("-l");
        assertEquals(0, o.status(), o.stderr());
        for (String m : List.of("forward", "backward", "innerForward", "innerBackward")) {
            assertTrue(o.stdout().contains("org.tttbench.bench.TttBenchmark." + m + "\n")
                    || o.stdout().contains("org.tttbench.bench.TttBenchmark." + m + System.lineSeparator()), o.stdout());
        }
    }

    @Test
    void badFlagExitsWith2AndPrintsNoResult() throws Exception {
        Outcome o = runJar("--model-size", "12m", "--seq-len", "100", "--json");
        assertEquals(2, o.status());
        assertEquals("", o.stdout());
        assertTrue(o.stderr().contains("--seq-len 100 is not divisible by --mini-batch 16"), o.stderr());
    }

    @Test
    void stoppingTheSuiteEndsTheForkedBenchmarkJvmToo() throws Exception {
        Path jar = Path.of(System.getProperty("tttbench.jar", "target/benchmarks.jar"));
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-jar", jar.toString(), "--model-size", "12m", "--seq-len", "256",
                "--warmup", "0", "--repeats", "1000", "--backend", "cpu", "--json")
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        List<ProcessHandle> forks = List.of();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (forks.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(200);
            forks = p.descendants().toList();
        }
        assertTrue(!forks.isEmpty(), "the benchmark JVM was never forked");
        p.destroy();  // SIGTERM, as kill and a terminal's Ctrl-C send to the suite
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the suite did not stop");
        for (ProcessHandle f : forks) {
            f.onExit().get(30, TimeUnit.SECONDS);
            assertTrue(!f.isAlive(), "the forked JVM " + f.pid() + " outlived the suite");
        }
    }
}
