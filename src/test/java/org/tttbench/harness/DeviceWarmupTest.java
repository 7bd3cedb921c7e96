package org.tttbench.harness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.function.LongUnaryOperator;
import org.junit.jupiter.api.Test;

class DeviceWarmupTest {

    private static final long MS = 1_000_000L;

    /** A clock that advances by the duration of each run, which {@code duration} gives by the time it starts. */
    private static final class FakeDevice {
        long now;
        int runs;
        final LongUnaryOperator duration;

        FakeDevice(LongUnaryOperator duration) {
            this.duration = duration;
        }

        void run() {
            runs++;
            now += duration.applyAsLong(now);
        }

        DeviceWarmup.Result warmUp() {
            return DeviceWarmup.run(this::run, () -> now, DeviceWarmup.MIN_NANOS, DeviceWarmup.WINDOW_NANOS,
                    DeviceWarmup.LIMIT_NANOS, DeviceWarmup.TOLERANCE);
        }
    }

    @Test
    void steadyShortRunsStopAfterTheMinimumTime() {
        FakeDevice d = new FakeDevice(t -> MS);
        DeviceWarmup.Result r = d.warmUp();
        assertTrue(r.stable());
        assertTrue(r.nanos() >= DeviceWarmup.MIN_NANOS && r.nanos() < DeviceWarmup.MIN_NANOS + 2 * DeviceWarmup.WINDOW_NANOS,
                "" + r.nanos());
        assertEquals(r.runs(), d.runs);
        assertEquals(MS, r.lastNanos(), 1e-6);
    }

    @Test
    void aColdCardRunsUntilItsRunsSettle() {
        // Clocks rise over the first 2 s of work: runs go from 3 ms down to 1 ms, then stay.
        FakeDevice d = new FakeDevice(t -> t >= 2_000 * MS ? MS : 3 * MS - 2 * MS * t / (2_000 * MS));
        DeviceWarmup.Result r = d.warmUp();
        assertTrue(r.stable());
        assertTrue(r.nanos() > 2_100 * MS, "stopped at " + r.nanos());
        assertEquals(MS, r.lastNanos(), 1e-6);
    }

    @Test
    void runsThatNeverSettleStopAtTheLimit() {
        // Each window's runs 5% slower than the last.
        FakeDevice d = new FakeDevice(t -> (long) (MS * Math.pow(1.05, (double) t / DeviceWarmup.WINDOW_NANOS)));
        DeviceWarmup.Result r = d.warmUp();
        assertFalse(r.stable());
        assertTrue(r.nanos() >= DeviceWarmup.LIMIT_NANOS && r.nanos() < DeviceWarmup.LIMIT_NANOS + 200 * MS, "" + r.nanos());
        assertTrue(r.describe().contains("limit"), r.describe());
    }

    @Test
    void aLongRunIsNeverRepeatedPastTheLimit() {
        FakeDevice d = new FakeDevice(t -> 30_000 * MS);
        DeviceWarmup.Result r = d.warmUp();
        assertEquals(1, r.runs());
        assertFalse(r.stable());
    }

    @Test
    void runsOfAFewSecondsCostAFewRuns() {
        FakeDevice d = new FakeDevice(t -> 4_000 * MS);
        DeviceWarmup.Result r = d.warmUp();
        assertEquals(2, r.runs());
        assertTrue(r.stable());
        assertTrue(r.describe().startsWith("tttbench: device warm-up: 2 runs in 8.00 s, 4000.000 ms a run"), r.describe());
    }
}
