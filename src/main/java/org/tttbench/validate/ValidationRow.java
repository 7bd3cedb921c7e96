package org.tttbench.validate;

/**
 * One compared tensor: its name in the case file, ‖x − ref‖ / ‖ref‖ (‖x‖ when the reference is
 * all zeros), the tolerance it was held to, and whether it passed.
 */
public record ValidationRow(String name, double relativeError, double tolerance, boolean pass) {

    static ValidationRow of(String name, double relativeError, double tolerance) {
        // NaN fails: it compares false.
        return new ValidationRow(name, relativeError, tolerance, relativeError <= tolerance);
    }
}
