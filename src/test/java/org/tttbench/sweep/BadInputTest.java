package org.tttbench.sweep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Bad plans and bad results directories: one line on stderr that names the file or key, status 2, nothing on stdout. */
class BadInputTest {

    @TempDir
    Path tmp;

    private static final String PASS = "{\"name\": \"p\", \"model_sizes\": [\"12m\"]}";

    private static String ints(int n) {
        return IntStream.rangeClosed(1, n).mapToObj(Integer::toString).collect(Collectors.joining(", "));
    }

    static List<Arguments> badPlans() {
        return List.of(
                Arguments.of("plan.json", "{\"passes\": [" + PASS + "]} {\"passes\": []}",
                        "is not valid, line 1, column 53: Trailing token"),
                Arguments.of("plan.json", "{\"passes\": [" + PASS + "]}\ngarbage", "is not valid, line 2"),
                Arguments.of("plan.json", "{\"passes\": [" + PASS + "], \"passes\": [" + PASS + "]}",
                        "Duplicate field 'passes'"),
                Arguments.of("plan.json", "{\"passes\": [{\"name\": \"p\", \"model_sizes\": [\"12m\"], \"batches\": [1],"
                        + " \"batches\": [2]}]}", "Duplicate field 'batches'"),
                Arguments.of("plan.json", "{\"passes\": [" + PASS, "is not valid, line 1"),
                Arguments.of("plan.yaml", "passes:\n  - name: p\n    model_sizes: [12m]\n    model_sizes: [60m]\n",
                        "Duplicate field 'model_sizes'"),
                Arguments.of("plan.yaml", "passes:\n  - name: p\n    model_sizes: [12m\n  - name: q\n",
                        "is not valid, line "),
                Arguments.of("plan.yaml", "passes:\n\t- name: p\n",
                        "is not valid, line 2, column 1: found character '\\t(TAB)' that cannot start any token"),
                Arguments.of("plan.yaml", "passes:\n  - name: p\n    model_sizes: [12m]\n---\npasses: []\n",
                        "is not valid"),
                Arguments.of("plan.json", "{\"passes\": [{\"name\": \"p\", \"model_sizes\": [\"12m\", \"60m\", \"125m\"],"
                        + " \"batches\": [" + ints(200) + "], \"seq_lens\": [" + ints(200) + "]}]}",
                        "the passes expand to 120000 configurations, more than 100000"),
                Arguments.of("plan.json", "{\"passes\": [{\"name\": \"p\", \"model_sizes\": [\"12m\"], \"batches\": ["
                        + ints(1000) + "], \"seq_lens\": [" + ints(1000) + "], \"mini_batches\": [" + ints(1000)
                        + "], \"checkpoint_intervals\": [" + ints(1000) + "], \"directions\": [\"bwd\"]}]}",
                        "the passes expand to 1000000000000 configurations"),
                Arguments.of("plan.json", "{\"passes\": [{\"name\": \"p\", \"model_sizes\": [\"12m\"], \"flags\": [\"--batch\", \"4\"]}]}",
                        "pass \"p\": \"flags\" holds --batch, which the sweep sets from the configuration itself"),
                Arguments.of("plan.json", "{\"passes\": [{\"name\": \"p\", \"model_sizes\": [\"12m\"], \"flags\": \"--tf32\"}]}",
                        "pass \"p\": \"flags\" must be a list of strings"),
                Arguments.of("plan.json", "{\"passes\": [{\"name\": \"p\", \"model_sizes\": [\"12m\"], \"env\": {\"A-B\": \"1\"}}]}",
                        "pass \"p\": \"env\" has the name \"A-B\", which is not a variable name"),
                Arguments.of("plan.json", "{\"passes\": [{\"name\": \"p\", \"model_sizes\": [\"12m\"], \"env\": {\"A\": {}}}]}",
                        "pass \"p\": \"env\" value of A must be a string"),
                Arguments.of("plan.json", "{\"implementations\": {\"jax\": {\"command\": \"x\", \"supports\": {\"fp8\": true}}},"
                        + " \"passes\": [" + PASS + "]}", "implementation \"jax\": \"supports\" has unknown key \"fp8\""),
                Arguments.of("plan.json", "{\"implementations\": {\"jax\": {\"command\": \"x\", \"supports\": {\"inner_only\": 1}}},"
                        + " \"passes\": [" + PASS + "]}", "\"inner_only\" must be true or false, got 1"),
                Arguments.of("plan.json", "{\"implementations\": {\"jax\": {\"env\": {}}}, \"passes\": [" + PASS + "]}",
                        "implementation \"jax\" needs either \"command\" (a shell command) or \"builtin\": true"),
                Arguments.of("plan.json", "{\"implementations\": {\"jax\": {\"command\": \"x\", \"builtin\": true}},"
                        + " \"passes\": [" + PASS + "]}", "implementation \"jax\" needs either"),
                Arguments.of("plan.json", "{\"implementations\": {\"jax\": {\"command\": \"x\", \"supports\": {\"dtypes\": [\"fp8\"]}}},"
                        + " \"passes\": [" + PASS + "]}", "unknown dtype 'fp8'"),
                Arguments.of("plan.json", "{\"passes\": [{\"name\": \"p\", \"model_sizes\": [\"12m\"], \"checkpoint_intervals\": [0]}]}",
                        "\"checkpoint_intervals\" must hold positive integers, got 0"),
                Arguments.of("plan.json", "{\"passes\": [{\"name\": 5, \"model_sizes\": [\"12m\"]}]}",
                        "pass 1: \"name\" must be a non-empty string, got 5"),
                Arguments.of("plan.json", "[]", "a plan must be an object with \"passes\""),
                Arguments.of("plan.json", "", "a plan must be an object with \"passes\""));
    }

