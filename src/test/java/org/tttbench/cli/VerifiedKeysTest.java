package org.tttbench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.config.RunOptions;
import org.tttbench.config.Workload;
import org.tttbench.harness.RunInfo;

/** What the setup check verified reaches the result line: its seed and kernels, right after {@code verified}. */
class VerifiedKeysTest {

    @TempDir
    Path dir;

    @Test
    void theSeedAndKernelsTravelFromTheBenchmarkToTheResultLine() throws Exception {
        Path file = dir.resolve("info.json");
        RunInfo sent = new RunInfo("cuda", "H100 (sm_90)", 7, true, "graph", 123456789L,
                "ttt_linear_forward_fused / ttt_linear_backward_chain_fixed",
                "ttt_linear_forward_fused (ahead of time) / ttt_linear_backward_chain_fixed (ahead of time)");
        System.setProperty(RunInfo.PROPERTY, file.toString());
        try {
            sent.publish();
        } finally {
            System.clearProperty(RunInfo.PROPERTY);
        }
        RunInfo got = RunInfo.read(file);
        assertEquals(sent, got);

        Workload c = StandardFlags.parse(new String[] {"--model-size", "12m", "--backward"});
        JsonNode json = new ObjectMapper().readTree(BenchResult.of(c, RunOptions.defaults(), new double[] {1, 2}, got)
                .toJsonLine());
        List<String> keys = new ArrayList<>();
        json.fieldNames().forEachRemaining(keys::add);
        assertEquals(BenchResultTest.FAMILY_KEYS, keys.subList(0, BenchResultTest.FAMILY_KEYS.size()));
        int verified = keys.indexOf("verified");
        assertEquals(List.of("verified", "verify_seed", "verified_kernel", "launch", "kernel"),
                keys.subList(verified, verified + 5));
        assertEquals(sent.kernel(), json.get("kernel").asText());
        assertEquals(123456789L, json.get("verify_seed").asLong());
        assertEquals("ttt_linear_forward_fused / ttt_linear_backward_chain_fixed", json.get("verified_kernel").asText());
        Files.delete(file);
    }

    @Test
    void aCpuRunHasTheKeysWithNoValue() throws Exception {
        Workload c = StandardFlags.parse(new String[] {"--model-size", "12m"});
        JsonNode json = new ObjectMapper().readTree(BenchResult.of(c, RunOptions.defaults(), new double[] {1},
                new RunInfo("cpu", "CPU", 1, null)).toJsonLine());
        for (String key : List.of("verified", "verify_seed", "verified_kernel", "launch", "kernel", "comment")) {
            assertTrue(json.has(key) && json.get(key).isNull(), key + " in " + json);
        }
    }
}
