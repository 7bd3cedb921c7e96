package org.tttbench.sweep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Driving other implementations: the checkpoint flag only where asked, what each supports, pass flags and env. */
class PlanImplementationsTest {

    @TempDir
    Path tmp;

    private static Map<String, Plan.Planned> byStem(Plan plan) throws Exception {
        return plan.expand().runs().stream().collect(Collectors.toMap(r -> r.config().stem(), r -> r));
    }

    @Test
    void checkpointIntervalIsPassedAndNamedOnlyWhereThePassListsIntervals() throws Exception {
        Plan plan = PlanTest.parse("""
                {"passes": [
                  {"name": "plain", "model_sizes": ["12m"], "seq_lens": [64], "directions": ["fwd", "bwd"]},
                  {"name": "ckpt", "model_sizes": ["60m"], "seq_lens": [64], "directions": ["fwd", "bwd"],
                   "checkpoint_intervals": [1, 4]}]}
                """);
        Map<String, Plan.Planned> runs = byStem(plan);
        assertEquals(List.of("tttbench_12m_linear_len64_mb16_b1_float32", "tttbench_12m_linear_len64_mb16_b1_float32_bwd",
                        "tttbench_60m_linear_len64_mb16_b1_float32", "tttbench_60m_linear_len64_mb16_b1_float32_bwd_ckpt1",
                        "tttbench_60m_linear_len64_mb16_b1_float32_bwd_ckpt4"),
                plan.expand().runs().stream().map(r -> r.config().stem()).toList());
        Implementations impls = new Implementations(plan.implementations());
        List<String> plainBwd = impls.invocation(runs.get("tttbench_12m_linear_len64_mb16_b1_float32_bwd")).command();
        assertTrue(plainBwd.contains("--backward"), plainBwd.toString());
        assertFalse(plainBwd.contains("--checkpoint-interval"), plainBwd.toString());
        List<String> ckpt4 = impls.invocation(runs.get("tttbench_60m_linear_len64_mb16_b1_float32_bwd_ckpt4")).command();
        int at = ckpt4.indexOf("--checkpoint-interval");
        assertEquals("4", ckpt4.get(at + 1), ckpt4.toString());
        List<String> ckpt1 = impls.invocation(runs.get("tttbench_60m_linear_len64_mb16_b1_float32_bwd_ckpt1")).command();
        assertTrue(ckpt1.contains("--checkpoint-interval"), "a listed 1 is passed too: " + ckpt1);
    }

    @Test
    void whatAnImplementationDoesNotSupportIsNotRunnableWithTheReason() throws Exception {
        Plan plan = PlanTest.parse("""
                {"implementations": {
                   "triton": {"command": "python3 triton_run.py",
                              "supports": {"directions": ["fwd"], "inner_only": false, "dtypes": ["float16", "float32"],
                                           "model_sizes": ["125m", "1.3b"]}},
                   "jax": {"command": "cd refs && python3 glue/jax_run.py", "supports": {"checkpointing": false}}},
                 "passes": [{"name": "p", "implementations": ["triton", "jax"], "model_sizes": ["125m", "1b", "350m"],
                             "directions": ["fwd", "bwd"], "inner_only": [false, true], "dtypes": ["float32", "bfloat16"],
                             "checkpoint_intervals": [2]}]}
                """);
        Plan.Expansion e = plan.expand();
        Map<String, String> reasons = e.skipped().stream().collect(Collectors.toMap(s -> s.config().stem(), Plan.Skip::reason));
        assertEquals("triton has no backward benchmark", reasons.get("triton_125m_linear_len2048_mb16_b1_float32_bwd_ckpt2"));
        assertEquals("triton has no inner-only benchmark", reasons.get("triton_125m_linear_len2048_mb16_b1_float32_inner"));
        assertEquals("triton does not run dtype bfloat16", reasons.get("triton_125m_linear_len2048_mb16_b1_bfloat16"));
        assertEquals("triton does not run model size 350m", reasons.get("triton_350m_linear_len2048_mb16_b1_float32"));
        assertTrue(reasons.get("jax_125m_linear_len2048_mb16_b1_float32_bwd_ckpt2")
                .startsWith("jax does not accept --checkpoint-interval"), reasons.toString());
        List<String> runs = e.runs().stream().map(r -> r.config().stem()).sorted().toList();
        // triton: 125m and 1b ("1.3b" is the same model), forward, full, float32; jax: forward only (bwd asks the flag)
        assertEquals(List.of("jax_125m_linear_len2048_mb16_b1_bfloat16", "jax_125m_linear_len2048_mb16_b1_bfloat16_inner",
                "jax_125m_linear_len2048_mb16_b1_float32", "jax_125m_linear_len2048_mb16_b1_float32_inner",
                "jax_1b_linear_len2048_mb16_b1_bfloat16", "jax_1b_linear_len2048_mb16_b1_bfloat16_inner",
                "jax_1b_linear_len2048_mb16_b1_float32", "jax_1b_linear_len2048_mb16_b1_float32_inner",
                "jax_350m_linear_len2048_mb16_b1_bfloat16", "jax_350m_linear_len2048_mb16_b1_bfloat16_inner",
                "jax_350m_linear_len2048_mb16_b1_float32", "jax_350m_linear_len2048_mb16_b1_float32_inner",
                "triton_125m_linear_len2048_mb16_b1_float32", "triton_1b_linear_len2048_mb16_b1_float32"), runs);
    }

