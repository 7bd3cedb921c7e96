package org.tttbench.sweep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

class SlurmScriptTest {

    @Test
    @Timeout(30)
    void scriptIsValidBashAndRunsItsShardWithPathsIntact(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("it's a dir"));
        Path plan = dir.resolve("plan.json");
        Files.writeString(plan, PlanTest.ISSUE_PLAN);
        Path results = dir.resolve("results $HOME");
        Path script = dir.resolve("sweep.sbatch");
        Fakes.Result r = Fakes.sweep("slurm", plan.toString(), "--results", results.toString(), "--shards", "3",
                "--partition", "gpu", "--time", "02:00:00", "--sbatch", "--account=lab", "--timeout", "120",
                "--out", script.toString());
        assertEquals(0, r.status(), r.err());
        String text = Files.readString(script);
        assertTrue(text.startsWith("#!/bin/bash\n"));
        for (String line : List.of("#SBATCH --array=1-3", "#SBATCH --partition=gpu", "#SBATCH --time=02:00:00",
                "#SBATCH --account=lab", "#SBATCH --gpus=1")) {
            assertTrue(text.lines().anyMatch(line::equals), line + " missing in\n" + text);
        }
        assertTrue(Files.isDirectory(results), "Slurm needs the --output directory to exist");

        Process check = new ProcessBuilder("bash", "-n", script.toString()).redirectErrorStream(true).start();
        String checkOut = new String(check.getInputStream().readAllBytes());
        assertTrue(check.waitFor(10, TimeUnit.SECONDS));
        assertEquals(0, check.exitValue(), checkOut);

        // Run it as array task 2 with a stand-in java that records its arguments.
        Path jdk = Files.createDirectories(tmp.resolve("jdk/bin"));
        Path argsFile = tmp.resolve("args.txt");
        Fakes.script(jdk, "java", "#!/bin/bash\nprintf '%s\\n' \"$@\" > '" + argsFile + "'\n");
        Files.move(jdk.resolve("java.sh"), jdk.resolve("java"));
        ProcessBuilder pb = new ProcessBuilder("bash", script.toString()).redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", tmp.resolve("jdk").toString());
        pb.environment().put("SLURM_ARRAY_TASK_ID", "2");
        Process run = pb.start();
        String runOut = new String(run.getInputStream().readAllBytes());
        assertTrue(run.waitFor(10, TimeUnit.SECONDS));
        assertEquals(0, run.exitValue(), runOut);
        assertEquals(List.of("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-cp",
                        Implementations.absoluteClassPath(),
                        "org.tttbench.cli.Main", "sweep", plan.toString(), "--results", results.toString(), "--shard", "2/3",
                        "--timeout", "120"),
                Files.readAllLines(argsFile));
    }

    @Test
    void badSlurmOptionsAreUsageErrors(@TempDir Path tmp) throws Exception {
        Path plan = tmp.resolve("plan.json");
        Files.writeString(plan, PlanTest.ISSUE_PLAN);
        assertEquals(2, Fakes.sweep("slurm", plan.toString()).status());
        assertEquals(2, Fakes.sweep("slurm", plan.toString(), "--results", "r", "--shards", "0").status());
        assertEquals(2, Fakes.sweep("slurm", plan.toString(), "--results", "r", "--time", "1\nrm -rf /").status());
    }
}
