package hastack.lab;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * The ledger table in PostgreSQL: one row per recorded transaction.
 *
 * <p>Exactly once is the consumer's job, not a constraint's: {@link #record} takes a transaction
 * -scoped advisory lock on the transaction's key, then raises the delivery count of an existing row
 * or inserts the first one, and commits. Two deliveries of the same transaction (a redelivery after
 * a crash between the database commit and the queue acknowledgement, or a client's resend) are
 * serialized by the lock, so the second sees the first's committed row. The index on (run, tx) is
 * deliberately not unique: a broken de-duplication shows up as a second row, which {@code hastack
 * lab verify} counts.
 */
final class Ledger {
    /** Key of the lock that serializes schema creation by several application servers. */
    private static final long SCHEMA_LOCK = 0x6861737461636bL; // "hastack"

    private final Config cfg;
    private final org.postgresql.Driver driver = new org.postgresql.Driver();
    private final ConcurrentLinkedDeque<Connection> idle = new ConcurrentLinkedDeque<>();
    /**
     * Requests' connections: at most {@code lab.db.pool} at once. A burst of requests after a
     * restart (every client retrying at once) waits for a few connections instead of opening one
     * each, which on a busy machine made every one of them slower than the client's timeout.
     */
    private final Semaphore permits;
    private volatile boolean schemaReady;

    Ledger(Config cfg) {
        this.cfg = cfg;
        this.permits = new Semaphore(cfg.dbPool, true);
    }

    /** Opens one pooled connection ahead of the first request (warms the driver up). */
    void warm() throws SQLException {
        if (permits.tryAcquire()) {
            try {
                idle.offerFirst(open());
            } finally {
                permits.release();
            }
        }
    }

    /** A new connection (autocommit off), with the schema in place. */
    Connection open() throws SQLException {
        // The driver directly, not DriverManager: no registration to leak from a webapp loader.
        Connection c = driver.connect(cfg.jdbcUrl, cfg.jdbcProps);
        if (c == null) {
            throw new SQLException("the PostgreSQL driver does not accept " + cfg.jdbcUrl);
        }
        try {
            c.setAutoCommit(false);
            if (!schemaReady) {
                createSchema(c);
                schemaReady = true;
            }
            return c;
        } catch (SQLException e) {
            closeQuietly(c);
            throw e;
        }
    }

    private void createSchema(Connection c) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute("SELECT pg_advisory_xact_lock(" + SCHEMA_LOCK + ")");
            st.execute("CREATE TABLE IF NOT EXISTS " + cfg.table + " (run text NOT NULL, tx bigint NOT NULL, "
                    + "payload text, consumer text NOT NULL, deliveries integer NOT NULL DEFAULT 1, "
                    + "committed_at timestamptz NOT NULL DEFAULT clock_timestamp())");
            st.execute("CREATE INDEX IF NOT EXISTS " + cfg.table + "_run_tx ON " + cfg.table + " (run, tx)");
            c.commit();
        } catch (SQLException e) {
            c.rollback();
            throw e;
        }
    }

    /**
     * Records one delivery of {@code tx} on {@code c} and commits. Returns true if this delivery
     * created the row, false if the transaction was already recorded (its delivery count is raised).
     */
    boolean record(Connection c, Tx tx, String payload, String consumer) throws SQLException {
        try {
            try (PreparedStatement lock = c.prepareStatement("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))")) {
                lock.setString(1, tx.key());
                lock.executeQuery().close();
            }
            // READ COMMITTED: this statement's snapshot is taken after the lock is held, so it sees
            // the row of any delivery that held the lock before (its commit precedes the release).
            int seen;
            try (PreparedStatement up = c.prepareStatement(
                    "UPDATE " + cfg.table + " SET deliveries = deliveries + 1 WHERE run = ? AND tx = ?")) {
                up.setString(1, tx.run);
                up.setLong(2, tx.n);
                seen = up.executeUpdate();
            }
            if (seen == 0) {
                try (PreparedStatement ins = c.prepareStatement(
                        "INSERT INTO " + cfg.table + " (run, tx, payload, consumer) VALUES (?, ?, ?, ?)")) {
                    ins.setString(1, tx.run);
                    ins.setLong(2, tx.n);
                    ins.setString(3, payload);
                    ins.setString(4, consumer);
                    ins.executeUpdate();
                }
            }
            c.commit();
            return seen == 0;
        } catch (SQLException e) {
            try {
                c.rollback();
            } catch (SQLException ignored) {
                // the connection is gone; the caller drops it
            }
            throw e;
        }
    }

    /** How many rows record {@code tx} (0: not committed), on a pooled connection. */
    int rows(Tx tx) throws SQLException {
        try {
            if (!permits.tryAcquire(cfg.ioTimeoutMs, TimeUnit.MILLISECONDS)) {
                throw new SQLException("no database connection free within " + cfg.ioTimeoutMs + " ms");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SQLException("interrupted");
        }
        try {
            return rowsWithPermit(tx);
        } finally {
            permits.release();
        }
    }

    private int rowsWithPermit(Tx tx) throws SQLException {
        // A pooled connection may predate a database restart: on failure, drop the pool (its
        // connections are as stale) and ask once more on a fresh one.
        Connection c = idle.pollFirst();
        boolean fresh = c == null;
        for (;;) {
            if (c == null) {
                c = open();
            }
            try {
                int n = count(c, tx);
                idle.offerFirst(c);
                return n;
            } catch (SQLException e) {
                closeQuietly(c);
                c = null;
                if (fresh) {
                    throw e;
                }
                drain();
                fresh = true;
            }
        }
    }

    private int count(Connection c, Tx tx) throws SQLException {
        try (PreparedStatement q = c.prepareStatement("SELECT count(*) FROM " + cfg.table + " WHERE run = ? AND tx = ?")) {
            q.setString(1, tx.run);
            q.setLong(2, tx.n);
            try (ResultSet rs = q.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        } finally {
            c.rollback(); // end the read-only transaction: no snapshot held while idle
        }
    }

    void drain() {
        Connection c;
        while ((c = idle.pollFirst()) != null) {
            closeQuietly(c);
        }
    }

    static void closeQuietly(Connection c) {
        if (c != null) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // already broken
            }
        }
    }
}
