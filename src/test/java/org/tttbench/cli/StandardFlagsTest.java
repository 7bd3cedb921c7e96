package org.tttbench.cli;

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
import org.tttbench.config.BenchConfig;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;

class StandardFlagsTest {

    @Test
    void defaultsFollowTheSpec() throws UsageException {
        BenchConfig c = StandardFlags.parse(new String[] {"--json"});
        assertEquals("125m", c.modelSize());
        assertEquals(TttType.LINEAR, c.tttType());
        assertFalse(c.backward());
        assertEquals(1, c.batch());
        assertEquals(2048, c.seqLen());
        assertEquals(16, c.miniBatch());
        assertEquals(DType.FLOAT32, c.dtype());
        assertEquals(3, c.warmup());
        assertEquals(5, c.repeats());
        assertTrue(c.json());
        assertFalse(c.innerOnly());
        assertEquals(1, c.checkpointInterval());
        assertEquals(BackendKind.AUTO, c.backend());
        assertFalse(c.tf32());
        assertNull(c.weights());
    }

    @Test
    void aGpuReplaysAGraphUnlessNoGraph() throws UsageException {
        assertTrue(StandardFlags.parseOptions(new String[] {"--json"}).graph());
        StandardFlags.Options o = StandardFlags.parseOptions(new String[] {"--no-graph", "--model-size", "12m"});
        assertFalse(o.graph());
        assertEquals("12m", o.config().modelSize());
        assertThrows(UsageException.class, () -> StandardFlags.parseOptions(new String[] {"--no-graph=false"}));
    }

    @Test
    void parsesEveryFlagInBothSpellings() throws UsageException {
        BenchConfig c = StandardFlags.parse(new String[] {"--model-size", "1.3b", "--ttt-type=mlp", "--backward",
                "--batch", "4", "--seq-len", "512", "--mini-batch=32", "--dtype", "bfloat16", "--warmup", "0",
                "--repeats", "7", "--inner-only", "--checkpoint-interval", "4", "--comment", "sweep 3",
                "--backend", "cpu"});
        assertEquals("1.3b", c.modelSize(), "the name the user typed is kept");
        assertEquals(2048, c.preset().hidden(), "1.3b is the 1b preset");
        assertEquals(TttType.MLP, c.tttType());
        assertTrue(c.backward());
        assertEquals(4, c.batch());
        assertEquals(512, c.seqLen());
        assertEquals(32, c.miniBatch());
        assertEquals(DType.BFLOAT16, c.dtype());
        assertEquals(0, c.warmup());
        assertEquals(7, c.repeats());
        assertTrue(c.innerOnly());
        assertEquals(4, c.checkpointInterval());
        assertEquals("sweep 3", c.comment());
        assertEquals(BackendKind.CPU, c.backend());
    }

    @Test
    void innerOnlyParameterCountMatchesTheReferenceDriver() throws UsageException {
        BenchConfig c = StandardFlags.parse(new String[] {"--model-size", "125m", "--inner-only"});
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
    void jmhOptionsAreNotStandardFlags() {
        assertFalse(StandardFlags.looksLikeStandardFlags(new String[] {"-l"}));
        assertFalse(StandardFlags.looksLikeStandardFlags(new String[] {"-p", "modelSize=1.3b", "-rf", "json"}));
        assertTrue(StandardFlags.looksLikeStandardFlags(new String[] {"--model-size", "12m"}));
    }
}
