package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TokenSegmentsTest {

    @Test
    void groupsPositionsByIdInPositionOrder() {
        TokenSegments s = TokenSegments.of(new int[] {5, 2, 5, 0, 2, 5});
        assertArrayEquals(new int[] {0, 2, 5}, s.ids());
        assertArrayEquals(new int[] {0, 1, 3, 6}, s.start());
        assertArrayEquals(new int[] {3, 1, 4, 0, 2, 5}, s.order());
        assertEquals(3, s.segments());
    }

    @Test
    void everyPositionOnceUnderItsOwnId() {
        SplittableRandom r = new SplittableRandom(7);
        int[] tokens = new int[4096];
        for (int i = 0; i < tokens.length; i++) tokens[i] = r.nextInt(300);
        TokenSegments s = TokenSegments.of(tokens);
        boolean[] seen = new boolean[tokens.length];
        for (int u = 0; u < s.segments(); u++) {
            assertTrue(s.start()[u] < s.start()[u + 1], "segments are not empty");
            if (u > 0) assertTrue(s.ids()[u - 1] < s.ids()[u], "ids ascend");
            for (int i = s.start()[u]; i < s.start()[u + 1]; i++) {
                int t = s.order()[i];
                assertEquals(s.ids()[u], tokens[t]);
                if (i > s.start()[u]) assertTrue(s.order()[i - 1] < t, "positions ascend within an id");
                seen[t] = true;
            }
        }
        for (boolean b : seen) assertTrue(b);
        assertEquals(tokens.length, s.start()[s.segments()]);
    }

    @Test
    void rejectsNegativeIds() {
        assertThrows(IllegalArgumentException.class, () -> TokenSegments.of(new int[] {1, -1}));
    }
}
