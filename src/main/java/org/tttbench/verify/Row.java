package org.tttbench.verify;

import java.util.List;
import java.util.Locale;
import org.tttbench.config.DType;

/**
 * One comparison of {@code verify}: what was compared, the storage type of the compared tensors,
 * the {@link org.tttbench.validate.RelativeError} and the tolerance it was held to. A NaN error
 * (a NaN or unmatched infinity in the result, or an op that threw) never passes.
 */
public record Row(String op, DType dtype, double error, double tolerance) {

    public static final String HEADER = String.format(Locale.ROOT, "%-52s %-9s %10s %10s  %s", "op", "dtype", "rel.error",
            "tolerance", "result");

    /** A check that threw instead of producing a result: a kernel that fails to launch, say. */
    static Row error(DType dtype, RuntimeException e) {
        return new Row("ERROR " + e, dtype, Double.NaN, 0);
    }

    public boolean passed() {
        return error <= tolerance;
    }

    public String format() {
        return String.format(Locale.ROOT, "%-52s %-9s %10.3e %10.1e  %s", op, dtype.flag(), error, tolerance,
                passed() ? "PASS" : "FAIL");
    }

    /**
     * One row for several comparisons of the same kind (a gradient of every layer, say): the one
     * furthest over or nearest to its tolerance, under {@code op}.
     */
    static Row worst(String op, List<Row> rows) {
        Row worst = null;
        for (Row r : rows) {
            if (worst == null || ratio(r) > ratio(worst)) worst = r;
        }
        if (worst == null) throw new IllegalArgumentException("no rows for " + op);
        return new Row(op, worst.dtype(), worst.error(), worst.tolerance());
    }

    /** How much of its tolerance a row uses; NaN errors first. */
    private static double ratio(Row r) {
        if (Double.isNaN(r.error()) || Double.isNaN(r.tolerance())) return Double.POSITIVE_INFINITY;
        if (r.tolerance() == 0) return r.error() == 0 ? 0 : Double.POSITIVE_INFINITY;
        return r.error() / r.tolerance();
    }
}
