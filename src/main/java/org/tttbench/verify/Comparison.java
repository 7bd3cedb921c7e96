package org.tttbench.verify;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.tttbench.backend.Backend;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.verify.Verifier.Kind;
import org.tttbench.verify.Verifier.Row;

/**
 * What every check against the CPU reference shares: the same inputs put on both backends,
 * outputs poisoned with NaN on the backend under test, and one {@link Row} per comparison.
 */
abstract class Comparison {

    protected final Backend test;
    protected final Backend ref;
    protected final DType dtype;
    protected final boolean tf32;
    protected final SplittableRandom rnd;
    private final PrintStream log;
    private final List<Row> rows = new ArrayList<>();

    /**
     * @param test the backend under test
     * @param ref  the reference, a CPU backend with the same storage type
     * @param log  where each row is printed as it is made, or null
     */
    Comparison(Backend test, Backend ref, boolean tf32, long seed, PrintStream log) {
        if (test.dtype() != ref.dtype()) throw new IllegalArgumentException("backends store different types");
        this.test = test;
        this.ref = ref;
        this.dtype = test.dtype();
        this.tf32 = tf32;
        this.rnd = new SplittableRandom(seed);
        this.log = log;
    }

    List<Row> rows() {
        return rows;
    }

    /** The same tensor on both backends. */
    protected record Pair(Tensor t, Tensor r) {
    }

    protected float[] normal(long n, double mean, double std) {
        float[] x = new float[Math.toIntExact(n)];
        for (int i = 0; i < x.length; i++) x[i] = (float) (mean + std * rnd.nextGaussian());
        return x;
    }

    protected Pair input(float[] host, DType storage, int... shape) {
        Pair p = new Pair(test.allocate(storage, shape), ref.allocate(storage, shape));
        test.upload(host, p.t());
        ref.upload(host, p.r());
        return p;
    }

    protected Pair input(float[] host, int... shape) {
        return input(host, dtype, shape);
    }

    protected Pair random(double mean, double std, int... shape) {
        return input(normal(count(shape), mean, std), shape);
    }

    /** An output: NaN on the backend under test, so that whatever the op leaves unwritten fails. */
    protected Pair output(DType storage, int... shape) {
        Pair p = new Pair(test.allocate(storage, shape), ref.allocate(storage, shape));
        test.fill(p.t(), Float.NaN);
        return p;
    }

    protected Pair output(int... shape) {
        return output(dtype, shape);
    }

    protected static long count(int... shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    protected void add(Row row) {
        rows.add(row);
        if (log != null) {
            log.println(row.format());
            log.flush();
        }
    }

    protected void compare(String op, Kind kind, Tensor t, Tensor r) {
        test.synchronize();
        add(new Row(op, dtype, Verifier.relativeError(test.download(t), ref.download(r)),
                Verifier.tolerance(kind, dtype, tf32)));
    }

    protected void compare(String op, Kind kind, Pair p) {
        compare(op, kind, p.t(), p.r());
    }
}
