package org.tttbench.verify;

import org.tttbench.backend.Backend;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.validate.RelativeError;
import org.tttbench.validate.Tolerances;
import org.tttbench.validate.Tolerances.Kind;
import org.tttbench.verify.Fixtures.Pair;

/**
 * What the forward and the backward checks share: the pass they run in, its fixtures, and how a
 * comparison becomes a {@link Row}.
 */
abstract class Comparison {

    protected final Pass pass;
    protected final Backend test;
    protected final Backend ref;
    /** Storage of the compared tensors: float32 in a twin pass. */
    protected final DType dtype;
    /** Storage of the run: what decides float16's precautions, the same in both passes of a 16-bit check. */
    protected final DType storage;
    protected final Fixtures fx;

    Comparison(Pass pass, long seed) {
        this.pass = pass;
        this.test = pass.test();
        this.ref = pass.ref();
        this.dtype = test.dtype();
        this.storage = pass.inputs();
        this.fx = new Fixtures(test, ref, storage, seed);
    }

    protected void add(Row row) {
        pass.add(row);
    }

    /**
     * The tolerance of comparison {@code op} whose reference result is {@code refOut}: float32's for
     * {@code kind} in a float32 or twin pass (the twin pass keeps {@code refOut}); in a 16-bit pass
     * the one {@link Tolerances#reduced} derives from the spread of {@code refOut} against the twin
     * pass's float32 reference. {@code refOut} may be null in a float32 pass.
     */
    protected double tolerance(String op, Kind kind, float[] refOut) {
        return switch (pass.role()) {
            case FLOAT32 -> Tolerances.float32(kind, pass.tf32());
            case TWIN -> {
                pass.record(op, refOut);
                yield Tolerances.float32(kind, false);
            }
            case REDUCED -> Tolerances.reduced(kind, pass.spread(op, refOut));
        };
    }

    /** Whether tolerances need the reference's results: comparisons of the tested backend with itself skip them in float32. */
    protected boolean derivesTolerances() {
        return pass.role() != Pass.Role.FLOAT32;
    }

    /** A comparison of a result on the tested backend with the reference's, not yet added. */
    protected Row judge(String op, Kind kind, float[] x, float[] refOut) {
        return new Row(op, dtype, RelativeError.of(x, refOut), tolerance(op, kind, refOut));
    }

    protected void compare(String op, Kind kind, Tensor t, Tensor r) {
        test.synchronize();
        add(judge(op, kind, test.download(t), ref.download(r)));
    }

    protected void compare(String op, Kind kind, Pair p) {
        compare(op, kind, p.t(), p.r());
    }
}
