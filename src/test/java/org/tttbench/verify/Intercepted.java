package org.tttbench.verify;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import org.tttbench.backend.Backend;
import org.tttbench.backend.Tensor;

/** A backend that runs one op its own way and passes every other call to another backend. */
final class Intercepted {

    /** The replaced op: the wrapped backend and the op's arguments; returns the op's result (null for void). */
    @FunctionalInterface
    interface Op {
        Object run(Backend inner, Object[] args);
    }

    private Intercepted() {
    }

    static Backend wrap(Backend inner, String method, Op op) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, m, args) -> {
                    if (m.getName().equals(method)) return op.run(inner, args);
                    try {
                        return m.invoke(inner, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    /** Multiplies every element of {@code t} by {@code factor} (rounded to its storage). */
    static void scale(Backend be, Tensor t, double factor) {
        float[] x = be.download(t);
        for (int i = 0; i < x.length; i++) x[i] = (float) (x[i] * factor);
        be.upload(x, t);
    }
}
