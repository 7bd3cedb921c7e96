package org.tttbench.gpu;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToLongFunction;

/**
 * An integer expression of a kernel's launch descriptor (hip/README.md): literals, the launch
 * variables a launcher binds (upper-case names: F, K, PAIRS, …), + − * / % with C's precedence
 * and truncating division, the comparisons == != &lt; &lt;= &gt; &gt;= and &amp;&amp; || (1 or 0, as in C),
 * parentheses, and min(a, b), max(a, b), cdiv(a, b) (division rounded up). The hip/ sources write each size once, as such an expression; the build copies it into
 * the index, and this evaluates it, so the host allocates and launches with the kernel's own
 * numbers.
 */
final class LaunchExpr {

    private final String text;
    private final ToLongFunction<LaunchVars> eval;

    private LaunchExpr(String text, ToLongFunction<LaunchVars> eval) {
        this.text = text;
        this.eval = eval;
    }

    /** @throws IllegalArgumentException naming the expression and where it stops making sense */
    static LaunchExpr parse(String text) {
        Parser p = new Parser(text);
        ToLongFunction<LaunchVars> e = p.or();
        p.skipSpaces();
        if (p.at < text.length()) throw p.error("unexpected '" + text.charAt(p.at) + "'");
        return new LaunchExpr(text, e);
    }

    /** The value with these variables bound; a variable the expression uses and {@code vars} lacks is an error. */
    long eval(LaunchVars vars) {
        return eval.applyAsLong(vars);
    }

    @Override
    public String toString() {
        return text;
    }

    private static final class Parser {
        private final String s;
        private int at;

        Parser(String s) {
            this.s = s;
        }

        void skipSpaces() {
            while (at < s.length() && Character.isWhitespace(s.charAt(at))) at++;
        }

        boolean take(char c) {
            skipSpaces();
            if (at < s.length() && s.charAt(at) == c) {
                at++;
                return true;
            }
            return false;
        }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException("launch expression '" + s + "' at " + at + ": " + what);
        }

        boolean take(String op) {
            skipSpaces();
            if (s.startsWith(op, at)) {
                at += op.length();
                return true;
            }
            return false;
        }

        ToLongFunction<LaunchVars> or() {
            ToLongFunction<LaunchVars> left = and();
            while (take("||")) {
                ToLongFunction<LaunchVars> a = left;
                ToLongFunction<LaunchVars> b = and();
                left = v -> a.applyAsLong(v) != 0 || b.applyAsLong(v) != 0 ? 1 : 0;
            }
            return left;
        }

        ToLongFunction<LaunchVars> and() {
            ToLongFunction<LaunchVars> left = equality();
            while (take("&&")) {
                ToLongFunction<LaunchVars> a = left;
                ToLongFunction<LaunchVars> b = equality();
                left = v -> a.applyAsLong(v) != 0 && b.applyAsLong(v) != 0 ? 1 : 0;
            }
            return left;
        }

        ToLongFunction<LaunchVars> equality() {
            ToLongFunction<LaunchVars> left = relation();
            while (true) {
                ToLongFunction<LaunchVars> a = left;
                if (take("==")) {
                    ToLongFunction<LaunchVars> b = relation();
                    left = v -> a.applyAsLong(v) == b.applyAsLong(v) ? 1 : 0;
                } else if (take("!=")) {
                    ToLongFunction<LaunchVars> b = relation();
                    left = v -> a.applyAsLong(v) != b.applyAsLong(v) ? 1 : 0;
                } else {
                    return left;
                }
            }
        }

        ToLongFunction<LaunchVars> relation() {
            ToLongFunction<LaunchVars> left = sum();
            while (true) {
                ToLongFunction<LaunchVars> a = left;
                if (take("<=")) {
                    ToLongFunction<LaunchVars> b = sum();
                    left = v -> a.applyAsLong(v) <= b.applyAsLong(v) ? 1 : 0;
                } else if (take(">=")) {
                    ToLongFunction<LaunchVars> b = sum();
                    left = v -> a.applyAsLong(v) >= b.applyAsLong(v) ? 1 : 0;
                } else if (take("<")) {
                    ToLongFunction<LaunchVars> b = sum();
                    left = v -> a.applyAsLong(v) < b.applyAsLong(v) ? 1 : 0;
                } else if (take(">")) {
                    ToLongFunction<LaunchVars> b = sum();
                    left = v -> a.applyAsLong(v) > b.applyAsLong(v) ? 1 : 0;
                } else {
                    return left;
                }
            }
        }

