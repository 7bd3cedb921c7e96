package org.tttbench.gpu;

import java.util.Arrays;

/**
 * The launch variables of one launch (hip/README.md): the counts a launcher knows (N, ROWS,
 * PAIRS, F, K, …) by name, for the expressions of the kernel's descriptor. Small and
 * immutable: {@code LaunchVars.of("F", 64).and("K", 16)}.
 */
final class LaunchVars {

    private static final LaunchVars EMPTY = new LaunchVars(new String[0], new long[0]);

    private final String[] names;
    private final long[] values;

    private LaunchVars(String[] names, long[] values) {
        this.names = names;
        this.values = values;
    }

    static LaunchVars none() {
        return EMPTY;
    }

    static LaunchVars of(String name, long value) {
        return EMPTY.and(name, value);
    }

    /** These variables and {@code name} = {@code value} (replacing an earlier value of that name). */
    LaunchVars and(String name, long value) {
        for (int i = 0; i < names.length; i++) {
            if (names[i].equals(name)) {
                long[] v = values.clone();
                v[i] = value;
                return new LaunchVars(names, v);
            }
        }
        String[] n = Arrays.copyOf(names, names.length + 1);
        long[] v = Arrays.copyOf(values, values.length + 1);
        n[names.length] = name;
        v[values.length] = value;
        return new LaunchVars(n, v);
    }

    long get(String name) {
        for (int i = 0; i < names.length; i++) {
            if (names[i].equals(name)) return values[i];
        }
        throw new IllegalArgumentException("launch variable " + name + " is not bound (bound: " + this + ")");
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < names.length; i++) {
            if (i > 0) b.append(", ");
            b.append(names[i]).append('=').append(values[i]);
        }
        return b.toString();
    }
}
