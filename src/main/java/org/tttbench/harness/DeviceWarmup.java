package org.tttbench.harness;

import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Runs the benchmark's own work back to back before anything is timed, until the time of a run
 * settles: a GPU that has idled runs its first short runs at low clocks (2–3× slower, measured
 * on an H200), and the timed runs of a single-shot benchmark, with pauses between them, do
 * not keep it busy long enough to clock up by themselves.
 *
 * <p>Runs are grouped into windows of at least {@link #WINDOW_NANOS} (one run when a run is
 * longer), so that short runs are compared by a mean rather than by their jitter. The warm-up
 * ends when it has lasted {@link #MIN_NANOS} and the last two windows' times per run agree
 * within {@link #TOLERANCE}, or at {@link #LIMIT_NANOS}, checked between windows: a run is
 * never cut short, so a configuration whose runs outlast the limit gets one run.
 */
public final class DeviceWarmup {

    public static final long MIN_NANOS = 1_000_000_000L;
    public static final long WINDOW_NANOS = 100_000_000L;
    public static final long LIMIT_NANOS = 10_000_000_000L;
    public static final double TOLERANCE = 0.02;

    /**
     * @param runs      runs done
     * @param nanos     time they took together
     * @param lastNanos time per run in the last window
     * @param stable    whether the last two windows agreed (false: stopped at the limit)
     */
    public record Result(int runs, long nanos, double lastNanos, boolean stable) {

        /** One line for stderr. */
        public String describe() {
            String at = String.format(Locale.ROOT, "%d run%s in %.2f s, %.3f ms a run at the end", runs,
                    runs == 1 ? "" : "s", nanos / 1e9, lastNanos / 1e6);
            return "tttbench: device warm-up: " + at + (stable
                    ? String.format(Locale.ROOT, ", stable within %.0f%%", TOLERANCE * 100)
                    : String.format(Locale.ROOT, ", stopped at the %.0f s limit before two windows agreed",
                            LIMIT_NANOS / 1e9));
        }
    }

    private DeviceWarmup() {
    }

    /** Warms up with {@code run} (one full run of the benchmark, device synchronized) on the wall clock. */
    public static Result run(Runnable run) {
        return run(run, System::nanoTime, MIN_NANOS, WINDOW_NANOS, LIMIT_NANOS, TOLERANCE);
    }

    static Result run(Runnable run, LongSupplier clock, long minNanos, long windowNanos, long limitNanos,
            double tolerance) {
        long start = clock.getAsLong();
        double previous = Double.NaN;
        int runs = 0;
        while (true) {
            long windowStart = clock.getAsLong();
            int inWindow = 0;
            long now;
            do {
                run.run();
                inWindow++;
                now = clock.getAsLong();
            } while (now - windowStart < windowNanos && now - start < limitNanos);
            runs += inWindow;
            double perRun = (double) (now - windowStart) / inWindow;
            long elapsed = now - start;
            if (!Double.isNaN(previous) && elapsed >= minNanos && Math.abs(perRun - previous) <= tolerance * previous) {
                return new Result(runs, elapsed, perRun, true);
            }
            if (elapsed >= limitNanos) return new Result(runs, elapsed, perRun, false);
            previous = perRun;
        }
    }
}
