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
import org.tttbench.config.BackendKind;
import org.tttbench.config.BenchmarkKind;
import org.tttbench.config.MemoryEstimate;
import org.tttbench.config.RunOptions;
import org.tttbench.config.Workload;
import org.tttbench.harness.Backends;
import org.tttbench.harness.RunInfo;

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

    public static int run(StandardFlags.Options options, PrintStream out, PrintStream err) throws UsageException {
        Workload config = options.workload();
        RunOptions run = options.run();
        String backendName = resolveBackend(run);
        requireMemory(config, BackendKind.parse(backendName));
        BenchmarkKind kind = config.benchmark();
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
                .warmupIterations(run.warmup())
                .measurementIterations(run.repeats())
                .forks(1)
                .shouldFailOnError(true)
                .jvmArgsAppend("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-D" + RunInfo.PROPERTY + "=" + infoFile)
                .param("modelSize", config.modelSize())
                .param("tttType", config.tttType().flag())
                .param("dtype", config.dtype().flag())
                .param("batch", Integer.toString(config.batch()))
                .param("seqLen", Integer.toString(config.seqLen()))
                .param("miniBatch", Integer.toString(config.miniBatch()))
                .param("checkpointInterval", Integer.toString(config.checkpointInterval()))
                .param("backend", backendName)
                .param("tf32", Boolean.toString(config.tf32()))
                .param("graph", Boolean.toString(run.graph()))
                .param("deviceWarmup", Boolean.toString(run.deviceWarmup()))
                .param("weights", config.weights() == null ? "" : config.weights().toAbsolutePath().toString());
        err.println(parameterLine(config, run, backendName));
        Collection<RunResult> results;
        // Ctrl-C or SIGTERM ends the forked benchmark JVM too: it leaves when its link to this JVM breaks
        // (AdapterIT.stoppingTheSuiteEndsTheForkedBenchmarkJvmToo).
        try {
            results = new Runner(opts.build(), run.verbose()
                    ? OutputFormatFactory.createFormatInstance(err, VerboseMode.NORMAL) : new QuietOutput(err)).run();
        } catch (RunnerException e) {
            err.println("tttbench: benchmark failed: " + rootMessage(e));
            return 1;
        }
        double[] times = repeatTimesMs(results);
        if (times.length != run.repeats()) {
            err.println("tttbench: benchmark failed: expected " + run.repeats() + " timed runs, got " + times.length);
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
        BenchResult result = BenchResult.of(config, run, times, info);
        out.println(run.json() ? result.toJsonLine() : result.toSummary());
        return 0;
    }

    /**
     * Resolves {@code auto} once, here, without opening a device, so the notice about a CPU
     * fallback is printed once and the forked benchmark uses exactly the backend named; a
     * backend that is not usable here is a usage error.
     */
    private static String resolveBackend(RunOptions run) throws UsageException {
        try {
            return Backends.resolve(run.backend(), System.err).flag();
        } catch (IllegalStateException e) {
            throw new UsageException("--backend " + run.backend().flag() + ": " + e.getMessage());
        }
    }

    /** A run that cannot fit is a usage error before anything is allocated: the estimate, and what there is. */
    static void requireMemory(Workload w, BackendKind backend) throws UsageException {
        long need = MemoryEstimate.of(w).total();
        long have = Backends.availableMemory(backend);
        if (have > 0 && need > have) {
            throw new UsageException("this run needs about " + MemoryEstimate.gib(need) + " of memory (estimate) and the "
                    + backend.flag() + " backend has " + MemoryEstimate.gib(have) + " (--batch " + w.batch()
                    + ", --seq-len " + w.seqLen() + ")");
        }
    }

    /**
     * One line naming what runs: the workload, the backend, and the settings that apply there
     * (graph replay and TF32 only on a GPU).
     */
    static String parameterLine(Workload w, RunOptions run, String backend) {
        StringBuilder s = new StringBuilder(String.format(java.util.Locale.ROOT,
                "tttbench: %s %s %s, batch %d, seq-len %d, mini-batch %d, %s%s on %s", w.modelSize(), w.tttType().flag(),
                w.benchmark().method(), w.batch(), w.seqLen(), w.miniBatch(), w.dtype().flag(),
                w.backward() ? ", checkpoint interval " + w.checkpointInterval() : "", backend));
        if (!backend.equals("cpu")) {
            s.append(run.graph() ? ", graph replay" : ", ops issued one by one");
            if (w.tf32()) s.append(", TF32");
        }
        if (w.weights() != null) s.append(", weights ").append(w.weights());
        return s.append(String.format(java.util.Locale.ROOT, "; %d warmup + %d repeats", run.warmup(), run.repeats()))
                .toString();
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
