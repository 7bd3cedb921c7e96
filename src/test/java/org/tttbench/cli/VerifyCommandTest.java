package org.tttbench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;
import org.tttbench.config.Workload;
import org.tttbench.verify.Verifier;

/** The verify subcommand as users call it. */
class VerifyCommandTest {

    record Outcome(int status, String stdout, String stderr) {
    }

    static Outcome verify(String... args) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        String[] full = new String[args.length + 1];
        full[0] = "verify";
        System.arraycopy(args, 0, full, 1, args.length);
        int status = Main.run(full, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Outcome(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void anEmptySelectionIsOneLineAndStatus2() throws Exception {
        for (String flag : new String[] {"--ttt-type", "--dtype", "--model-size"}) {
            Outcome o = verify(flag, ",");
            assertEquals(2, o.status(), flag);
            assertEquals("", o.stdout(), flag);
            assertEquals(1, o.stderr().lines().count(), o.stderr());
            assertTrue(o.stderr().contains(flag + " ',' selects nothing"), o.stderr());
        }
    }

    @Test
    void badInputIsStatus2() throws Exception {
        Outcome size = verify("--model-size", "7b");
        assertEquals(2, size.status());
        assertTrue(size.stderr().contains("unknown model size"), size.stderr());
        assertEquals(2, verify("--seq-len", "30").status());
        assertEquals(2, verify("--gate", "sideways").status());
        assertEquals(2, verify("--gate", "forward", "--dtype", "float32,bfloat16").status());
        assertEquals(2, verify("--checkpoint-interval", "2").status());
        Outcome help = verify("--help");
        assertEquals(0, help.status());
        assertTrue(help.stdout().contains("--gate"), help.stdout());
    }

    @Test
    void theCpuBackendPassesAgainstItselfInBothPassesOfA16BitCheck() throws Exception {
        Outcome o = verify("--backend", "cpu", "--dtype", "bfloat16", "--ttt-type", "linear", "--seq-len", "16", "--batch",
                "1", "--layers", "1");
        assertEquals(0, o.status(), o.stdout() + o.stderr());
        assertTrue(o.stdout().contains("-- the kernels instantiated for float32"), o.stdout());
        assertTrue(o.stdout().contains("-- bfloat16 against the CPU reference in bfloat16"), o.stdout());
        assertTrue(o.stdout().contains("training step linear c=1 grad model.layers.*.seq_modeling_block.learnable_token_idx"),
                o.stdout());
        assertFalse(o.stdout().contains("FAIL"), o.stdout());
    }

    @Test
    void listsOfMiniBatchesAndBatchesCheckEveryCombination() throws Exception {
        Outcome o = verify("--backend", "cpu", "--dtype", "float32", "--ttt-type", "linear", "--mini-batch", "8,32", "--batch",
                "1,3", "--no-model", "--no-backward", "--layers", "1");
        assertEquals(0, o.status(), o.stdout() + o.stderr());
        for (String point : new String[] {"batch 1, seq-len 64, mini-batch 8", "batch 3, seq-len 64, mini-batch 8",
                "batch 1, seq-len 128, mini-batch 32", "batch 3, seq-len 128, mini-batch 32"}) {
            assertEquals(1, o.stdout().lines().filter(l -> l.startsWith("== 12m float32") && l.contains(point)).count(),
                    point + "\n" + o.stdout());
        }
        assertEquals(2, verify("--mini-batch", ",").status());
        assertEquals(2, verify("--mini-batch", "16,0").status());
        assertEquals(2, verify("--seq-len", "48", "--mini-batch", "16,32").status());
        assertEquals(2, verify("--gate", "innerForward", "--model-size", "125m", "--ttt-type", "mlp", "--dtype", "float32",
                "--mini-batch", "16,32").status());
    }

    @Test
    void theCommandAFailedSetupNamesRunsThatCheck() throws Exception {
        Workload w = new Workload("12m", TttType.MLP, true, true, 2, 128, 16, DType.FLOAT16, 2, false, null);
        String command = Verifier.reproduce("cpu", w, 42);
        assertTrue(command.startsWith("tttbench verify --model-size 12m "), command);
        Outcome o = verify(command.substring("tttbench verify ".length()).split(" "));
        assertEquals(0, o.status(), o.stdout() + o.stderr());
        assertTrue(o.stdout().contains("12m mlp float16 innerBackward, batch 2, seq-len 128, c=2"), o.stdout());
        assertTrue(o.stdout().contains("seed 42"), o.stdout());
        assertTrue(o.stdout().contains("InnerProblem backward mlp c=2 dW2"), o.stdout());
    }
}
