package org.tttbench.backend;

import org.tttbench.config.DType;
import org.tttbench.config.TttType;

/**
 * What picks the kernels of an inner scan (SPEC §3 step 4) on a backend that has several: the
 * inner model, its head dim F and mini-batch K, the storage type, how many (sequence, head)
 * pairs run side by side, and the checkpoint interval of the backward.
 *
 * @param pairs    batch × heads
 * @param interval the checkpoint interval c (1 keeps every state)
 */
public record ScanShape(TttType type, int headDim, int miniBatch, DType dtype, long pairs, int interval) {

    public ScanShape {
        if (headDim <= 0 || miniBatch <= 0 || pairs <= 0 || interval <= 0) {
            throw new IllegalArgumentException("scan shape sizes must be positive: " + this);
        }
    }

    /** The shape of the scans of {@code in} at checkpoint interval {@code interval}. */
    public static ScanShape of(InnerInputs in, DType dtype, int interval) {
        return new ScanShape(in.type(), in.headDim(), in.miniBatch(), dtype, (long) in.batch() * in.heads(), interval);
    }

    @Override
    public String toString() {
        return type.flag() + " F=" + headDim + " K=" + miniBatch + " " + dtype.flag() + ", " + pairs + " pairs, c=" + interval;
    }
}