    @Test
    void passFlagsAndEnvReachEveryRunOfThePassAndTheImplementationEnvToo() throws Exception {
        Plan plan = PlanTest.parse("""
                {"implementations": {
                   "jax": {"command": "python3 jax_run.py", "env": {"XLA_FLAGS": "--xla_gpu_autotune_level=0", "A": "impl"}},
                   "tttbench-tf32": {"builtin": true}},
                 "passes": [
                   {"name": "strict", "implementations": ["jax"], "model_sizes": ["12m"],
                    "env": {"JAX_DEFAULT_MATMUL_PRECISION": "highest", "A": "pass"}},
                   {"name": "tf32", "implementations": ["tttbench-tf32"], "model_sizes": ["12m"], "flags": ["--tf32"]}]}
                """);
        Map<String, Plan.Planned> runs = byStem(plan);
        Implementations impls = new Implementations(plan.implementations());
        Implementations.Invocation jax = impls.invocation(runs.get("jax_12m_linear_len2048_mb16_b1_float32"));
        assertEquals(Map.of("XLA_FLAGS", "--xla_gpu_autotune_level=0", "JAX_DEFAULT_MATMUL_PRECISION", "highest",
                "A", "pass"), jax.env(), "the pass's env wins over the implementation's");
        assertFalse(jax.command().contains("--tf32"));
        Implementations.Invocation tf32 = impls.invocation(runs.get("tttbench-tf32_12m_linear_len2048_mb16_b1_float32"));
        assertEquals(Implementations.MAIN_CLASS, tf32.command().get(5), "builtin: this suite, under its own name");
        int at = tf32.command().indexOf("--tf32");
        assertTrue(at > tf32.command().indexOf("--dtype") && at < tf32.command().indexOf("--json"), tf32.command().toString());
    }

    @Test
    void twoPassesAskingOneConfigurationWithOtherFlagsAreRefused() throws Exception {
        Plan plan = PlanTest.parse("""
                {"passes": [{"name": "strict", "model_sizes": ["12m"]},
                            {"name": "tf32", "model_sizes": ["12m"], "flags": ["--tf32"]}]}
                """);
        Plan.PlanException e = assertThrows(Plan.PlanException.class, plan::expand);
        assertEquals("passes \"strict\" and \"tf32\" both ask for tttbench_12m_linear_len2048_mb16_b1_float32 with other"
                + " flags or env; give one of them an implementation of its own name", e.getMessage());
        // The same flags twice are the same run, which runs once.
        assertEquals(1, PlanTest.parse("""
                {"passes": [{"name": "a", "model_sizes": ["12m"], "flags": ["--tf32"]},
                            {"name": "b", "model_sizes": ["12m"], "flags": ["--tf32"]}]}
                """).expand().runs().size());
    }

    /** The plan's expansion, which must skip nothing. */
    private static Plan.Expansion expandWhole(Plan plan) throws Exception {
        Plan.Expansion e = plan.expand();
        assertTrue(e.skipped().isEmpty(), e.skipped().toString());
        return e;
    }

    private static Map<String, Long> runsPerImplementation(Plan.Expansion e) {
        return e.runs().stream().collect(Collectors.groupingBy(r -> r.config().implementation(), Collectors.counting()));
    }

