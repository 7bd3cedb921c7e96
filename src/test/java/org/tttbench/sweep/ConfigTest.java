package org.tttbench.sweep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;

class ConfigTest {

    @Test
    void fileNamesFollowSpecSection6() {
        Config fwd = new Config("tttbench", "125m", TttType.LINEAR, false, 1, 2048, 16, DType.FLOAT32, 1, false, false);
        assertEquals("tttbench_125m_linear_len2048_mb16_b1_float32.json", fwd.resultName());
        Config all = new Config("jax", "1.3b", TttType.MLP, true, 4, 1024, 32, DType.BFLOAT16, 8, true, true);
        assertEquals("jax_1.3b_mlp_len1024_mb32_b4_bfloat16_bwd_ckpt8_inner.json.failed", all.tombstoneName());
        Config bwd = new Config("pytorch", "125m-h32", TttType.LINEAR, true, 2, 512, 16, DType.FLOAT16, 1, false, false);
        assertEquals("pytorch_125m-h32_linear_len512_mb16_b2_float16_bwd.json", bwd.resultName());
    }

    @Test
    void namesParseBackToTheSameConfiguration() {
        for (Config c : List.of(
                new Config("tttbench", "12m", TttType.LINEAR, false, 1, 64, 16, DType.FLOAT32, 1, false, false),
                new Config("tttbench", "12m", TttType.MLP, false, 1, 64, 16, DType.FLOAT32, 1, false, true),
                new Config("burn-cubecl", "1b", TttType.MLP, true, 8, 4096, 64, DType.FLOAT16, 4, true, true),
                new Config("jax", "125m-h32", TttType.LINEAR, true, 2, 2048, 16, DType.BFLOAT16, 1, false, false),
                // an old suite's name with an underscore in the implementation still reads from the right
                new Config("triton_kernels", "760m", TttType.LINEAR, false, 1, 2048, 16, DType.FLOAT16, 1, false, false))) {
            assertEquals(new Config.Named(c, false), Config.parseFileName(c.resultName()).orElseThrow());
            assertEquals(new Config.Named(c, true), Config.parseFileName(c.tombstoneName()).orElseThrow());
        }
    }

    @Test
    void explicitCheckpointOneIsReadToo() {
        Config c = Config.parseFileName("jax_125m_linear_len2048_mb16_b1_float32_bwd_ckpt1.json").orElseThrow().config();
        assertEquals(1, c.checkpointInterval());
        assertTrue(c.backward());
    }

    @Test
    void otherNamesAreNotResults() {
        for (String name : List.of("notes.txt", "results.csv", "tttbench_12m_linear_len64_mb16_b1_float32.json.tmp",
                "tttbench_12m_gru_len64_mb16_b1_float32.json", "tttbench_12m_linear_len64_mb16_b1_fp8.json",
                "tttbench_12m_linear_len64_mb16_float32.json", ".tttbench_12m_linear_len64_mb16_b1_float32.json.x")) {
            assertFalse(Config.parseFileName(name).isPresent(), name);
        }
    }

    @Test
    void standardFlagsCarryTheWholeConfiguration() {
        Config c = new Config("x", "60m", TttType.MLP, true, 2, 128, 32, DType.BFLOAT16, 2, true, true);
        assertEquals(List.of("--model-size", "60m", "--ttt-type", "mlp", "--batch", "2", "--seq-len", "128",
                "--mini-batch", "32", "--dtype", "bfloat16", "--backward", "--checkpoint-interval", "2", "--inner-only",
                "--warmup", "0", "--repeats", "1"), c.standardFlags(0, 1));
        Config fwd = new Config("x", "60m", TttType.LINEAR, false, 1, 64, 16, DType.FLOAT32, 1, false, false);
        assertFalse(fwd.standardFlags(null, null).contains("--checkpoint-interval"));
    }

    @Test
    void csvHeaderIsSpecSection6InOrder() {
        String header = ResultsDir.csv(new ResultsDir.Listing(List.of(), List.of())).lines().findFirst().orElseThrow();
        assertEquals("implementation,model_size,ttt_type,backward,batch,seq_len,mini_batch,dtype,time_ms,throughput,"
                + "checkpoint_interval,failed,inner_only", header);
    }

    @Test
    void tombstoneReasonNamesTheVerdictAndTheError() {
        String t = "step 1\njava.lang.OutOfMemoryError: device\nstep 2\n[sweep] exit status 1\n";
        assertEquals("exit status 1: java.lang.OutOfMemoryError: device", ResultFile.failureReason(t));
        assertEquals("last words", ResultFile.failureReason("a\nlast words\n"));
        assertEquals("no output", ResultFile.failureReason(""));
    }
}
