package org.tttbench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.tttbench.config.RunOptions;
import org.tttbench.config.Workload;
import org.tttbench.harness.RunInfo;

class BenchResultTest {

    static final List<String> FAMILY_KEYS = List.of("implementation", "model_size", "ttt_type", "backward",
            "inner_only", "batch", "seq_len", "mini_batch", "checkpoint_interval", "dtype", "num_params", "time_ms",
            "throughput", "device");

    @Test
    void familyKeysComeFirstInOrderWithTheirTypes() throws Exception {
        Workload c = StandardFlags.parse(new String[] {"--model-size", "12m", "--batch", "2", "--seq-len", "64",
                "--backward", "--checkpoint-interval", "2"});
        BenchResult r = BenchResult.of(c, RunOptions.defaults(), new double[] {10, 12, 14}, new RunInfo("cpu", "CPU (2 threads)", 1234, null));
        String line = r.toJsonLine();
        assertTrue(line.startsWith("{") && !line.contains("\n"));
        assertTrue(line.length() >= 100, "the family treats output under 100 bytes as invalid");
        JsonNode json = new ObjectMapper().readTree(line);
        List<String> keys = new ArrayList<>();
        json.fieldNames().forEachRemaining(keys::add);
        assertEquals(FAMILY_KEYS, keys.subList(0, FAMILY_KEYS.size()));
        assertEquals("tttbench", json.get("implementation").asText());
        assertTrue(json.get("backward").isBoolean() && json.get("inner_only").isBoolean());
        assertTrue(json.get("batch").isInt() && json.get("num_params").isIntegralNumber());
        assertTrue(json.get("time_ms").isDouble() && json.get("throughput").isDouble());
        assertEquals(12.0, json.get("time_ms").asDouble(), 1e-12);
        assertEquals(2 * 64 / 0.012, json.get("throughput").asDouble(), 1e-6);
        assertEquals(10.0, json.get("time_ms_min").asDouble());
        assertEquals(14.0, json.get("time_ms_max").asDouble());
        assertEquals(2.0, json.get("time_ms_stdev").asDouble(), 1e-12);
        assertEquals(1234, json.get("peak_memory_bytes").asLong());
        assertEquals(2, json.get("checkpoint_interval").asInt());
        assertEquals("CPU (2 threads)", json.get("device").asText());
        assertTrue(json.get("launch").isNull(), "the CPU issues eagerly only: launch is null");
    }

    @Test
    void aGpuResultSaysHowItsRunsWereIssued() throws Exception {
        Workload c = StandardFlags.parse(new String[] {"--model-size", "12m"});
        BenchResult r = BenchResult.of(c, RunOptions.defaults(), new double[] {1, 2}, new RunInfo("cuda", "H100 (sm_90)", 1, true, "graph"));
        JsonNode json = new ObjectMapper().readTree(r.toJsonLine());
        List<String> keys = new ArrayList<>();
        json.fieldNames().forEachRemaining(keys::add);
        assertEquals(FAMILY_KEYS, keys.subList(0, FAMILY_KEYS.size()));
        assertEquals("graph", json.get("launch").asText());
        assertTrue(keys.indexOf("launch") > keys.indexOf("verified"));
        assertTrue(r.toSummary().contains("graph launch"), r.toSummary());
    }
}
