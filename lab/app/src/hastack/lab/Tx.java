package hastack.lab;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** One numbered transaction of one client run: the key the ledger records exactly once. */
final class Tx {
    private static final Pattern PATH = Pattern.compile("/([A-Za-z0-9_-]{1,64})/([1-9][0-9]{0,17})");

    final String run;
    final long n;

    Tx(String run, long n) {
        this.run = run;
        this.n = n;
    }

    /** From a request's path info, {@code /RUN/N}; null if it is not one. */
    static Tx parse(String pathInfo) {
        if (pathInfo == null) {
            return null;
        }
        Matcher m = PATH.matcher(pathInfo);
        return m.matches() ? new Tx(m.group(1), Long.parseLong(m.group(2))) : null;
    }

    /** The advisory-lock and waiter key. */
    String key() {
        return run + "/" + n;
    }

    @Override
    public String toString() {
        return "tx " + key();
    }
}
