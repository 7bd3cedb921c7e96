package org.tttbench.sweep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** A run that exits 0 has a result only if its last stdout line is one, of the configuration asked for. */
class ResultValidationTest {

    @TempDir
    Path tmp;

    private static final String STEM = "fake_12m_linear_len64_mb16_b1_float32";
    private static final String GOOD = Fakes.GOOD_LINE;

    /** Sweeps the one configuration STEM with {@code script} as its implementation. */
    private Fakes.Result sweepOne(Path script, Path results, String... more) throws Exception {
        Path plan = tmp.resolve("plan.json");
        Files.writeString(plan, """
                {"implementations": {"fake": "%s"},
                 "passes": [{"name": "p", "implementations": ["fake"], "model_sizes": ["12m"], "seq_lens": [64]}]}
                """.formatted(script));
        List<String> args = new java.util.ArrayList<>(List.of(plan.toString(), "--results", results.toString(),
                "--device-memory", "0"));
        args.addAll(List.of(more));
        return Fakes.sweep(args.toArray(String[]::new));
    }

    static List<Arguments> badOutputs() {
        return List.of(
                Arguments.of("nothing", "", "no result line (nothing on stdout)"),
                Arguments.of("a line after the result", GOOD + "\ndone\n", "the result line is not a JSON object: done"),
                Arguments.of("text after the object", GOOD + " trailing\n", "the result line is not valid JSON"),
                Arguments.of("a second object", GOOD + GOOD + "\n", "the result line is not valid JSON"),
                Arguments.of("duplicate key", GOOD.replace("\"device\":\"cpu\"", "\"device\":\"cpu\",\"batch\":1") + "\n",
                        "the result line is not valid JSON: Duplicate field 'batch'"),
                Arguments.of("short", "{\"time_ms\": 1}\n", "result line under 100 bytes (14)"),
                Arguments.of("missing keys", GOOD.replace("\"num_params\":1000,", "").replace(",\"device\":\"cpu\"",
                        ",\"padding\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxx\"") + "\n",
                        "the result line lacks num_params, device (SPEC §6 keys)"),
                Arguments.of("other batch", GOOD.replace("\"batch\":1", "\"batch\":2") + "\n",
                        "the result line is for batch 2, but 1 was asked for"),
                Arguments.of("other direction and size", GOOD.replace("\"backward\":false", "\"backward\":true")
                                .replace("\"12m\"", "\"60m\"") + "\n",
                        "the result line is for model_size 60m, but 12m was asked for; the result line is for backward"
                                + " true, but false was asked for"),
                Arguments.of("other dtype", GOOD.replace("\"float32\"", "\"bfloat16\"") + "\n",
                        "the result line is for dtype bfloat16, but float32 was asked for"),
                Arguments.of("inner only", GOOD.replace("\"inner_only\":false", "\"inner_only\":true") + "\n",
                        "the result line is for inner_only true, but false was asked for"),
                Arguments.of("zero time", GOOD.replace("12.5", "0") + "\n", "time_ms is 0, not a finite positive time"),
                Arguments.of("negative time", GOOD.replace("12.5", "-3.5") + "\n",
                        "time_ms is -3.5, not a finite positive time"),
                Arguments.of("infinite time", GOOD.replace("12.5", "1e999") + "\n",
                        "time_ms is Infinity, not a finite positive time"),
                Arguments.of("NaN time", GOOD.replace("12.5", "NaN") + "\n", "the result line is not valid JSON"),
                Arguments.of("time as text", GOOD.replace("12.5", "\"12.5\"") + "\n", "time_ms is \"12.5\", not a number"),
                Arguments.of("batch as text", GOOD.replace("\"batch\":1", "\"batch\":\"1\"") + "\n",
                        "batch is \"1\", not an integer"),
                Arguments.of("a sweep key", GOOD.replace("}", ",\"sweep_device\":\"7\"}") + "\n",
                        "the result line has the key sweep_device, which the sweep sets itself"),
                Arguments.of("an array", "[" + GOOD + "]\n", "the result line is not a JSON object"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badOutputs")
    @Timeout(30)
    void anythingButAResultOfTheConfigurationIsATombstoneThatSaysWhy(String what, String stdout, String reason)
            throws Exception {
        Path script = Fakes.printingScript(tmp, "print", stdout);
        Path results = tmp.resolve("results");
        Fakes.Result r = sweepOne(script, results);
        assertEquals(0, r.status(), r.err());
        assertFalse(Files.exists(results.resolve(STEM + ".json")), what + " was stored as a result");
        List<String> tomb = Files.readAllLines(results.resolve(STEM + ".json.failed"));
        assertTrue(tomb.getLast().startsWith("[sweep] exited 0, but " + reason), tomb.getLast());
    }

    @Test
    @Timeout(30)
    void aLineOverAMebibyteIsNotKeptAndIsReportedBySize() throws Exception {
        Path script = Fakes.script(tmp, "huge", """
                #!/bin/bash
                head -c 3000000 /dev/zero | tr '\\0' 'x'; echo
                """);
        Path results = tmp.resolve("results");
        Fakes.Result r = sweepOne(script, results);
        assertEquals(0, r.status(), r.err());
        Path tomb = results.resolve(STEM + ".json.failed");
        assertTrue(Files.size(tomb) < 10_000, "the tombstone keeps a piece of the line, not all of it");
        assertEquals("[sweep] exited 0, but its last stdout line is 3000000 bytes, over the 1 MiB a result line may be",
                Files.readAllLines(tomb).getLast());
    }

    @Test
    @Timeout(30)
    void aGoodLineIsStoredAsPrintedWithTheSweepDeviceAdded() throws Exception {
        Path script = Fakes.printingScript(tmp, "print", "warming up\n" + GOOD + "\n\n");
        Path results = tmp.resolve("results");
        Fakes.Result r = sweepOne(script, results, "--devices", "3");
        assertEquals(0, r.status(), r.err());
        assertEquals(GOOD.substring(0, GOOD.length() - 1) + ",\"sweep_device\":\"3\"}\n",
                Files.readString(results.resolve(STEM + ".json")));
        ResultFile f = new ResultsDir(results).list().of(ResultFile.Kind.SUCCESS).getFirst();
        assertEquals("3", f.text("sweep_device"));
    }

    /** The JAX and PyTorch reference drivers print no checkpoint_interval: they have no checkpointing. */
    private static final String DRIVER_LINE = GOOD.replace("\"checkpoint_interval\":1,", "")
            .replace("\"backward\":false", "\"backward\":true");

    /** Sweeps STEM's backward with {@code script}, the pass given {@code more} keys; returns the results directory. */
    private Path sweepBackward(Path script, String more) throws Exception {
        Path plan = tmp.resolve("plan.json");
        Files.writeString(plan, """
                {"implementations": {"fake": "%s"},
                 "passes": [{"name": "p", "implementations": ["fake"], "model_sizes": ["12m"], "seq_lens": [64],
                             "directions": ["bwd"]%s}]}
                """.formatted(script, more));
        Path results = tmp.resolve("results");
        Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--device-memory", "0");
        assertEquals(0, r.status(), r.err());
        return results;
    }

    @Test
    @Timeout(30)
    void aLineWithoutCheckpointIntervalIsAResultWhereTheFlagWasNotPassed() throws Exception {
        Path results = sweepBackward(Fakes.printingScript(tmp, "print", DRIVER_LINE + "\n"), "");
        assertTrue(Files.exists(results.resolve(STEM + "_bwd.json")));
    }

    @Test
    @Timeout(30)
    void aLineWithoutCheckpointIntervalIsATombstoneWhereTheIntervalWasAskedFor() throws Exception {
        Path results = sweepBackward(Fakes.printingScript(tmp, "print", DRIVER_LINE + "\n"),
                ", \"checkpoint_intervals\": [2]");
        List<String> tomb = Files.readAllLines(results.resolve(STEM + "_bwd_ckpt2.json.failed"));
        assertEquals("[sweep] exited 0, but the result line lacks checkpoint_interval (SPEC §6 keys)", tomb.getLast());
    }
}
