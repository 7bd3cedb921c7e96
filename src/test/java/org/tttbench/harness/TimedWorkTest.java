package org.tttbench.harness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.tttbench.cpu.CpuBackend;
import org.tttbench.config.DType;

class TimedWorkTest {

    private final List<String> calls = new ArrayList<>();
    private final ByteArrayOutputStream log = new ByteArrayOutputStream();
    private final PrintStream err = new PrintStream(log, true, StandardCharsets.UTF_8);

    private final Runnable work = () -> calls.add("work");
    private final Runnable sync = () -> calls.add("sync");
    private final UnaryOperator<Runnable> recorder = w -> {
        calls.add("record");
        return () -> calls.add("replay");
    };

    private String logged() {
        return log.toString(StandardCharsets.UTF_8);
    }

    @Test
    void aGpuRecordsAfterOneEagerRunAndTimesTheReplay() {
        TimedWork t = TimedWork.prepare(work, sync, recorder, true, err);
        assertEquals(TimedWork.Launch.GRAPH, t.launch());
        assertEquals(List.of("work", "sync", "record"), calls);
        calls.clear();
        t.run();
        assertEquals(List.of("replay", "sync"), calls);
        assertTrue(logged().contains("launch: graph"), logged());
    }

    @Test
    void noGraphIssuesEveryOpAndRecordsNothing() {
        TimedWork t = TimedWork.prepare(work, sync, recorder, false, err);
        assertEquals(TimedWork.Launch.EAGER, t.launch());
        assertEquals(List.of("work", "sync"), calls);
        calls.clear();
        t.run();
        assertEquals(List.of("work", "sync"), calls);
        assertTrue(logged().contains("launch: eager"), logged());
    }

    @Test
    void aFailedRecordingFallsBackToEagerWithOneLine() {
        UnaryOperator<Runnable> failing = w -> {
            calls.add("record");
            throw new IllegalStateException("cuStreamEndCapture: operation not permitted when stream is capturing\nmore");
        };
        TimedWork t = TimedWork.prepare(work, sync, failing, true, err);
        assertEquals(TimedWork.Launch.EAGER, t.launch());
        assertEquals(List.of("work", "sync", "record", "sync"), calls);
        calls.clear();
        t.run();
        assertEquals(List.of("work", "sync"), calls);
        assertEquals(1, logged().lines().count(), logged());
        assertTrue(logged().contains("could not be recorded") && logged().contains("cuStreamEndCapture"), logged());
    }

    @Test
    void withoutARecorderNothingRunsInSetupAndNothingIsSaid() {
        for (boolean graph : new boolean[] {true, false}) {
            calls.clear();
            TimedWork t = TimedWork.prepare(work, sync, null, graph, err);
            assertEquals(TimedWork.Launch.EAGER, t.launch());
            assertEquals(List.of(), calls);
            t.run();
            assertEquals(List.of("work", "sync"), calls);
        }
        assertEquals("", logged());
    }

    @Test
    void theCpuBackendIgnoresTheGraphChoice() {
        try (CpuBackend cpu = new CpuBackend(DType.FLOAT32)) {
            TimedWork t = TimedWork.prepare(cpu, work, true, err);
            assertEquals(TimedWork.Launch.EAGER, t.launch());
            assertEquals(List.of(), calls);
            t.run();
            assertEquals(List.of("work"), calls);
        }
        assertEquals("", logged());
    }
}
