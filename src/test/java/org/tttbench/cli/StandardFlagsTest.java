package org.tttbench.cli;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.tttbench.config.BackendKind;
import org.tttbench.config.RunOptions;
import org.tttbench.config.Workload;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;

class StandardFlagsTest {

    @Test
    void defaultsFollowTheSpec() throws UsageException {
        StandardFlags.Options o = StandardFlags.parseOptions(new String[] {"--json"});
        Workload c = o.workload();
        RunOptions r = o.run();
        assertEquals("125m", c.modelSize());
        assertEquals(TttType.LINEAR, c.tttType());
        assertFalse(c.backward());
        assertEquals(1, c.batch());
        assertEquals(2048, c.seqLen());
        assertEquals(16, c.miniBatch());
        assertEquals(DType.FLOAT32, c.dtype());
        assertEquals(3, r.warmup());
        assertEquals(5, r.repeats());
        assertTrue(r.json());
        assertFalse(c.innerOnly());
        assertEquals(1, c.checkpointInterval());
        assertEquals(BackendKind.AUTO, r.backend());
        assertFalse(c.tf32());
        assertNull(c.weights());
    }

    @Test
    void aGpuReplaysAGraphUnlessNoGraph() throws UsageException {
        assertTrue(StandardFlags.parseOptions(new String[] {"--json"}).run().graph());
        StandardFlags.Options o = StandardFlags.parseOptions(new String[] {"--no-graph", "--model-size", "12m"});
        assertFalse(o.run().graph());
        assertEquals("12m", o.workload().modelSize());
        assertThrows(UsageException.class, () -> StandardFlags.parseOptions(new String[] {"--no-graph=false"}));
    }

    @Test
    void parsesEveryFlagInBothSpellings() throws UsageException {
        StandardFlags.Options o = StandardFlags.parseOptions(new String[] {"--model-size", "1.3b", "--ttt-type=mlp",
                "--backward", "--batch", "4", "--seq-len", "512", "--mini-batch=32", "--dtype", "bfloat16", "--warmup", "0",
                "--repeats", "7", "--inner-only", "--checkpoint-interval", "4", "--comment", "sweep 3",
                "--backend", "cpu"});
        Workload c = o.workload();
        RunOptions r = o.run();
        assertEquals("1.3b", c.modelSize(), "the name the user typed is kept");
        assertEquals(2048, c.preset().hidden(), "1.3b is the 1b preset");
        assertEquals(TttType.MLP, c.tttType());
        assertTrue(c.backward());
        assertEquals(4, c.batch());
        assertEquals(512, c.seqLen());
        assertEquals(32, c.miniBatch());
        assertEquals(DType.BFLOAT16, c.dtype());
        assertEquals(0, r.warmup());
        assertEquals(7, r.repeats());
        assertTrue(c.innerOnly());
        assertEquals(4, c.checkpointInterval());
        assertEquals("sweep 3", r.comment());
        assertEquals(BackendKind.CPU, r.backend());
    }

    @Test
    void innerOnlyParameterCountMatchesTheReferenceDriver() throws UsageException {
        Workload c = StandardFlags.parse(new String[] {"--model-size", "125m", "--inner-only"});
        assertEquals(2_421_532L, c.parameterCount());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "--model-size 7b|--model-size: unknown model size '7b'",
            "--ttt-type rnn|--ttt-type: unknown ttt type 'rnn'",
            "--frobnicate|unknown flag --frobnicate",
            "--batch|--batch needs a value",
            "--batch --json|--batch needs a value",
            "--batch two|--batch: 'two' is not an integer",
            "--batch 0|--batch must be a positive integer, got 0",
            "--seq-len -5|--seq-len must be a positive integer, got -5",
            "--mini-batch 0|--mini-batch must be a positive integer",
            "--repeats 0|--repeats must be a positive integer",
            "--warmup -1|--warmup must be an integer >= 0",
            "--seq-len 100 --mini-batch 16|--seq-len 100 is not divisible by --mini-batch 16",
            "--checkpoint-interval 0 --backward|--checkpoint-interval must be a positive integer",
            "--seq-len 64 --mini-batch 16 --checkpoint-interval 5 --backward|--checkpoint-interval must be between 1 and the number of mini-batches (4), got 5",
            "--dtype float64|--dtype: unknown dtype 'float64'",
            "--backend tpu|--backend: unknown backend 'tpu'",
            "--dtype bfloat16 --tf32|--tf32 applies to --dtype float32 only",
            "--backend cpu --tf32|--tf32: the cpu backend computes strict float32 only",
            "--json=yes|--json takes no value",
            "--weights /nonexistent/w.safetensors|--weights: cannot read /nonexistent/w.safetensors",
            "--weights src/test/resources|--weights: cannot read src/test/resources",
            "--model-size 12m --weights src/test/resources/golden/linear_tiny.safetensors|--weights: ",
            "--inner-only --weights src/test/resources/golden/linear_tiny.safetensors|--weights applies to the full model",
            "--model-size 12m  --json|argument 3 is empty",
            "--batch ١٦|--batch: '١٦' is not an integer",
            "--seq-len ６４|--seq-len: '６４' is not an integer",
            "--seq-len 2147483647 --mini-batch 1|--batch 1 --seq-len 2147483647: its largest tensor would hold",
            "--batch 65536 --seq-len 65536|--batch 65536 --seq-len 65536: its largest tensor would hold",
    })
    void badInputIsOneLineOnStderrWithStatus2AndNothingOnStdout(String args, String message) throws Exception {
        UsageException e = assertThrows(UsageException.class, () -> StandardFlags.parse(args.split(" ")));
        assertTrue(e.getMessage().startsWith(message), () -> "message was: " + e.getMessage());

        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.run(args.split(" "), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, status);
        assertEquals("", out.toString(StandardCharsets.UTF_8));
        String stderr = err.toString(StandardCharsets.UTF_8);
        assertEquals(1, stderr.lines().count(), () -> "stderr was: " + stderr);
        assertTrue(stderr.contains(message), () -> "stderr was: " + stderr);
    }

    @Test
    void aRunThatCannotFitIsRefusedBeforeAnythingIsAllocated() {
        UsageException e = assertThrows(UsageException.class, () -> Adapter.requireMemory(StandardFlags.parse(
                new String[] {"--model-size", "1b", "--backward", "--seq-len", "32768"}), BackendKind.CPU));
        assertTrue(e.getMessage().matches("this run needs about [0-9.]+ GiB of memory \\(estimate\\) and the cpu backend"
                + " has [0-9.]+ GiB.*"), e.getMessage());
        assertDoesNotThrow(() -> Adapter.requireMemory(StandardFlags.parse(new String[] {"--model-size", "12m"}),
                BackendKind.CPU));
    }

    @Test
    void jmhOptionsAreNotStandardFlags() {
        assertFalse(StandardFlags.looksLikeStandardFlags(new String[] {"-l"}));
        assertFalse(StandardFlags.looksLikeStandardFlags(new String[] {"-p", "modelSize=1.3b", "-rf", "json"}));
        assertTrue(StandardFlags.looksLikeStandardFlags(new String[] {"--model-size", "12m"}));
    }
}