    @ParameterizedTest(name = "[{index}] {2}")
    @MethodSource("badPlans")
    @Timeout(20)
    void aBadPlanIsOneLineNamingTheFileAndStatusTwo(String name, String text, String message) throws Exception {
        Path plan = tmp.resolve(name);
        Files.writeString(plan, text);
        for (String mode : List.of("--dry-run", "--status")) {
            Fakes.Result r = Fakes.sweep(plan.toString(), "--results", tmp.resolve("r").toString(), mode);
            assertOneLineError(r, "sweep: ");
            assertTrue(r.err().contains(plan.toString()), "names the file: " + r.err());
            assertTrue(r.err().contains(message), r.err());
        }
    }

    @Test
    void aPlanTooLargeToBeOneOrNotAFileIsRefusedUnread() throws Exception {
        Path big = tmp.resolve("big.json");
        try (RandomAccessFile f = new RandomAccessFile(big.toFile(), "rw")) {
            f.setLength(Plan.MAX_PLAN_BYTES + 1);
        }
        Fakes.Result r = Fakes.sweep(big.toString(), "--results", "r", "--dry-run");
        assertOneLineError(r, "sweep: plan " + big + " is 10485761 bytes, more than a plan may be");
        Fakes.Result dir = Fakes.sweep(tmp.toString(), "--results", "r", "--dry-run");
        assertOneLineError(dir, "sweep: plan " + tmp + " is not a file");
    }

    @Test
    void badResultsOptionsAreOneLine() throws Exception {
        Path file = Files.writeString(tmp.resolve("file"), "x");
        assertOneLineError(Fakes.sweep("--results", file.toString(), "--status"),
                "sweep: --results " + file + " is not a directory");
        assertOneLineError(Fakes.sweep("--results", file.toString(), "--csv"),
                "sweep: --results " + file + " is not a directory");
        assertOneLineError(Fakes.sweep("--results", tmp.toString(), "--status", "--out", "x.csv"),
                "sweep: --out goes with --csv");
    }

    static void assertOneLineError(Fakes.Result r, String start) {
        assertEquals(2, r.status(), r.err());
        assertEquals("", r.out());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith(start), r.err());
        assertFalse(r.err().contains("Exception:") || r.err().contains("\tat "), r.err());
    }

    /**
     * A results directory with a file of 200 MiB and a line of 90 MiB, read by a JVM with 64 MiB
     * of heap: both must be reported from their size, never loaded.
     */
    @Test
    @Timeout(120)
    void hugeFilesAndLinesInAResultsDirectoryAreReportedNotRead() throws Exception {
        Path results = Files.createDirectories(tmp.resolve("results"));
        String good = Fakes.GOOD_LINE.replace("\"fake\"", "\"jax\"");
        Files.writeString(results.resolve("jax_12m_linear_len64_mb16_b1_float32.json"), good + "\n");
        try (RandomAccessFile f = new RandomAccessFile(results.resolve("jax_12m_linear_len64_mb16_b2_float32.json")
                .toFile(), "rw")) {
            f.setLength(200L << 20); // sparse: no disk used
        }
        Path longLine = results.resolve("jax_12m_linear_len64_mb16_b4_float32.json");
        try (var out = Files.newOutputStream(longLine)) {
            out.write("{\"x\":\"".getBytes(StandardCharsets.US_ASCII));
            byte[] chunk = new byte[1 << 20];
            java.util.Arrays.fill(chunk, (byte) 'a');
            for (int i = 0; i < 90; i++) out.write(chunk);
            out.write("\"}\n".getBytes(StandardCharsets.US_ASCII));
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-Xmx64m", "-cp", System.getProperty("java.class.path"),
                SweepCommand.class.getName(), "--results", results.toString(), "--status")
                .redirectError(tmp.resolve("err").toFile()).redirectOutput(tmp.resolve("out").toFile()).start();
        assertTrue(p.waitFor(100, TimeUnit.SECONDS));
        String out = Files.readString(tmp.resolve("out"));
        assertEquals(0, p.exitValue(), out + Files.readString(tmp.resolve("err")));
        assertTrue(out.contains("successful: 1\n"), out);
        assertTrue(out.contains("jax_12m_linear_len64_mb16_b2_float32.json: a file of 209715200 bytes, over the 100 MiB"
                + " a result may be; not read"), out);
        assertTrue(out.contains("jax_12m_linear_len64_mb16_b4_float32.json: the result line is 94371848 bytes, over the"
                + " 1 MiB a result line may be"), out);
    }

    @Test
    void theStrictReaderIsTheOneResultFilesAreJudgedBy() throws IOException {
        Path results = Files.createDirectories(tmp.resolve("results"));
        Files.writeString(results.resolve("jax_12m_linear_len64_mb16_b1_float32.json"),
                Fakes.GOOD_LINE.replace("}", ",\"time_ms\":1}") + "\n");
        ResultFile f = new ResultsDir(results).list().files().getFirst();
        assertEquals(ResultFile.Kind.INVALID, f.kind());
        assertTrue(f.reason().contains("Duplicate field 'time_ms'"), f.reason());
    }
}
