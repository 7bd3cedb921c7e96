package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Assumptions;
import org.tttbench.backend.Backend;
import org.tttbench.harness.Backends;
import org.tttbench.config.BackendKind;
import org.tttbench.config.DType;

/** Without a usable GPU (CI: Debian's libamdhip64, no device), auto falls back; cuda and hip fail clearly. */
class GpuFallbackTest {

    @BeforeAll
    static void noGpuHere() {
        for (GpuRuntimes.Probe p : GpuRuntimes.probe()) {
            Assumptions.assumeFalse(p.usable(), "this machine has a usable GPU: " + p);
        }
    }

    @Test
    void autoFallsBackToTheCpuWithOneNoticeLine() {
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try (Backend b = Backends.open(BackendKind.AUTO, DType.FLOAT32, false)) {
            assertEquals("cpu", b.name());
        } finally {
            System.setErr(saved);
        }
        String notice = err.toString(StandardCharsets.UTF_8);
        assertEquals(1, notice.lines().count(), notice);
        assertTrue(notice.startsWith("tttbench: no usable GPU (cuda: ") && notice.contains("; hip: ")
                && notice.strip().endsWith("using the CPU backend"), notice);
    }

    @Test
    void cudaFailsWithTheReason() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Backends.open(BackendKind.CUDA, DType.FLOAT32, false));
        assertTrue(e.getMessage().startsWith("no usable CUDA device: "), e.getMessage());
        assertTrue(e.getMessage().length() > "no usable CUDA device: ".length() + 10, e.getMessage());
    }

    @Test
    void hipFailsWithTheReason() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Backends.open(BackendKind.HIP, DType.BFLOAT16, false));
        assertTrue(e.getMessage().startsWith("no usable HIP device: "), e.getMessage());
        // With Debian's libamdhip64 the runtime loads and says so itself; without it, where it looked.
        assertTrue(e.getMessage().contains("hip") || e.getMessage().contains("libamdhip64"), e.getMessage());
    }
}
