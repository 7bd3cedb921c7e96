package org.tttbench.sweep;

import java.io.File;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Turns a planned configuration into the command line of its benchmark process. The
 * built-in implementation is this suite, started as a fresh JVM from the same class path;
 * any other is a shell command template from the plan that gets the standard flags appended.
 * A plan may also give "tttbench" a template, to run the suite in another way (another
 * JVM, a jar, extra flags such as --backend cpu).
 */
public final class Implementations {

    /** The class the built-in implementation is started with (the CLI with the standard flags). */
    public static final String MAIN_CLASS = "org.tttbench.cli.Main";

    private final Map<String, String> templates;

    public Implementations(Map<String, String> templates) {
        this.templates = templates;
    }

    public List<String> command(Plan.Planned run) {
        Config c = run.config();
        List<String> flags = new ArrayList<>(c.standardFlags(run.warmup(), run.repeats()));
        flags.add("--json");
        flags.add("--comment");
        flags.add("sweep:" + c.stem()); // so nvtop and ps show which run a process is
        String template = templates.get(c.implementation());
        if (template != null) return shellCommand(template, flags);
        if (!c.implementation().equals(Plan.BUILTIN)) {
            throw new IllegalStateException("no command for implementation " + c.implementation());
        }
        List<String> command = new ArrayList<>(builtinCommand());
        command.addAll(flags);
        return command;
    }

    /**
     * {@code sh -c 'TEMPLATE "$@"' sh FLAGS…}: the template may use the shell (cd, env vars,
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
        return List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp", absoluteClassPath(), MAIN_CLASS);
    }

    static String absoluteClassPath() {
        return Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(s -> !s.isEmpty())
                .map(s -> Path.of(s).toAbsolutePath().normalize().toString())
                .collect(Collectors.joining(File.pathSeparator));
    }
}
