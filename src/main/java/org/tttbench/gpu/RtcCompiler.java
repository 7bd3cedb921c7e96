package org.tttbench.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import java.util.function.ToIntFunction;

/**
 * What NVRTC and hipRTC do alike. hipRTC copies NVRTC's API, C signatures and meaning, with
 * another prefix (and "Code" for "CUBIN"), so one compile flow over {@link Calls} serves both
 * compilers, and the tests run it over stand-ins without either library.
 */
abstract sealed class RtcCompiler implements RuntimeCompiler permits NvrtcCompiler, HiprtcCompiler {

    /**
     * The bound calls the flow uses.
     *
     * @param library     the compiler's name in messages ("NVRTC", "hipRTC")
     * @param version     xxxVersion(int* major, int* minor)
     * @param errorString the enum name of a result
     */
    record Calls(String library, Query version, Create create, ToIntFunction<MemorySegment> destroy, Compile compile,
            Query logSize, Query log, Query codeSize, Query code, IntFunction<String> errorString) {
    }

    /** xxxCreateProgram(prog*, src, name, numHeaders, headers, includeNames). */
    interface Create {
        int call(MemorySegment prog, MemorySegment src, MemorySegment name, int numHeaders, MemorySegment headers,
                MemorySegment includeNames);
    }

    /** xxxCompileProgram(prog, numOptions, options). */
    interface Compile {
        int call(MemorySegment prog, int numOptions, MemorySegment options);
    }

    /** A call that fills what its second argument points to (a size_t, a buffer of that size, an int). */
    interface Query {
        int call(MemorySegment first, MemorySegment out);
    }

    private final String name;
    private final String architecture;
    private final String version;
    private final List<String> ownOptions;
    private final Calls calls;

    RtcCompiler(String name, String architecture, String version, List<String> ownOptions, Calls calls) {
        this.name = name;
        this.architecture = architecture;
        this.version = version;
        this.ownOptions = List.copyOf(ownOptions);
        this.calls = calls;
    }

    @Override
    public final String name() {
        return name;
    }

    @Override
    public final String version() {
        return version;
    }

    @Override
    public final String architecture() {
        return architecture;
    }

    @Override
    public final List<String> options(List<String> extra) {
        List<String> all = new ArrayList<>(ownOptions);
        all.addAll(extra);
        return List.copyOf(all);
    }

    @Override
    public final byte[] compile(String programName, String source, Map<String, String> headers, List<String> options) {
        List<String> all = options(options);
        try (Arena arena = Arena.ofConfined()) {
            List<String> names = new ArrayList<>(headers.keySet());
            List<String> texts = new ArrayList<>();
            for (String n : names) texts.add(headers.get(n));
            MemorySegment holder = arena.allocate(ADDRESS);
            check(calls.create().call(holder, arena.allocateFrom(source), arena.allocateFrom(programName), names.size(),
                    strings(arena, texts), strings(arena, names)), "CreateProgram", programName);
            MemorySegment prog = holder.get(ADDRESS, 0);
            try {
                int status = calls.compile().call(prog, all.size(), strings(arena, all));
                if (status != 0) {
                    throw new GpuException(calls.library() + " could not compile " + programName + " for " + architecture
                            + ": " + calls.errorString().apply(status), "options " + String.join(" ", all) + "; log:\n"
                            + programLog(arena, prog, programName));
                }
                long size = size(arena, calls.codeSize(), prog, "GetCodeSize", programName);
                if (size == 0) throw new GpuException(calls.library() + " made no code of " + programName + " for " + architecture);
                MemorySegment out = arena.allocate(size);
                check(calls.code().call(prog, out), "GetCode", programName);
                return out.toArray(JAVA_BYTE);
            } finally {
                calls.destroy().applyAsInt(holder); // its failure would hide the one above; a leak is all it could mean
            }
        }
    }

    /**
     * The whole log, warnings included. NVRTC's size counts a trailing NUL, ROCm 5's hipRTC's
     * does not (nor does it write one), so the buffer has a zeroed byte beyond the size.
     */
    private String programLog(Arena arena, MemorySegment prog, String programName) {
        try {
            long size = size(arena, calls.logSize(), prog, "GetProgramLogSize", programName);
            if (size == 0) return "";
            MemorySegment buf = arena.allocate(size + 1); // zeroed
            check(calls.log().call(prog, buf), "GetProgramLog", programName);
            return buf.getString(0).strip();
        } catch (GpuException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private long size(Arena arena, Query query, MemorySegment prog, String call, String programName) {
        MemorySegment size = arena.allocate(JAVA_LONG);
        check(query.call(prog, size), call, programName);
        return size.get(JAVA_LONG, 0);
    }

    private void check(int status, String call, String programName) {
        if (status != 0) {
            throw new GpuException(calls.library() + " " + call + " failed for " + programName + ": "
                    + calls.errorString().apply(status));
        }
    }

    /** A {@code const char*[]} of {@code values}; NULL for none, which both APIs take with a count of 0. */
    private static MemorySegment strings(Arena arena, List<String> values) {
        if (values.isEmpty()) return MemorySegment.NULL;
        MemorySegment array = arena.allocate(ADDRESS, values.size());
        for (int i = 0; i < values.size(); i++) array.setAtIndex(ADDRESS, i, arena.allocateFrom(values.get(i)));
        return array;
    }

    /**
     * "13.0 (libnvrtc.so.13.0.88)": the library's own version, and its file, which tells
     * releases apart where the version call does not (hipRTC says 9.0 on ROCm 5.2).
     */
    static String version(Calls calls, NativeLibraries.Loaded library) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment major = a.allocate(JAVA_INT);
            MemorySegment minor = a.allocate(JAVA_INT);
            int status = calls.version().call(major, minor);
            if (status != 0) throw new GpuException(calls.library() + " version failed: " + calls.errorString().apply(status));
            return major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0) + " (" + library.realFileName() + ")";
        }
    }
}
