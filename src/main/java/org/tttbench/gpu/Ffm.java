package org.tttbench.gpu;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** The few helpers the hand-kept bindings share: binding a symbol once, reading C strings. */
public final class Ffm {

    private Ffm() {
    }

    /** An ordered, unmodifiable map from pairs (symbol, descriptor, symbol, descriptor, …). */
    public static Map<String, FunctionDescriptor> functions(Object... pairs) {
        Map<String, FunctionDescriptor> m = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            m.put((String) pairs[i], (FunctionDescriptor) pairs[i + 1]);
        }
        return Collections.unmodifiableMap(m);
    }

    /** Binds {@code name} with its descriptor from {@code functions}; a missing symbol names the library file. */
    public static MethodHandle bind(NativeLibraries.Loaded lib, Map<String, FunctionDescriptor> functions, String name) {
        MethodHandle h = bindOptional(lib, functions, name);
        if (h == null) {
            throw new GpuException(name + " not found in " + lib.source()
                    + " (the installed library is older than this build needs)");
        }
        return h;
    }

    /** Like {@link #bind}, but null when the library does not export the symbol (an optional or newer call). */
    public static MethodHandle bindOptional(NativeLibraries.Loaded lib, Map<String, FunctionDescriptor> functions,
            String name) {
        FunctionDescriptor d = functions.get(name);
        if (d == null) throw new IllegalArgumentException("no descriptor for " + name);
        Optional<MemorySegment> symbol = lib.symbols().find(name);
        return symbol.map(s -> Linker.nativeLinker().downcallHandle(s, d)).orElse(null);
    }

    /**
     * Binds {@code name}, or where the library predates it, {@code older}: an earlier symbol with
     * the same C signature (cuEventElapsedTime before CUDA 12.8's cuEventElapsedTime_v2).
     */
    public static MethodHandle bindOrOlder(NativeLibraries.Loaded lib, Map<String, FunctionDescriptor> functions,
            String name, String older) {
        MethodHandle h = bindOptional(lib, functions, name);
        if (h != null) return h;
        Optional<MemorySegment> symbol = lib.symbols().find(older);
        if (symbol.isEmpty()) {
            throw new GpuException(name + " (or " + older + ") not found in " + lib.source());
        }
        return Linker.nativeLinker().downcallHandle(symbol.get(), functions.get(name));
    }

    /** The NUL-terminated string at {@code p}, or null for a NULL pointer. */
    public static String cString(MemorySegment p) {
        if (p.equals(MemorySegment.NULL)) return null;
        return p.reinterpret(Long.MAX_VALUE).getString(0);
    }

    /** Rethrows what a downcall's invokeExact declared; only errors and runtime exceptions reach here. */
    public static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }
}
