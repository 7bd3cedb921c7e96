package org.tttbench.cli;

import java.io.PrintStream;
import java.util.Arrays;

/**
 * Entry point of benchmarks.jar: the family's standard flags, this suite's subcommands, or
 * (anything else) JMH's own command line, unchanged.
 */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        int status = run(args, System.out, System.err);
        if (status >= 0) System.exit(status);
    }

    /**
     * @return the exit status, or -1 when JMH's own main took over (it exits by itself)
     */
    static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
        String[] rest = args.length > 0 ? Arrays.copyOfRange(args, 1, args.length) : args;
        try {
            if (args.length > 0) {
                switch (args[0]) {
                    case "validate":
                        return ValidateCommand.run(rest, out, err);
                    case "verify":
                        return VerifyCommand.run(rest, out, err);
                    case "sweep":
                        return org.tttbench.sweep.SweepCommand.run(rest, out, err);
                    case "compare":
                        return org.tttbench.sweep.CompareCommand.run(rest, out, err);
                    case "report":
                        return org.tttbench.report.ReportCommand.run(rest, out, err);
                    case "--help":
                    case "help":
                        out.print(StandardFlags.usage());
                        return 0;
                    default:
                        break;
                }
            }
            if (StandardFlags.looksLikeStandardFlags(args)) {
                return Adapter.run(StandardFlags.parseOptions(args), out, err);
            }
        } catch (UsageException e) {
            err.println("tttbench: " + e.getMessage());
            return 2;
        }
        org.openjdk.jmh.Main.main(args);
        return -1;
    }
}
