package org.tttbench.gpu;

import java.util.Arrays;

/**
 * Token ids grouped by id, for a deterministic embedding backward: {@code order} lists the token
 * positions sorted by id (ascending position within an id), and segment u holds the positions
 * {@code order[start[u]] … order[start[u+1] − 1]}, all with id {@code ids[u]}; ids ascend. The ids
 * are known in setup, so the grouping is done once on the host; the kernel then sums each id's
 * rows in a fixed order without atomics.
 */
record TokenSegments(int[] order, int[] ids, int[] start) {

    static TokenSegments of(int[] tokens) {
        int vocab = 0;
        for (int id : tokens) {
            if (id < 0) throw new IllegalArgumentException("negative token id " + id);
            vocab = Math.max(vocab, id + 1);
        }
        // Counting sort, stable in the position.
        int[] count = new int[vocab + 1];
        for (int id : tokens) count[id + 1]++;
        for (int v = 0; v < vocab; v++) count[v + 1] += count[v];
        int[] order = new int[tokens.length];
        int[] next = Arrays.copyOf(count, vocab);
        for (int t = 0; t < tokens.length; t++) order[next[tokens[t]]++] = t;
        int segments = 0;
        for (int v = 0; v < vocab; v++) {
            if (count[v + 1] > count[v]) segments++;
        }
        int[] ids = new int[segments];
        int[] start = new int[segments + 1];
        int u = 0;
        for (int v = 0; v < vocab; v++) {
            if (count[v + 1] > count[v]) {
                ids[u] = v;
                start[u] = count[v];
                u++;
            }
        }
        start[segments] = tokens.length;
        return new TokenSegments(order, ids, start);
    }

    int segments() {
        return ids.length;
    }
}
