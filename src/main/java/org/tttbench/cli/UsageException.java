package org.tttbench.cli;

/** Bad command-line input: reported as one line on stderr with exit status 2. */
public final class UsageException extends Exception {
    public UsageException(String message) {
        super(message);
    }
}
