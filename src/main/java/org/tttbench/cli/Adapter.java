package org.tttbench.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.results.BenchmarkResult;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.format.OutputFormatFactory;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.VerboseMode;
import org.tttbench.backend.Backend;
import org.tttbench.backend.Backends;
import org.tttbench.config.BenchConfig;
import org.tttbench.model.Workload;

/**
 * Runs one standard-flag configuration as a JMH benchmark (SingleShotTime, warmup and
 * measurement iterations = --warmup and --repeats, one fork) and prints the family's result.
 * JMH's progress goes to stderr so that stdout carries the result alone.
 */
public final class Adapter {

    /** The JMH benchmark class, by name: it is compiled in the jmh profile only. */
    public static final String BENCHMARK_CLASS = "org.tttbench.bench.TttBenchmark";

    private Adapter() {
    }

    public static int run(BenchConfig config, PrintStream out, PrintStream err) throws UsageException {
        return run(new StandardFlags.Options(config, true), out, err);
    }

    public static int run(StandardFlags.Options options, PrintStream out, PrintStream err) throws UsageException {
        BenchConfig config = options.config();
        String backendName = resolveBackend(config);
        Workload.Kind kind = Workload.Kind.of(config.backward(), config.innerOnly());
        Path infoFile;
        try {
            infoFile = Files.createTempFile("tttbench-run", ".json");
            Files.delete(infoFile);
        } catch (IOException e) {
            err.println("tttbench: cannot create a temporary file: " + e.getMessage());
            return 1;
        }
        ChainedOptionsBuilder opts = new OptionsBuilder()
                .include("^" + Pattern.quote(BENCHMARK_CLASS + "." + kind.method()) + "$")
                .mode(Mode.SingleShotTime)
                .timeUnit(TimeUnit.MILLISECONDS)
                .warmupIterations(config.warmup())
                .measurementIterations(config.repeats())
                .forks(1)
                .shouldFailOnError(true)
                .jvmArgsAppend("--enable-native-access=ALL-UNNAMED", "-D" + RunInfo.PROPERTY + "=" + infoFile)
                .param("modelSize", config.modelSize())
                .param("tttType", config.tttType().flag())
                .param("dtype", config.dtype().flag())
                .param("batch", Integer.toString(config.batch()))
                .param("seqLen", Integer.toString(config.seqLen()))
                .param("miniBatch", Integer.toString(config.miniBatch()))
                .param("checkpointInterval", Integer.toString(config.checkpointInterval()))
                .param("backend", backendName)
                .param("tf32", Boolean.toString(config.tf32()))
                .param("graph", Boolean.toString(options.graph()))
                .param("weights", config.weights() == null ? "" : config.weights().toAbsolutePath().toString());
        err.printf("tttbench: %s %s %s on %s, %d warmup + %d repeats%n", config.modelSize(), config.tttType().flag(),
                kind.method(), backendName, config.warmup(), config.repeats());
        Collection<RunResult> results;
        try {
            results = new Runner(opts.build(), OutputFormatFactory.createFormatInstance(err, VerboseMode.NORMAL)).run();
        } catch (RunnerException e) {
            err.println("tttbench: benchmark failed: " + rootMessage(e));
            return 1;
        }
        double[] times = repeatTimesMs(results);
        if (times.length != config.repeats()) {
            err.println("tttbench: benchmark failed: expected " + config.repeats() + " timed runs, got " + times.length);
            return 1;
        }
        RunInfo info;
        try {
            info = RunInfo.read(infoFile);
            Files.deleteIfExists(infoFile);
        } catch (IOException e) {
            err.println("tttbench: the benchmark did not report its device: " + e.getMessage());
            return 1;
        }
        BenchResult result = BenchResult.of(config, times, info);
        out.println(config.json() ? result.toJsonLine() : result.toSummary());
        return 0;
    }

    /**
     * Resolves {@code auto} once, here, so the notice about a CPU fallback is printed once and
     * the forked benchmark uses exactly the backend named; a backend that cannot run the
     * requested configuration is a usage error.
     */
    private static String resolveBackend(BenchConfig config) throws UsageException {
        try (Backend probe = Backends.open(config.backend(), config.dtype(), config.tf32())) {
            return probe.name();
        } catch (UnsupportedOperationException | IllegalArgumentException | IllegalStateException e) {
            throw new UsageException("--backend " + config.backend().flag() + ": " + e.getMessage());
        }
    }

    /** Time of each measured run, in milliseconds, in order. */
    static double[] repeatTimesMs(Collection<RunResult> results) {
        List<Double> times = new ArrayList<>();
        for (RunResult r : results) {
            for (BenchmarkResult b : r.getBenchmarkResults()) {
                for (IterationResult it : b.getIterationResults()) {
                    times.add(it.getPrimaryResult().getScore());
                }
            }
        }
        return times.stream().mapToDouble(Double::doubleValue).toArray();
    }

    private static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null) c = c.getCause();
        return c.getMessage() == null ? c.toString() : c.getMessage();
    }
}
