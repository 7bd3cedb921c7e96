package org.tttbench.sweep;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Starting a benchmark as the leader of a session of its own, and ending it with everything it
 * started. A child that forks twice (a launcher script, a {@code ( server & )} helper) is
 * reparented away from the benchmark, so {@link ProcessHandle#descendants()} no longer lists it,
 * but it stays in the benchmark's process group: killing the group ends it too. Only a process
 * that makes a session of its own (a daemon) leaves the group.
 */
final class ProcessGroups {

    private static final int SIGKILL = 9;

    /** util-linux's setsid: runs the command as a new session's leader, in place when it can (it can for our children). */
    private static final Optional<Path> SETSID = List.of(Path.of("/usr/bin/setsid"), Path.of("/bin/setsid")).stream()
            .filter(Files::isExecutable).findFirst();

    /** libc's kill(2), which signals a whole group when given its id negated; Java has no call for that. */
    private static final MethodHandle KILL = lookupKill();

    private ProcessGroups() {}

    /** Whether commands from {@link #inOwnGroup} lead a process group that {@link #killTree} can end. */
    static boolean available() {
        return SETSID.isPresent() && KILL != null;
    }

    /**
     * The command run as the leader of a new session and process group, so that the process's
     * pid is its group's id. Where that is not possible the command runs as it is, and a kill
     * reaches only the processes that are still its descendants.
     */
    static List<String> inOwnGroup(List<String> command) {
        if (!available()) return command;
        List<String> wrapped = new ArrayList<>();
        wrapped.add(SETSID.get().toString());
        wrapped.addAll(command);
        return wrapped;
    }

    /**
     * Kills the process, its group when it leads one ({@code ownGroup}), and its descendants.
     * The descendants are listed before anything dies, because once their parent is gone
     * they are reparented and can no longer be found.
     */
    static void killTree(ProcessHandle root, boolean ownGroup) {
        List<ProcessHandle> descendants = root.descendants().toList();
        if (ownGroup && KILL != null) {
            try {
                int unused = (int) KILL.invokeExact((int) -root.pid(), SIGKILL);
            } catch (Throwable e) {
                // the group is gone already; the calls below cover what is left
            }
        }
        root.destroyForcibly();
        for (ProcessHandle d : descendants) {
            List<ProcessHandle> late = d.descendants().toList(); // started while we were listing
            d.destroyForcibly();
            late.forEach(ProcessHandle::destroyForcibly);
        }
    }

    private static MethodHandle lookupKill() {
        try {
            Linker linker = Linker.nativeLinker();
            return linker.defaultLookup().find("kill")
                    .map(address -> linker.downcallHandle(address,
                            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT)))
                    .orElse(null);
        } catch (RuntimeException | LinkageError e) {
            return null; // no native access here: descendants are killed one by one
        }
    }
}
