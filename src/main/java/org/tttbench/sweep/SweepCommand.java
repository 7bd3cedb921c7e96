package org.tttbench.sweep;

import org.tttbench.config.MemoryEstimate;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.tttbench.io.AtomicFile;

/**
 * {@code sweep}: runs a plan one configuration per process into a results directory, and
 * the directory's bookkeeping (status, CSV, clearing failures and invalid files).
 * {@code sweep slurm} writes a job-array script that runs the plan's shards on a cluster.
 */
public final class SweepCommand {

    static final String USAGE = """
            usage: sweep PLAN --results DIR [--dry-run] [--devices 0,1,…] [--shard i/n] [--timeout S] [--device-memory GiB]
                   sweep [PLAN] --results DIR (--status | --csv [--out FILE] | --clear-failures | --clean-invalid)
                   sweep slurm PLAN --results DIR [--shards N] [--partition P] [--time HH:MM:SS] [--gpus-per-task G]
                                    [--sbatch OPTION]… [--timeout S] [--device-memory GiB] [--out FILE]""";

    static final int DEFAULT_TIMEOUT_S = 300;

    private enum Mode { RUN, STATUS, CSV, CLEAR_FAILURES, CLEAN_INVALID, DRY_RUN }

    /** Bad command line: one line on stderr, exit status 2. */
    static final class UsageException extends Exception {
        UsageException(String message) {
            super(message);
        }
    }

    /** @param out where --csv writes (written beside and renamed); null: stdout */
    private record Options(Path plan, Path results, Mode mode, List<String> devices, Shard shard, Duration timeout,
                           Double deviceMemoryGib, Path out) {}

    private SweepCommand() {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        try {
            if (args.length > 0 && (args[0].equals("-h") || args[0].equals("--help"))) {
                out.println(USAGE);
                return 0;
            }
            if (args.length > 0 && args[0].equals("slurm")) return slurm(List.of(args).subList(1, args.length), out, err);
            Options o = parse(List.of(args));
            return switch (o.mode()) {
                case RUN, DRY_RUN -> sweep(o, out, err);
                case STATUS -> status(o, out);
                case CSV -> csv(o, out, err);
                case CLEAR_FAILURES -> {
                    err.println("sweep: removed " + new ResultsDir(o.results()).clearFailures() + " tombstones from "
                            + o.results());
                    yield 0;
                }
                case CLEAN_INVALID -> {
                    err.println("sweep: removed " + new ResultsDir(o.results()).cleanInvalid() + " invalid result files from "
                            + o.results());
                    yield 0;
                }
            };
        } catch (UsageException e) {
            err.println("sweep: " + e.getMessage());
            return 2;
        } catch (Plan.PlanException e) {
            err.println("sweep: " + e.getMessage());
            return 2;
        } catch (IOException e) {
            err.println("sweep: " + e);
            return 1;
        } catch (UncheckedIOException e) {
            err.println("sweep: " + e.getCause());
            return 1;
        }
    }

