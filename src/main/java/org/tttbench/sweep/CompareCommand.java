package org.tttbench.sweep;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code compare BASELINE CURRENT [--threshold 10]}: matches the benchmarks of two runs (JMH
 * JSON result files or sweep results directories) by name and params, prints a table, and
 * exits 1 when one got slower by more than the threshold with confidence intervals that do
 * not overlap, so CI can gate on it. A slowdown inside the noise is shown but does not fail.
 * A gate that compares nothing must not pass either: it exits 1 when the baseline is empty,
 * when none of its benchmarks is in the current run, and when a matched score is not a finite
 * positive number (a NaN ratio would otherwise read as "ok").
 */
public final class CompareCommand {

    static final String USAGE = "usage: compare BASELINE CURRENT [--threshold PERCENT]"
            + " (each a JMH JSON result file or a sweep results directory; threshold default 10)";

    /** How one benchmark compares. */
    public enum Verdict { OK, REGRESSION, SLOWER_WITHIN_NOISE, FASTER, NOT_A_SCORE }

    /**
     * One matched benchmark.
     *
     * @param change how much worse the current run is, as a fraction (0.3 = 30% slower; negative = better)
     */
    public record Row(Measurement baseline, Measurement current, double change, boolean overlap, Verdict verdict) {}

    private CompareCommand() {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        List<Path> files = new ArrayList<>();
        double threshold = 10;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) {
                out.println(USAGE);
                return 0;
            } else if (a.equals("--threshold")) {
                if (i + 1 >= args.length) return usage(err, "--threshold needs a value");
                try {
                    threshold = Double.parseDouble(args[++i]);
                } catch (NumberFormatException e) {
                    threshold = Double.NaN;
                }
                if (!(threshold >= 0) || Double.isInfinite(threshold)) {
                    return usage(err, "--threshold must be a percentage >= 0, got '" + args[i] + "'");
                }
            } else if (a.startsWith("-")) {
                return usage(err, "unknown option " + a);
            } else {
                files.add(Path.of(a));
            }
        }
        if (files.size() != 2) return usage(err, "need BASELINE and CURRENT");
        for (Path p : files) {
            if (!Files.exists(p)) return usage(err, p + " does not exist");
        }
        List<Measurement> baseline;
        List<Measurement> current;
        try {
            baseline = Measurement.load(files.get(0));
            current = Measurement.load(files.get(1));
        } catch (IOException e) {
            return usage(err, e.getMessage());
        }
        if (baseline.isEmpty()) {
            err.println("compare: the baseline " + files.get(0) + " holds no benchmarks, so there is nothing to gate on");
            return 1;
        }
        List<Row> rows = compare(baseline, current, threshold / 100);
        out.print(table(rows));
        Map<String, Measurement> cur = byKey(current);
        Map<String, Measurement> base = byKey(baseline);
        long onlyBaseline = base.keySet().stream().filter(k -> !cur.containsKey(k)).count();
        long onlyCurrent = cur.keySet().stream().filter(k -> !base.containsKey(k)).count();
        long regressions = rows.stream().filter(r -> r.verdict() == Verdict.REGRESSION).count();
        out.printf(Locale.ROOT, "%d matched, %d regressions beyond %.1f%%, %d only in baseline, %d only in current%n",
                rows.size(), regressions, threshold, onlyBaseline, onlyCurrent);
        if (rows.isEmpty()) {
            err.println("compare: no benchmark of the baseline " + files.get(0) + " is in " + files.get(1));
            return 1;
        }
        List<Row> unscored = rows.stream().filter(r -> r.verdict() == Verdict.NOT_A_SCORE).toList();
        if (!unscored.isEmpty()) {
            Row first = unscored.getFirst();
            err.println("compare: " + unscored.size() + " matched benchmarks have no finite positive score, first "
                    + first.baseline().key() + " (" + unscoredSide(first) + ")");
            return 1;
        }
        return regressions > 0 ? 1 : 0;
    }

    private static int usage(PrintStream err, String message) {
        err.println("compare: " + message);
        return 2;
    }

    /** Rows for the benchmarks both runs have, in the baseline's order. */
    public static List<Row> compare(List<Measurement> baseline, List<Measurement> current, double threshold) {
        Map<String, Measurement> cur = byKey(current);
        List<Row> rows = new ArrayList<>();
        for (Measurement b : byKey(baseline).values()) {
            Measurement c = cur.get(b.key());
            if (c == null) continue;
            if (!isScore(b.score()) || !isScore(c.score())) {
                rows.add(new Row(b, c, Double.NaN, false, Verdict.NOT_A_SCORE));
                continue;
            }
            double change = b.higherIsBetter() ? b.score() / c.score() - 1 : c.score() / b.score() - 1;
            boolean overlap = Math.max(b.low(), c.low()) <= Math.min(b.high(), c.high());
            Verdict v;
            if (change > threshold) v = overlap ? Verdict.SLOWER_WITHIN_NOISE : Verdict.REGRESSION;
            else if (change < -threshold && !overlap) v = Verdict.FASTER;
            else v = Verdict.OK;
            rows.add(new Row(b, c, change, overlap, v));
        }
        return rows;
    }

    private static boolean isScore(double x) {
        return Double.isFinite(x) && x > 0;
    }

    private static String unscoredSide(Row r) {
        List<String> sides = new ArrayList<>();
        if (!isScore(r.baseline().score())) sides.add("baseline " + r.baseline().score());
        if (!isScore(r.current().score())) sides.add("current " + r.current().score());
        return String.join(", ", sides);
    }

    private static Map<String, Measurement> byKey(List<Measurement> ms) {
        Map<String, Measurement> out = new LinkedHashMap<>();
        for (Measurement m : ms) out.putIfAbsent(m.key(), m);
        return out;
    }

    static String table(List<Row> rows) {
        List<String[]> cells = new ArrayList<>();
        cells.add(new String[] {"benchmark", "params", "baseline", "current", "ratio", "CIs overlap", "verdict"});
        for (Row r : rows) {
            cells.add(new String[] {r.baseline().benchmark(), r.baseline().paramsText(), score(r.baseline()),
                    score(r.current()), String.format(Locale.ROOT, "%.3f", r.current().score() / r.baseline().score()),
                    r.overlap() ? "yes" : "no", verdict(r)});
        }
        int[] width = new int[cells.getFirst().length];
        for (String[] row : cells) {
            for (int i = 0; i < row.length; i++) width[i] = Math.max(width[i], row[i].length());
        }
        StringBuilder sb = new StringBuilder();
        for (String[] row : cells) {
            for (int i = 0; i < row.length; i++) {
                sb.append(i == row.length - 1 ? row[i] : String.format("%-" + width[i] + "s  ", row[i]));
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    private static String score(Measurement m) {
        return String.format(Locale.ROOT, "%.4g ±%.2g %s", m.score(), (m.high() - m.low()) / 2, m.unit()).strip();
    }

    private static String verdict(Row r) {
        String pct = String.format(Locale.ROOT, "%+.1f%%", r.change() * 100);
        return switch (r.verdict()) {
            case OK -> "ok (" + pct + ")";
            case REGRESSION -> "REGRESSION (" + pct + " slower)";
            case SLOWER_WITHIN_NOISE -> "slower within noise (" + pct + ")";
            case FASTER -> "faster (" + pct + ")";
            case NOT_A_SCORE -> "NOT A SCORE (" + unscoredSide(r) + ")";
        };
    }
}
