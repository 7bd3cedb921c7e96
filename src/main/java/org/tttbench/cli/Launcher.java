package org.tttbench.cli;

/**
 * The entry point of benchmarks.jar, compiled for Java 8 so that any older JVM runs it: on a
 * JVM older than 25 it says so in one line (instead of an UnsupportedClassVersionError) and
 * exits 2; otherwise it hands the arguments to {@link Main}. Uses nothing newer than Java 8.
 */
public final class Launcher {

    static final int REQUIRED = 25;

    private Launcher() {
    }

    public static void main(String[] args) throws Throwable {
        int version = feature(System.getProperty("java.specification.version", "0"));
        if (version < REQUIRED) {
            System.err.println("tttbench: needs Java " + REQUIRED + " or newer; this is Java "
                    + System.getProperty("java.version") + " at " + System.getProperty("java.home")
                    + " (run it with a JDK 25: JAVA_HOME/bin/java -jar benchmarks.jar, or the bundle's tttbench)");
            System.exit(2);
        }
        try {
            Class.forName("org.tttbench.cli.Main").getMethod("main", String[].class).invoke(null, (Object) args);
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** "1.8" → 8, "17" → 17, "25" → 25. */
    static int feature(String specification) {
        String s = specification.startsWith("1.") ? specification.substring(2) : specification;
        int end = 0;
        while (end < s.length() && Character.isDigit(s.charAt(end))) end++;
        return end == 0 ? 0 : Integer.parseInt(s.substring(0, end));
    }
}
