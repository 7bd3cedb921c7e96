package org.tttbench.verify;

import java.io.PrintStream;
import java.util.List;
import java.util.Map;
import org.tttbench.backend.Backend;
import org.tttbench.config.DType;
import org.tttbench.validate.RelativeError;

/**
 * One run of the checks: the backend under test and its reference, how their rows are judged, and
 * where the rows go. A float32 check is one pass; a 16-bit one is two, with the same seed and so the
 * same inputs: first {@link Role#TWIN}, then {@link Role#REDUCED}.
 *
 * @param subject     the backend whose kernels are checked: the one under test, or in a twin pass the
 *                    16-bit backend whose float32 instantiation runs (its kernel options are the ones
 *                    checked, its storage type what every input is rounded to)
 * @param float32Refs the float32 reference's result of each comparison of a twin pass, by op (null in a
 *                    float32 pass): what the 16-bit pass measures the spread of its reference against
 * @param rows        every row of the pass, in the order made
 * @param log         where each row is printed as it is made, or null
 */
record Pass(Role role, Backend test, Backend ref, Backend subject, boolean tf32, Map<String, float[]> float32Refs,
        List<Row> rows, PrintStream log) {

    enum Role {
        /** Float32 against the float32 reference, at float32 tolerance. */
        FLOAT32,
        /**
         * A 16-bit backend's kernels instantiated for float32 (the same templates), on inputs rounded to
         * the 16-bit type, against the float32 reference at float32 tolerance; the reference's results
         * are kept for the 16-bit pass.
         */
        TWIN,
        /** 16-bit against the CPU backend at the same storage, at tolerances from the spread. */
        REDUCED
    }

    Pass {
        if (test.dtype() != ref.dtype()) throw new IllegalArgumentException("backends store different types");
        if ((role == Role.FLOAT32) != (float32Refs == null)) {
            throw new IllegalArgumentException("a 16-bit pass needs the float32 references, a float32 pass has none");
        }
    }

    /** What every input is rounded to before it is uploaded: the storage of the run. */
    DType inputs() {
        return subject.dtype();
    }

    /** Keeps the float32 reference's result of {@code op} (twin pass). */
    void record(String op, float[] values) {
        if (float32Refs.putIfAbsent(op, values) != null) throw new IllegalStateException("two comparisons named " + op);
    }

    /**
     * The spread of the 16-bit reference's result of {@code op} against the float32 reference's on the
     * same inputs; NaN when the twin pass did not get that far.
     */
    double spread(String op, float[] reduced) {
        float[] full = float32Refs.get(op);
        return full == null ? Double.NaN : RelativeError.spread(reduced, full);
    }

    void add(Row row) {
        rows.add(row);
        if (log != null) {
            log.println(row.format());
            log.flush();
        }
    }
}
