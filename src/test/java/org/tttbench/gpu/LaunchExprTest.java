package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class LaunchExprTest {

    private static long eval(String e, LaunchVars v) {
        return LaunchExpr.parse(e).eval(v);
    }

    @Test
    void arithmeticFollowsC() {
        LaunchVars v = LaunchVars.of("F", 64).and("K", 16);
        assertEquals(4 * (64 * 68 + 64 + 10 * 16 * 68), eval("4*((F)*((F)+4)+(F)+10*(K)*((F)+4))", v));
        assertEquals(7 / 2 * 2 + 7 % 3, eval("7/2*2+7%3", v));
        assertEquals(3, eval("cdiv(17,8)", v));
        assertEquals(16, eval("min(F,K)", v));
        assertEquals(64, eval("max(F,K)", v));
        assertEquals(-6, eval("2-8", v));
        assertEquals(14, eval("2+3*4", v));
    }

    @Test
    void comparisonsAndLogicGiveOneOrZero() {
        LaunchVars v = LaunchVars.of("F", 64).and("K", 16);
        assertEquals(1, eval("(K)==16&&((F)==32||(F)==64)", v));
        assertEquals(0, eval("(K)==16&&((F)==32||(F)==96)", v));
        assertEquals(1, eval("F>=64&&K<32&&F!=K", v));
        assertEquals(0, eval("F<=32||K>16", v));
        assertEquals(2, eval("(F>K)+(K<F)", v));
    }

    @Test
    void anUnboundVariableOrBadTextIsAnError() {
        assertThrows(IllegalArgumentException.class, () -> eval("F+Q", LaunchVars.of("F", 1)));
        assertThrows(IllegalArgumentException.class, () -> LaunchExpr.parse("F+"));
        assertThrows(IllegalArgumentException.class, () -> LaunchExpr.parse("pow(F,2)"));
        assertThrows(IllegalArgumentException.class, () -> LaunchExpr.parse("(F"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LaunchExpr.parse("F)"));
        assertTrue(e.getMessage().contains("F)"), e.getMessage());
    }
}
