package org.tttbench.sweep;

import org.tttbench.config.MemoryEstimate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.config.DType;
import org.tttbench.config.TttType;

class PlanTest {

    /** The plan of the issue's interface section. */
    static final String ISSUE_PLAN = """
            {"implementations": {"pytorch": "python3 benchmark.py"},
             "passes": [{"name": "smoke", "implementations": ["tttbench", "pytorch"], "model_sizes": ["12m"],
                         "ttt_types": ["linear", "mlp"], "seq_lens": [64], "mini_batches": [16], "batches": [1],
                         "directions": ["fwd", "bwd"], "dtypes": ["float32"], "checkpoint_intervals": [1],
                         "inner_only": [false, true]}]}
            """;

    static Plan parse(String json) throws Exception {
        return Plan.parse(new ObjectMapper().readTree(json));
    }

    @Test
    void issuePlanExpandsToItsCartesianProduct() throws Exception {
        Plan.Expansion e = parse(ISSUE_PLAN).expand();
        assertEquals(2 * 2 * 2 * 2, e.runs().size()); // impls × types × directions × inner_only
        assertTrue(e.skipped().isEmpty());
        Set<String> names = new HashSet<>();
        e.runs().forEach(r -> names.add(r.config().resultName()));
        assertEquals(16, names.size());
        // The pass lists checkpoint_intervals, so its backward runs are passed the flag and named by it.
        assertTrue(names.contains("pytorch_12m_mlp_len64_mb16_b1_float32_bwd_ckpt1_inner.json"), names.toString());
        assertTrue(names.contains("pytorch_12m_mlp_len64_mb16_b1_float32_inner.json"), names.toString());
    }

    @Test
    void forwardRunsIgnoreCheckpointIntervalsAndDuplicatesAcrossPassesRunOnce() throws Exception {
        Plan.Expansion e = parse("""
                {"passes": [
                  {"name": "a", "model_sizes": ["12m"], "seq_lens": [64], "directions": ["fwd", "bwd"],
                   "checkpoint_intervals": [1, 2, 4]},
                  {"name": "b", "model_sizes": ["12m"], "seq_lens": [64], "directions": ["fwd"]}]}
                """).expand();
        // fwd once, bwd with c = 1, 2, 4; pass b repeats pass a's forward run
        assertEquals(4, e.runs().size());
        assertEquals(List.of("a", "a", "a", "a"), e.runs().stream().map(r -> r.pass().name()).toList());
    }

    @Test
    void invalidCombinationsAreSkippedWithAReason() throws Exception {
        Plan.Expansion e = parse("""
                {"passes": [{"name": "p", "model_sizes": ["12m"], "seq_lens": [64, 100], "mini_batches": [16],
                             "directions": ["bwd"], "checkpoint_intervals": [1, 8]}]}
                """).expand();
        assertEquals(1, e.runs().size()); // len 64, c 1; c 8 > 4 mini-batches
        assertEquals(3, e.skipped().size());
        assertTrue(e.skipped().stream().anyMatch(s -> s.reason().equals("seq-len 100 is not divisible by mini-batch 16")));
        assertTrue(e.skipped().stream().anyMatch(s -> s.reason().equals("checkpoint interval 8 exceeds the 4 mini-batches")));
    }

    @Test
    void badPlansGetOneLineErrorsThatNameTheKey() {
        Map<String, String> cases = Map.of(
                "{\"passes\": [{\"model_sizes\": [\"12m\"], \"seq_len\": [64]}]}", "unknown key \"seq_len\"",
                "{\"passes\": [{\"model_sizes\": [\"2b\"]}]}", "unknown model size '2b'",
                "{\"passes\": [{\"model_sizes\": [\"12m\"], \"implementations\": [\"jax\"]}]}", "implementation \"jax\"",
                "{\"passes\": [{\"model_sizes\": [\"12m\"], \"batches\": [0]}]}", "positive integers",
                "{\"passes\": [{\"model_sizes\": [\"12m\"], \"directions\": [\"up\"]}]}", "unknown direction 'up'",
                "{\"passes\": []}", "non-empty",
                "{\"implementations\": {\"a/b\": \"x\"}, \"passes\": [{\"model_sizes\": [\"12m\"]}]}", "may hold only",
                "{\"passes\": [{\"seq_lens\": [64]}]}", "needs \"model_sizes\"");
        cases.forEach((json, message) -> {
            Plan.PlanException e = assertThrows(Plan.PlanException.class, () -> parse(json), json);
            assertTrue(e.getMessage().contains(message), e.getMessage());
            assertTrue(!e.getMessage().contains("\n"), e.getMessage());
        });
    }