        ToLongFunction<LaunchVars> sum() {
            ToLongFunction<LaunchVars> left = product();
            while (true) {
                if (take('+')) {
                    ToLongFunction<LaunchVars> a = left;
                    ToLongFunction<LaunchVars> b = product();
                    left = v -> Math.addExact(a.applyAsLong(v), b.applyAsLong(v));
                } else if (take('-')) {
                    ToLongFunction<LaunchVars> a = left;
                    ToLongFunction<LaunchVars> b = product();
                    left = v -> Math.subtractExact(a.applyAsLong(v), b.applyAsLong(v));
                } else {
                    return left;
                }
            }
        }

        ToLongFunction<LaunchVars> product() {
            ToLongFunction<LaunchVars> left = unary();
            while (true) {
                ToLongFunction<LaunchVars> a = left;
                if (take('*')) {
                    ToLongFunction<LaunchVars> b = unary();
                    left = v -> Math.multiplyExact(a.applyAsLong(v), b.applyAsLong(v));
                } else if (take('/')) {
                    ToLongFunction<LaunchVars> b = unary();
                    left = v -> a.applyAsLong(v) / b.applyAsLong(v);
                } else if (take('%')) {
                    ToLongFunction<LaunchVars> b = unary();
                    left = v -> a.applyAsLong(v) % b.applyAsLong(v);
                } else {
                    return left;
                }
            }
        }

        ToLongFunction<LaunchVars> unary() {
            if (take('-')) {
                ToLongFunction<LaunchVars> a = unary();
                return v -> Math.negateExact(a.applyAsLong(v));
            }
            if (take('+')) return unary();
            return atom();
        }

        ToLongFunction<LaunchVars> atom() {
            skipSpaces();
            if (take('(')) {
                ToLongFunction<LaunchVars> e = or();
                if (!take(')')) throw error("')' expected");
                return e;
            }
            if (at >= s.length()) throw error("a value expected at the end");
            char c = s.charAt(at);
            if (Character.isDigit(c)) {
                int start = at;
                while (at < s.length() && Character.isDigit(s.charAt(at))) at++;
                // C suffixes of integer literals (16u, 4L) carry no meaning here.
                while (at < s.length() && "uUlL".indexOf(s.charAt(at)) >= 0) at++;
                long value = Long.parseLong(s.substring(start, at).replaceAll("[uUlL]", ""));
                return v -> value;
            }
            if (Character.isLetter(c) || c == '_') {
                int start = at;
                while (at < s.length() && (Character.isLetterOrDigit(s.charAt(at)) || s.charAt(at) == '_')) at++;
                String name = s.substring(start, at);
                if (take('(')) return call(name);
                return v -> v.get(name);
            }
            throw error("unexpected '" + c + "'");
        }

        ToLongFunction<LaunchVars> call(String name) {
            List<ToLongFunction<LaunchVars>> args = new ArrayList<>();
            if (!take(')')) {
                do {
                    args.add(or());
                } while (take(','));
                if (!take(')')) throw error("')' expected after the arguments of " + name);
            }
            if (args.size() != 2) throw error(name + " takes two arguments, got " + args.size());
            ToLongFunction<LaunchVars> a = args.get(0);
            ToLongFunction<LaunchVars> b = args.get(1);
            return switch (name) {
                case "min" -> v -> Math.min(a.applyAsLong(v), b.applyAsLong(v));
                case "max" -> v -> Math.max(a.applyAsLong(v), b.applyAsLong(v));
                case "cdiv" -> v -> {
                    long x = a.applyAsLong(v);
                    long y = b.applyAsLong(v);
                    return (x + y - 1) / y;
                };
                default -> throw error("unknown function " + name + " (min, max, cdiv)");
            };
        }
    }
}
