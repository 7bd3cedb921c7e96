package org.tttbench.gpu;

import java.util.function.Supplier;

/**
 * A native library that is opened at most once per process: the first {@link #load()} searches
 * for it, later calls return the same library or rethrow the same failure. Searching again
 * would only repeat the same file-system probes and print the same notice twice.
 */
public final class LoadOnce {

    private final String binding;
    private final Supplier<NativeLibraries.Loaded> open;
    private NativeLibraries.Loaded library;
    private GpuException failure;

    /**
     * @param binding the binding class's name, for the error when a call comes before a load
     * @param open    searches for and opens the library, throwing {@link GpuException} when it is missing
     */
    public LoadOnce(String binding, Supplier<NativeLibraries.Loaded> open) {
        this.binding = binding;
        this.open = open;
    }

    /** The library, opened on the first call; a failure is remembered and thrown again. */
    public synchronized NativeLibraries.Loaded load() {
        if (library != null) return library;
        if (failure != null) throw failure;
        try {
            library = open.get();
            return library;
        } catch (GpuException e) {
            failure = e;
            throw e;
        }
    }

    /** The library {@link #load()} opened; a call before that is a bug in the caller. */
    public synchronized NativeLibraries.Loaded loaded() {
        if (library == null) throw new IllegalStateException(binding + ".load() has not succeeded");
        return library;
    }
}
