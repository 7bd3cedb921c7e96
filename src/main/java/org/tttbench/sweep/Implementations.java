package org.tttbench.sweep;

import java.io.File;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Turns a planned configuration into the command line and environment of its benchmark
 * process. The built-in implementation is this suite, started as a fresh JVM from the same
 * class path; any other is a shell command from the plan that gets the standard flags
 * appended. A plan may also give "tttbench" a command, to run the suite in another way
 * (another JVM, a jar, extra flags such as --backend cpu).
 */
public final class Implementations {

    /** The class the built-in implementation is started with (the CLI with the standard flags). */
    public static final String MAIN_CLASS = "org.tttbench.cli.Main";

    /**
     * One benchmark process to start.
     *
     * @param env variables added to the sweep's own environment (implementation's, then pass's)
     */
    public record Invocation(List<String> command, Map<String, String> env) {}

    private final Map<String, Implementation> implementations;

    public Implementations(Map<String, Implementation> implementations) {
        this.implementations = implementations;
    }

    public Invocation invocation(Plan.Planned run) {
        Config c = run.config();
        Implementation impl = implementations.get(c.implementation());
        if (impl == null) throw new IllegalStateException("no implementation " + c.implementation() + " in the plan");
        List<String> flags = new ArrayList<>(c.standardFlags(run.pass().warmup(), run.pass().repeats()));
        flags.addAll(run.pass().flags());
        flags.add("--json");
        flags.add("--comment");
        flags.add("sweep:" + c.stem()); // so nvtop and ps show which run a process is
        Map<String, String> env = new LinkedHashMap<>(impl.env());
        env.putAll(run.pass().env());
        List<String> command;
        if (impl.isBuiltin()) {
            command = new ArrayList<>(builtinCommand());
            command.addAll(flags);
        } else {
            command = shellCommand(impl.command(), flags);
        }
        return new Invocation(List.copyOf(command), Map.copyOf(env));
    }

    /**
     * {@code sh -c 'COMMAND "$@"' sh FLAGS…}: the command may use the shell (cd, env vars,
     * &&), and the flags reach it as separate arguments, never re-split or re-expanded.
     */
    static List<String> shellCommand(String template, List<String> flags) {
        List<String> command = new ArrayList<>(List.of("/bin/sh", "-c", template + " \"$@\"", "sh"));
        command.addAll(flags);
        return command;
    }

    /** This JVM, again, on this process's class path made absolute (the sweep may run elsewhere). */
    public static List<String> builtinCommand() {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        return List.of(java, "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-cp", absoluteClassPath(), MAIN_CLASS);
    }

    static String absoluteClassPath() {
        return Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(s -> !s.isEmpty())
                .map(s -> Path.of(s).toAbsolutePath().normalize().toString())
                .collect(Collectors.joining(File.pathSeparator));
    }
}
