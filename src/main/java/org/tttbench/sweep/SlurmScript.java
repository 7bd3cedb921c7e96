package org.tttbench.sweep;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A Slurm job-array script for a plan: array task i runs shard i/n of the plan into one shared
 * results directory. Shards never share a configuration and every write is a rename, so the
 * tasks need no coordination; re-submitting the script resumes where they stopped.
 *
 * @param sbatch extra "#SBATCH" options, each as written after "#SBATCH "
 * @param sweepArgs options passed on to every shard's sweep (timeout, device memory)
 */
public record SlurmScript(Path plan, Path results, int shards, String partition, String time, int gpusPerTask,
                          List<String> sbatch, List<String> sweepArgs) {

    public String render() {
        String plan = plan().toAbsolutePath().normalize().toString();
        String results = results().toAbsolutePath().normalize().toString();
        List<String> lines = new ArrayList<>();
        lines.add("#!/bin/bash");
        lines.add("# tttbench sweep of " + plan + " as a Slurm job array:");
        lines.add("# task i runs shard i/" + shards + " of the plan into " + results + ".");
        lines.add("# Submit with sbatch; submitting again resumes (done and failed runs are skipped).");
        lines.add("#SBATCH --job-name=tttbench-sweep");
        lines.add("#SBATCH --array=1-" + shards);
        lines.add("#SBATCH --ntasks=1");
        if (gpusPerTask > 0) lines.add("#SBATCH --gpus=" + gpusPerTask);
        if (partition != null) lines.add("#SBATCH --partition=" + partition);
        if (time != null) lines.add("#SBATCH --time=" + time);
        lines.add("#SBATCH --output=" + results + "/slurm-%A_%a.out");
        for (String s : sbatch) lines.add("#SBATCH " + s);
        lines.add("set -euo pipefail");
        lines.add("JAVA=\"${JAVA_HOME:+$JAVA_HOME/bin/}java\"");
        List<String> command = new ArrayList<>(List.of("exec", "\"$JAVA\"", "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                "-cp", quote(Implementations.absoluteClassPath()), Implementations.MAIN_CLASS, "sweep", quote(plan),
                "--results", quote(results), "--shard", "\"${SLURM_ARRAY_TASK_ID}/" + shards + "\""));
        for (String a : sweepArgs) command.add(quote(a));
        lines.add(String.join(" ", command));
        return String.join("\n", lines) + "\n";
    }

    /** Single quotes keep every character literal in bash; a quote itself is closed, escaped, reopened. */
    static String quote(String s) {
        return "'" + s.replace("'", "'\\''") + "'";
    }
}