    @Test
    void yamlPlanReadsLikeJson(@TempDir Path dir) throws Exception {
        Path yaml = dir.resolve("plan.yaml");
        Files.writeString(yaml, """
                implementations:
                  pytorch: python3 benchmark.py
                passes:
                  - name: smoke
                    implementations: [tttbench, pytorch]
                    model_sizes: [12m]
                    ttt_types: [linear, mlp]
                    seq_lens: [64]
                    mini_batches: [16]
                    batches: [1]
                    directions: [fwd, bwd]
                    dtypes: [float32]
                    checkpoint_intervals: [1]
                    inner_only: [false, true]
                """);
        Path json = dir.resolve("plan.json");
        Files.writeString(json, ISSUE_PLAN);
        assertEquals(Plan.load(json), Plan.load(yaml));
    }

    @Test
    void shardsCoverThePlanExactlyOnce() throws Exception {
        List<Plan.Planned> runs = parse("""
                {"passes": [{"name": "p", "model_sizes": ["12m", "60m", "125m"], "ttt_types": ["linear", "mlp"],
                             "seq_lens": [64, 128], "directions": ["fwd", "bwd"], "checkpoint_intervals": [1, 2]}]}
                """).expand().runs();
        assertEquals(3 * 2 * 2 * 3, runs.size());
        for (int n : new int[] {1, 2, 3, 5, 7, 36, 50}) {
            List<Plan.Planned> union = new ArrayList<>();
            int smallest = Integer.MAX_VALUE, largest = 0;
            for (int i = 1; i <= n; i++) {
                List<Plan.Planned> slice = Shard.parse(i + "/" + n).select(runs);
                assertEquals(slice, Shard.parse(i + "/" + n).select(runs)); // deterministic
                union.addAll(slice);
                smallest = Math.min(smallest, slice.size());
                largest = Math.max(largest, slice.size());
            }
            assertEquals(runs.size(), union.size(), "n=" + n);
            assertEquals(new HashSet<>(runs), new HashSet<>(union), "n=" + n);
            assertTrue(largest - smallest <= 1, "slices of n=" + n + " are uneven");
        }
        assertThrows(IllegalArgumentException.class, () -> Shard.parse("0/2"));
        assertThrows(IllegalArgumentException.class, () -> Shard.parse("3/2"));
        assertThrows(IllegalArgumentException.class, () -> Shard.parse("1-2"));
    }

    @Test
    void memoryEstimateGrowsWithTheWorkAndSkipsWhatCannotFit() {
        Config small = new Config("t", "12m", TttType.LINEAR, false, 1, 2048, 16, DType.FLOAT32, 1, false, false);
        Config big = new Config("t", "1b", TttType.LINEAR, true, 1, 2048, 16, DType.FLOAT32, 1, false, false);
        Config bigHalf = new Config("t", "1b", TttType.LINEAR, true, 1, 2048, 16, DType.BFLOAT16, 1, false, false);
        Config bigBatch = new Config("t", "1b", TttType.LINEAR, true, 8, 2048, 16, DType.FLOAT32, 1, false, false);
        Config bigCkpt = new Config("t", "1b", TttType.MLP, true, 1, 2048, 16, DType.FLOAT32, 8, true, false);
        Config bigNoCkpt = new Config("t", "1b", TttType.MLP, true, 1, 2048, 16, DType.FLOAT32, 1, false, false);
        long gib = 1L << 30;
        // 1.3 B parameters: weights and float32 gradients alone are over 10 GiB; the whole stays below 40 GiB
        assertTrue(big.memory().total() > 10 * gib && big.memory().total() < 40 * gib,
                MemoryEstimate.gib(big.memory().total()));
        assertTrue(small.memory().total() < gib);
        assertTrue(bigHalf.memory().total() < big.memory().total());
        assertTrue(bigBatch.memory().total() > big.memory().total());
        assertTrue(bigCkpt.memory().total() < bigNoCkpt.memory().total());
        assertNull(SweepCommand.memoryReason(big, OptionalLong.empty()));
        assertNull(SweepCommand.memoryReason(small, OptionalLong.of(16 * gib)));
        String reason = SweepCommand.memoryReason(big, OptionalLong.of(16 * gib));
        assertTrue(reason.startsWith("needs about ") && reason.endsWith("the device has 16.0 GiB"), reason);
    }

    @Test
    void deviceMemoryIsReadFromTheVendorTools() {
        Map<String, Long> nv = DeviceMemory.parseNvidia("0, 81559\n1, 40960\n");
        assertEquals(Map.of("0", 81559L << 20, "1", 40960L << 20), nv);
        assertEquals(OptionalLong.of(40960L << 20), DeviceMemory.smallest(nv, List.of()));
        assertEquals(OptionalLong.of(81559L << 20), DeviceMemory.smallest(nv, List.of("0")));
        Map<String, Long> rocm = DeviceMemory.parseRocm("""
                {"card0": {"VRAM Total Memory (B)": "17163091968", "VRAM Total Used Memory (B)": "12345"}}""");
        assertEquals(Map.of("0", 17163091968L), rocm);
        assertTrue(DeviceMemory.parseRocm("not json").isEmpty());
    }
}