    private static Options parse(List<String> args) throws UsageException {
        Path plan = null;
        Path results = null;
        Mode mode = Mode.RUN;
        List<String> devices = List.of();
        Shard shard = Shard.ALL;
        Duration timeout = Duration.ofSeconds(DEFAULT_TIMEOUT_S);
        Double deviceMemory = null;
        Path csvOut = null;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            Mode m = switch (a) {
                case "--status" -> Mode.STATUS;
                case "--csv" -> Mode.CSV;
                case "--clear-failures" -> Mode.CLEAR_FAILURES;
                case "--clean-invalid" -> Mode.CLEAN_INVALID;
                case "--dry-run" -> Mode.DRY_RUN;
                default -> null;
            };
            if (m != null) {
                if (mode != Mode.RUN) {
                    throw new UsageException("choose one of --status, --csv, --clear-failures, --clean-invalid, --dry-run");
                }
                mode = m;
                continue;
            }
            switch (a) {
                case "--results" -> results = Path.of(value(args, ++i, a));
                case "--devices" -> devices = devices(value(args, ++i, a));
                case "--shard" -> {
                    try {
                        shard = Shard.parse(value(args, ++i, a));
                    } catch (IllegalArgumentException e) {
                        throw new UsageException(e.getMessage());
                    }
                }
                case "--timeout" -> timeout = Duration.ofSeconds(positiveInt(value(args, ++i, a), a));
                case "--device-memory" -> deviceMemory = gib(value(args, ++i, a));
                case "--out" -> csvOut = Path.of(value(args, ++i, a));
                default -> {
                    if (a.startsWith("-")) throw new UsageException("unknown option " + a + " (see sweep --help)");
                    if (plan != null) throw new UsageException("one plan only, got " + plan + " and " + a);
                    plan = Path.of(a);
                }
            }
        }
        if (results == null) throw new UsageException("--results DIR is required (see sweep --help)");
        if ((mode == Mode.RUN || mode == Mode.DRY_RUN) && plan == null) {
            throw new UsageException("a plan file is required (see sweep --help)");
        }
        if (csvOut != null && mode != Mode.CSV) throw new UsageException("--out goes with --csv");
        return new Options(plan, results, mode, devices, shard, timeout, deviceMemory, csvOut);
    }

    // ---- running a plan ----

    private static int sweep(Options o, PrintStream out, PrintStream err) throws Plan.PlanException, IOException,
            UsageException {
        Plan plan = Plan.load(o.plan());
        Plan.Expansion expansion = plan.expand();
        List<Plan.Planned> mine = o.shard().select(expansion.runs());
        ResultsDir dir = new ResultsDir(o.results());
        if (o.mode() == Mode.RUN) {
            try {
                dir.checkWritable();
            } catch (IOException e) {
                throw new UsageException("--results " + o.results() + ": cannot write there (" + e + ")");
            }
            dir.removeStaleTemporaries();
        }
        OptionalLong limit;
        if (o.deviceMemoryGib() == null) limit = DeviceMemory.detect(o.devices());
        else if (o.deviceMemoryGib() == 0) limit = OptionalLong.empty();
        else limit = OptionalLong.of((long) (o.deviceMemoryGib() * (1L << 30)));
        Claims claims = new Claims(o.results(), o.timeout());

        List<Plan.Skip> invalid = o.shard().select(expansion.skipped());
        List<Plan.Skip> skipped = new ArrayList<>(invalid);
        List<Plan.Planned> toRun = new ArrayList<>();
        int present = 0;
        int elsewhere = 0;
        for (Plan.Planned p : mine) {
            if (dir.isDone(p.config())) {
                present++;
                continue;
            }
            String obstacle = dir.obstacle(p.config());
            if (obstacle == null) obstacle = memoryReason(p.config(), limit);
            if (obstacle != null) {
                skipped.add(new Plan.Skip(p.config(), p.pass().name(), obstacle));
                continue;
            }
            Optional<Claims.Claim> holder = claims.liveHolder(p.config());
            if (holder.isPresent()) {
                elsewhere++;
                (o.mode() == Mode.DRY_RUN ? out : err).println("elsewhere " + p.config().stem() + ": running on "
                        + holder.get());
                continue;
            }
            toRun.add(p);
        }
        Implementations impls = new Implementations(plan.implementations());
        PrintStream log = o.mode() == Mode.DRY_RUN ? out : err;
        log.println("# plan: " + (expansion.runs().size() + expansion.skipped().size()) + " configurations"
                + (o.shard().equals(Shard.ALL) ? "" : ", shard " + o.shard() + ": "
                        + (mine.size() + invalid.size()))
                + "; " + invalid.size() + " not runnable, " + present + " done or failed before, "
                + (skipped.size() - invalid.size()) + " skipped here (device memory "
                + (limit.isPresent() ? MemoryEstimate.gib(limit.getAsLong()) : "not limited") + "), "
                + elsewhere + " running in another sweep, " + toRun.size() + " to run");
        for (Plan.Skip s : skipped) log.println("skip " + s.config().stem() + ": " + s.reason());
        if (o.mode() == Mode.DRY_RUN) {
            for (Plan.Planned p : toRun) {
                out.println("run  " + p.config().stem() + ": " + displayCommand(impls.invocation(p)));
            }
            return 0;
        }
        return execute(toRun, impls, dir, claims, o, err);
    }

    static String memoryReason(Config c, OptionalLong limit) {
        if (limit.isEmpty()) return null;
        long need = c.memory().total();
        if (need <= limit.getAsLong()) return null;
        return "needs about " + MemoryEstimate.gib(need) + " of device memory (estimate), the device has "
                + MemoryEstimate.gib(limit.getAsLong());
    }

    /** The tally of a sweep's runs, shared by its workers. */
    private record Tally(AtomicInteger done, AtomicInteger ok, AtomicInteger failed, AtomicInteger elsewhere) {
        Tally() {
            this(new AtomicInteger(), new AtomicInteger(), new AtomicInteger(), new AtomicInteger());
        }
    }

    private static int execute(List<Plan.Planned> toRun, Implementations impls, ResultsDir dir, Claims claims,
                               Options o, PrintStream err) {
        Runner runner = new Runner();
        ConcurrentLinkedQueue<Plan.Planned> queue = new ConcurrentLinkedQueue<>(toRun);
        Tally tally = new Tally();
        AtomicReference<IOException> writeError = new AtomicReference<>();
        long start = System.nanoTime();
        List<String> slots = o.devices().isEmpty() ? java.util.Collections.singletonList(null) : o.devices();
        List<Thread> workers = new ArrayList<>();
        for (String device : slots) {
            Worker w = new Worker(device, queue, runner, impls, dir, claims, o.timeout(), tally, toRun.size(), start,
                    writeError, err);
            workers.add(new Thread(w::run, "sweep-worker-" + (device == null ? "0" : device)));
        }
        // Ctrl-C or a scheduler's SIGTERM: take the benchmarks down too, write nothing for them,
        // and give the workers a moment to remove their claims, so another sweep may run those now.
        Thread hook = new Thread(() -> {
            runner.stopAll();
            for (Thread t : workers) {
                try {
                    t.join(10_000);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "sweep-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        workers.forEach(Thread::start);
        for (Thread t : workers) {
            try {
                t.join();
            } catch (InterruptedException e) {
                runner.stopAll();
                Thread.currentThread().interrupt();
            }
        }
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // already shutting down: the hook is running
        }
        if (writeError.get() != null) {
            err.println("sweep: cannot write into " + dir.path() + ": " + writeError.get());
            return 1;
        }
        err.println((runner.stopping() ? "# stopped after " : "# finished ") + tally.done().get() + " of "
                + toRun.size() + " in " + clock(since(start)) + ": " + tally.ok().get() + " ok, "
                + tally.failed().get() + " failed, " + tally.elsewhere().get() + " run by another sweep");
        return 0;
    }

    /** One device's share of a sweep: takes configurations off the queue and runs them there, one at a time. */
    private record Worker(String device, ConcurrentLinkedQueue<Plan.Planned> queue, Runner runner,
                          Implementations impls, ResultsDir dir, Claims claims, Duration timeout, Tally tally,
                          int total, long startNanos, AtomicReference<IOException> writeError, PrintStream err) {

        void run() {
            Map<String, String> deviceEnv = new HashMap<>();
            if (device != null) {
                deviceEnv.put("CUDA_VISIBLE_DEVICES", device);
                deviceEnv.put("HIP_VISIBLE_DEVICES", device);
            }
            String deviceName = device != null ? device : inheritedDevices();
            for (Plan.Planned p; writeError.get() == null && !runner.stopping() && (p = queue.poll()) != null; ) {
                try {
                    runClaimed(p, deviceEnv, deviceName);
                } catch (IOException e) {
                    writeError.compareAndSet(null, e);
                    return;
                }
            }
        }

        private void runClaimed(Plan.Planned p, Map<String, String> deviceEnv, String deviceName) throws IOException {
            Config c = p.config();
            Optional<Claims.Claim> claim = claims.acquire(c);
            if (claim.isEmpty() || dir.isDone(c)) { // done meanwhile by a sweep that has released it since
                claim.ifPresent(this::release);
                tally.elsewhere().incrementAndGet();
                log("[elsewhere] " + c.stem() + " is run by another sweep");
                return;
            }
            try {
                log("[start] " + c.stem() + " on device " + deviceName);
                Runner.Outcome r = runner.run(impls.invocation(p), deviceEnv, c, timeout);
                if (runner.stopping()) return;
                String verdict = r.verdict();
                if (r.ok()) {
                    try {
                        dir.writeResult(c, r.result().withSweepDevice(deviceName));
                    } catch (ResultLine.NotAResult e) {
                        verdict = "exited 0, but " + e.getMessage();
                    }
                }
                if (verdict == null) {
                    tally.ok().incrementAndGet();
                } else {
                    List<String> lines = new ArrayList<>(r.tail());
                    lines.add(ResultFile.SWEEP_LINE_PREFIX + verdict);
                    dir.writeTombstone(c, lines);
                    tally.failed().incrementAndGet();
                }
                progress(tally.done().incrementAndGet(), c, verdict, r.elapsed(), deviceName);
            } finally {
                release(claim.get());
            }
        }

        private void release(Claims.Claim claim) {
            try {
                claims.release(claim);
            } catch (IOException e) {
                log("sweep: could not remove the claim " + claim.file() + ": " + e); // it goes stale by itself
            }
        }

        private void progress(int n, Config c, String verdict, Duration took, String deviceName) {
            Duration elapsed = since(startNanos);
            Duration eta = elapsed.multipliedBy(total - n).dividedBy(n);
            String what = verdict == null ? "ok     " + c.resultName()
                    : "FAILED " + c.tombstoneName() + " (" + verdict + ")";
            log(String.format(Locale.ROOT, "[%d/%d] %s in %.1f s on device %s | elapsed %s, remaining ~%s", n, total,
                    what, took.toMillis() / 1000.0, deviceName, clock(elapsed), clock(eta)));
        }

        private void log(String line) {
            synchronized (err) {
                err.println(line);
            }
        }
    }

    /**
     * The devices a run sees without --devices: what the sweep itself was given (Slurm sets
     * CUDA_VISIBLE_DEVICES per task), else every device of the host.
     */
    private static String inheritedDevices() {
        for (String variable : List.of("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")) {
            String v = System.getenv(variable);
            if (v != null && !v.isBlank()) return v;
        }
        return "all";
    }

    // ---- bookkeeping ----

    private static int csv(Options o, PrintStream out, PrintStream err) throws IOException, UsageException {
        String csv = ResultsDir.csv(existingDir(o).list());
        if (o.out() == null) {
            out.print(csv);
        } else {
            AtomicFile.write(o.out(), csv);
            err.println("sweep: wrote " + o.out());
        }
        return 0;
    }

    /** The results directory of a command that reads one: a path that is something else is bad input. */
    private static ResultsDir existingDir(Options o) throws UsageException {
        if (Files.exists(o.results()) && !Files.isDirectory(o.results())) {
            throw new UsageException("--results " + o.results() + " is not a directory");
        }
        return new ResultsDir(o.results());
    }

    private static int status(Options o, PrintStream out) throws IOException, Plan.PlanException, UsageException {
        ResultsDir dir = existingDir(o);
        Plan.Expansion ex = o.plan() == null ? null : Plan.load(o.plan()).expand(); // a bad plan: no half a status
        ResultsDir.Listing l = dir.list();
        out.println("results: " + o.results());
        out.println("successful: " + l.of(ResultFile.Kind.SUCCESS).size());
        out.println("failed: " + l.of(ResultFile.Kind.FAILED).size());
        for (ResultFile f : l.of(ResultFile.Kind.FAILED)) out.println("  " + f.path().getFileName() + ": " + f.reason());
        out.println("invalid: " + l.of(ResultFile.Kind.INVALID).size());
        for (ResultFile f : l.of(ResultFile.Kind.INVALID)) out.println("  " + f.path().getFileName() + ": " + f.reason());
        if (!l.unrecognised().isEmpty()) {
            out.println("other files (not result names): " + l.unrecognised().size());
        }
        if (ex != null) {
            List<Plan.Planned> mine = o.shard().select(ex.runs());
            List<Plan.Planned> pending = mine.stream().filter(p -> !dir.isDone(p.config())).toList();
            out.println("pending: " + pending.size() + " of " + mine.size() + " configurations in the plan"
                    + (o.shard().equals(Shard.ALL) ? "" : " (shard " + o.shard() + ")"));
            Claims claims = new Claims(o.results(), o.timeout());
            List<String> running = new ArrayList<>();
            for (Plan.Planned p : pending) {
                claims.liveHolder(p.config()).ifPresent(h -> running.add("  " + p.config().stem() + ": " + h));
            }
            out.println("running now: " + running.size());
            running.forEach(out::println);
            List<Plan.Skip> notRunnable = o.shard().select(ex.skipped());
            out.println("not runnable: " + notRunnable.size());
            for (Plan.Skip s : notRunnable) out.println("  " + s.config().stem() + ": " + s.reason());
        }
        return 0;
    }

    // ---- slurm ----

    private static int slurm(List<String> args, PrintStream out, PrintStream err) throws UsageException, IOException,
            Plan.PlanException {
        Path plan = null;
        Path results = null;
        Path file = null;
        int shards = 4;
        String partition = null;
        String time = null;
        int gpus = 1;
        List<String> sbatch = new ArrayList<>();
        List<String> pass = new ArrayList<>();
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            switch (a) {
                case "--results" -> results = Path.of(value(args, ++i, a));
                case "--shards" -> shards = positiveInt(value(args, ++i, a), a);
                case "--partition" -> partition = oneLine(value(args, ++i, a), a);
                case "--time" -> time = oneLine(value(args, ++i, a), a);
                case "--gpus-per-task" -> gpus = nonNegativeInt(value(args, ++i, a), a);
                case "--sbatch" -> sbatch.add(oneLine(value(args, ++i, a), a));
                case "--out" -> file = Path.of(value(args, ++i, a));
                case "--timeout" -> pass.addAll(List.of(a, Integer.toString(positiveInt(value(args, ++i, a), a))));
                case "--device-memory" -> {
                    String v = value(args, ++i, a);
                    gib(v);
                    pass.addAll(List.of(a, v));
                }
                default -> {
                    if (a.startsWith("-")) {
                        throw new UsageException("unknown option " + a + " for sweep slurm (see sweep --help)");
                    }
                    if (plan != null) throw new UsageException("one plan only, got " + plan + " and " + a);
                    plan = Path.of(a);
                }
            }
        }
        if (plan == null || results == null) {
            throw new UsageException("sweep slurm needs PLAN and --results DIR (see sweep --help)");
        }
        Plan.load(plan); // a broken plan should fail now, not in every array task
        Files.createDirectories(results); // Slurm does not create the directory of --output
        String script = new SlurmScript(plan, results, shards, partition, time, gpus, sbatch, pass).render();
        if (file == null) {
            out.print(script);
        } else {
            AtomicFile.write(file, script);
            file.toFile().setExecutable(true);
            err.println("sweep: wrote " + file + "; submit it with: sbatch " + file);
        }
        return 0;
    }

    // ---- small helpers ----

    private static String value(List<String> args, int i, String flag) throws UsageException {
        if (i >= args.size()) throw new UsageException(flag + " needs a value");
        return args.get(i);
    }

    private static int positiveInt(String v, String flag) throws UsageException {
        int n = nonNegativeInt(v, flag);
        if (n == 0) throw new UsageException(flag + " must be a positive integer, got " + v);
        return n;
    }

    private static int nonNegativeInt(String v, String flag) throws UsageException {
        try {
            int n = Integer.parseInt(v);
            if (n < 0) throw new NumberFormatException();
            return n;
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " must be a non-negative integer, got '" + v + "'");
        }
    }

    private static double gib(String v) throws UsageException {
        try {
            double g = Double.parseDouble(v);
            if (!(g >= 0) || Double.isInfinite(g)) throw new NumberFormatException();
            return g;
        } catch (NumberFormatException e) {
            throw new UsageException("--device-memory must be GiB >= 0 (0: no limit), got '" + v + "'");
        }
    }

    private static final Pattern DEVICE = Pattern.compile("[A-Za-z0-9:-]+");

    private static List<String> devices(String v) throws UsageException {
        List<String> out = new ArrayList<>();
        for (String d : v.split(",", -1)) {
            String s = d.strip();
            if (!DEVICE.matcher(s).matches()) {
                throw new UsageException("--devices must list device ids like 0,1, got '" + v + "'");
            }
            if (out.contains(s)) throw new UsageException("--devices lists " + s + " twice");
            out.add(s);
        }
        return List.copyOf(out);
    }

    private static String oneLine(String v, String flag) throws UsageException {
        if (v.contains("\n") || v.contains("\r")) throw new UsageException(flag + " must be one line");
        return v;
    }

    /** The invocation as a shell would take it: the plan's variables first, then the command. */
    private static String displayCommand(Implementations.Invocation invocation) {
        Pattern plain = Pattern.compile("[A-Za-z0-9_./:=,+@%-]+");
        List<String> words = new ArrayList<>();
        new java.util.TreeMap<>(invocation.env()).forEach((k, v) -> words.add(k + "=" + v));
        words.addAll(invocation.command());
        return words.stream().map(s -> plain.matcher(s).matches() ? s : SlurmScript.quote(s))
                .collect(Collectors.joining(" "));
    }

    private static Duration since(long startNanos) {
        return Duration.ofNanos(System.nanoTime() - startNanos);
    }

    static String clock(Duration d) {
        long s = d.toSeconds();
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    }
}
