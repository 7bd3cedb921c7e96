package org.tttbench.tools;

import java.util.Arrays;
import java.util.Locale;
import org.tttbench.gpu.GpuRuntime;

/** Device time of repeated runs of some work, between events recorded around each run. */
final class DeviceTimer {

    private DeviceTimer() {
    }

    /** Mean, median and range of a set of run times. */
    record Stats(double mean, double median, double min, double max) {
        static Stats of(double[] ms) {
            double[] s = ms.clone();
            Arrays.sort(s);
            double mean = Arrays.stream(s).average().orElse(Double.NaN);
            double median = s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
            return new Stats(mean, median, s[0], s[s.length - 1]);
        }

        String format() {
            return String.format(Locale.ROOT, "mean %9.3f  median %9.3f  min %9.3f  max %9.3f ms", mean, median, min, max);
        }
    }

    /** Milliseconds of each of {@code repeats} runs after {@code warmup} untimed ones. */
    static double[] measure(GpuRuntime rt, Runnable work, int warmup, int repeats) {
        for (int i = 0; i < warmup; i++) work.run();
        rt.synchronize();
        long start = rt.createEvent();
        long end = rt.createEvent();
        try {
            double[] ms = new double[repeats];
            for (int i = 0; i < repeats; i++) {
                rt.recordEvent(start);
                work.run();
                rt.recordEvent(end);
                ms[i] = rt.elapsedMillis(start, end);
            }
            return ms;
        } finally {
            rt.destroyEvent(start);
            rt.destroyEvent(end);
        }
    }
}
