package org.tttbench.cli;

import java.io.PrintStream;
import java.util.Collection;
import java.util.Locale;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.results.BenchmarkResult;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.IterationType;
import org.openjdk.jmh.runner.format.OutputFormat;

/**
 * What the adapter shows of a JMH run without --verbose: one line per warmup and repeat with
 * its time. The forked benchmark's own stderr (the setup notices: backend, gate, launch,
 * warm-up) reaches stderr directly, not through here; JMH's banner, parameter table and summary
 * are left out, since the result line says the same.
 */
final class QuietOutput implements OutputFormat {

    private final PrintStream err;

    QuietOutput(PrintStream err) {
        this.err = err;
    }

    @Override
    public void iterationResult(BenchmarkParams benchmark, IterationParams params, int iteration, IterationResult data) {
        boolean warmup = params.getType() == IterationType.WARMUP;
        err.printf(Locale.ROOT, "tttbench: %s %d/%d: %.3f %s%n", warmup ? "warmup" : "repeat", iteration,
                params.getCount(), data.getPrimaryResult().getScore(), data.getScoreUnit());
    }

    @Override
    public void iteration(BenchmarkParams benchmark, IterationParams params, int iteration) {
    }

    @Override
    public void startBenchmark(BenchmarkParams benchmark) {
    }

    @Override
    public void endBenchmark(BenchmarkResult result) {
    }

    @Override
    public void startRun() {
    }

    @Override
    public void endRun(Collection<RunResult> result) {
    }

    @Override
    public void print(String s) {
    }

    @Override
    public void println(String s) {
    }

    @Override
    public void verbosePrintln(String s) {
    }

    @Override
    public void write(int b) {
    }

    @Override
    public void write(byte[] b) {
    }

    @Override
    public void flush() {
        err.flush();
    }

    @Override
    public void close() {
        err.flush();
    }
}
