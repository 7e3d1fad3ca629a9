package hastack.lab;

import jakarta.servlet.ServletContext;
import java.net.InetAddress;
import java.util.Properties;
import java.util.regex.Pattern;

/**
 * The application's settings, from context parameters. The lab writes them into the webapp's
 * Context file ({@code conf/Catalina/localhost/lab.xml}); web.xml carries loopback defaults.
 */
final class Config {
    private static final Pattern IDENT = Pattern.compile("[a-z_][a-z0-9_]{0,62}");

    final String brokerUrl;
    final String queue;
    final String jdbcUrl;
    final Properties jdbcProps = new Properties();
    final String table;
    final int consumers;
    final int dbPool;
    final long commitWaitMs;
    final int ioTimeoutMs;
    final String node;

    private Config(ServletContext ctx) {
        ioTimeoutMs = positive(ctx, "lab.io_timeout_ms", 3000);
        // Every blocking step has a bound: a broker that vanished with its node (no RST) is found
        // by the inactivity monitor within ioTimeoutMs, not the default 30 s.
        brokerUrl = "tcp://" + hostPort(param(ctx, "lab.broker.host", "127.0.0.1"), positive(ctx, "lab.broker.port", 61616))
                + "?connectionTimeout=" + ioTimeoutMs
                + "&wireFormat.maxInactivityDuration=" + ioTimeoutMs
                + "&wireFormat.maxInactivityDurationInitalDelay=" + ioTimeoutMs;
        queue = param(ctx, "lab.queue", "hastack.lab.tx");
        String dbHost = param(ctx, "lab.db.host", "127.0.0.1");
        jdbcUrl = "jdbc:postgresql://" + hostPort(dbHost, positive(ctx, "lab.db.port", 5432)) + "/"
                + param(ctx, "lab.db.name", "postgres");
        jdbcProps.setProperty("user", param(ctx, "lab.db.user", "postgres"));
        String password = ctx.getInitParameter("lab.db.password");
        if (password != null && !password.isEmpty()) {
            jdbcProps.setProperty("password", password);
        }
        int seconds = Math.max(1, (ioTimeoutMs + 999) / 1000);
        jdbcProps.setProperty("connectTimeout", Integer.toString(seconds));
        jdbcProps.setProperty("loginTimeout", Integer.toString(seconds));
        // A statement may wait for another consumer's advisory lock: allow a few round trips more.
        jdbcProps.setProperty("socketTimeout", Integer.toString(3 * seconds));
        jdbcProps.setProperty("tcpKeepAlive", "true");
        jdbcProps.setProperty("ApplicationName", "hastack-lab");
        table = param(ctx, "lab.table", "hastack_ledger");
        if (!IDENT.matcher(table).matches()) {
            throw new IllegalArgumentException("context parameter lab.table: '" + table
                    + "' is not a plain lower-case SQL identifier");
        }
        consumers = positive(ctx, "lab.consumers", 4);
        dbPool = positive(ctx, "lab.db.pool", 8);
        commitWaitMs = positive(ctx, "lab.commit_wait_ms", 2000);
        node = param(ctx, "lab.node", hostname());
    }

    static Config from(ServletContext ctx) {
        return new Config(ctx);
    }

    private static String hostPort(String host, int port) {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }

    private static String param(ServletContext ctx, String name, String dflt) {
        String v = ctx.getInitParameter(name);
        return v == null || v.isEmpty() ? dflt : v.trim();
    }

    private static int positive(ServletContext ctx, String name, int dflt) {
        String v = param(ctx, name, Integer.toString(dflt));
        try {
            int n = Integer.parseInt(v);
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("context parameter " + name + ": '" + v + "' is not a positive integer");
    }

    private static String hostname() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (Exception e) {
            return "unknown";
        }
    }
}