    /** The plan docs/sweeps.md shows: this suite beside the JAX and PyTorch reference drivers. */
    @Test
    void theReferenceSideBySidePlanDrivesEachImplementationAsItExpects() throws Exception {
        Plan plan = Plan.load(Path.of("scripts/plans/reference-side-by-side.json"));
        Plan.Expansion e = expandWhole(plan);
        Map<String, Long> perImpl = runsPerImplementation(e);
        // 125m × linear, mlp × fwd, bwd × full, inner-only; float32, B=1, L=2048, K=16
        assertEquals(Map.of("tttbench", 8L, "tttbench-tf32", 8L, "jax", 8L, "jax-strict", 8L, "pytorch", 8L), perImpl);
        Implementations impls = new Implementations(plan.implementations());
        for (Plan.Planned run : e.runs()) {
            Implementations.Invocation inv = impls.invocation(run);
            String impl = run.config().implementation();
            assertFalse(inv.command().contains("--checkpoint-interval"), inv.command().toString());
            assertEquals(impl.equals("tttbench-tf32"), inv.command().contains("--tf32"), impl);
            assertEquals(impl.equals("jax-strict") ? Map.of("JAX_DEFAULT_MATMUL_PRECISION", "highest") : Map.of(),
                    inv.env(), impl);
            if (impl.startsWith("jax")) assertTrue(inv.command().get(2).startsWith("cd refs && python3 glue/jax_run.py"));
            if (impl.equals("pytorch")) assertTrue(inv.command().get(2).startsWith("cd refs && python3 glue/pt_run.py"));
            assertEquals(impl.startsWith("tttbench"), inv.command().contains(Implementations.MAIN_CLASS), impl);
        }
    }

    /** The points off the default this suite is timed at beside the JAX reference, and the checkpoint intervals. */
    @Test
    void theShapePointsPlanTimesEachPointOnBothSides() throws Exception {
        Plan plan = Plan.load(Path.of("scripts/plans/shape-points.json"));
        Plan.Expansion e = expandWhole(plan);
        Map<String, Long> perImpl = runsPerImplementation(e);
        // 125m × linear, mlp × K 8, 16, 32, 64 × fwd, bwd, inner-only; 760m × linear, mlp × fwd, bwd; intervals
        // 1, 2, 4, 8, 16 of both types (this suite only: the reference has no checkpoint flag); its training steps.
        assertEquals(Map.of("tttbench", 16L + 4 + 10, "jax", 16L + 4 + 2), perImpl);
        Implementations impls = new Implementations(plan.implementations());
        for (Plan.Planned run : e.runs()) {
            Implementations.Invocation inv = impls.invocation(run);
            if (run.config().implementation().equals("jax")) {
                assertFalse(inv.command().contains("--checkpoint-interval"), inv.command().toString());
                assertTrue(inv.command().get(2).startsWith("cd refs && python3 glue/jax_run.py"), inv.command().toString());
            }
        }
    }

    /**
     * A stand-in for the reference drivers: argparse's answer to a flag it does not know, and
     * the environment it saw in its result line.
     */
    private Path referenceDriver() throws Exception {
        return Fakes.script(tmp, "ref", """
                #!/bin/bash
                for a in "$@"; do
                  if [ "$a" = --checkpoint-interval ]; then
                    echo "usage: benchmark.py [-h] ..." >&2
                    echo "benchmark.py: error: unrecognized arguments: --checkpoint-interval 1" >&2; exit 2
                  fi
                done
                exec %s "$@"
                """.formatted(Fakes.okScript(tmp, "ok", 0)));
    }

    @Test
    @Timeout(60)
    void referenceDriversRunBackwardWhenThePassListsNoIntervals() throws Exception {
        Path plan = tmp.resolve("plan.json");
        Files.writeString(plan, """
                {"implementations": {"jax": {"command": "%s", "supports": {"checkpointing": false}}},
                 "passes": [{"name": "p", "implementations": ["jax"], "model_sizes": ["12m"], "seq_lens": [64],
                             "directions": ["fwd", "bwd"], "inner_only": [false, true]}]}
                """.formatted(referenceDriver()));
        Path results = tmp.resolve("results");
        Fakes.Result r = Fakes.sweep(plan.toString(), "--results", results.toString(), "--device-memory", "0");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.err().contains("4 ok, 0 failed"), r.err());
        assertTrue(Files.exists(results.resolve("jax_12m_linear_len64_mb16_b1_float32_bwd_inner.json")));

        // Where the pass does list intervals, the driver is not started only to fail: it is not runnable.
        Files.writeString(plan, Files.readString(plan).replace("\"inner_only\"", "\"checkpoint_intervals\": [1], \"inner_only\""));
        Fakes.Result dry = Fakes.sweep(plan.toString(), "--results", tmp.resolve("r2").toString(), "--dry-run",
                "--device-memory", "0");
        assertEquals(0, dry.status(), dry.err());
        assertTrue(dry.out().contains("skip jax_12m_linear_len64_mb16_b1_float32_bwd_ckpt1: jax does not accept"
                + " --checkpoint-interval"), dry.out());
        assertEquals(2, dry.out().lines().filter(l -> l.startsWith("run  ")).count(), dry.out());
    }
}
