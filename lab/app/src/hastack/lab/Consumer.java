package hastack.lab;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.jms.JMSException;
import javax.jms.Message;
import javax.jms.MessageConsumer;
import javax.jms.Session;
import javax.jms.TextMessage;

/**
 * One consumer thread: takes a message from the queue in a transacted session, records it in the
 * ledger (database commit), then commits the session (the broker forgets the message).
 *
 * <p>A crash between the two commits redelivers a message that is already recorded; the ledger's
 * de-duplication absorbs it. A crash before the database commit loses nothing: the message stays
 * on the broker. While the database is unreachable the consumer keeps the message and retries
 * the database (it does not roll the message back: that would only spin it through redeliveries).
 */
final class Consumer implements Runnable {
    private static final Logger LOG = Logger.getLogger("hastack.lab");
    /**
     * Pause before connecting again to the broker or the database, as the producer's: a refused
     * connect costs nothing, and a longer pause would add to every failover the lab measures
     * (a warm-standby broker serves about half a second after its address moves).
     */
    static final long RETRY_MS = 50;

    private final App app;
    private final String name;
    private final AtomicBoolean running;
    private Connection db;
    volatile String state = "starting";

    Consumer(App app, int index, AtomicBoolean running) {
        this.app = app;
        this.name = app.cfg.node + "#" + index;
        this.running = running;
    }

    @Override
    public void run() {
        while (running.get()) {
            try {
                consumeUntilBroken();
            } catch (JMSException | RuntimeException e) {
                state = "broker unreachable: " + e;
                LOG.log(Level.FINE, name + ": broker connection failed", e);
            }
            sleep(RETRY_MS);
        }
        Ledger.closeQuietly(db);
        state = "stopped";
    }

    private void consumeUntilBroken() throws JMSException {
        if (db == null) {
            // Ready before the first message: the driver's first login is the slow one.
            try {
                db = app.ledger.open();
            } catch (SQLException e) {
                state = "database unreachable: " + e.getMessage();
            }
        }
        javax.jms.Connection c = app.broker.connect();
        AtomicBoolean broken = new AtomicBoolean();
        try {
            c.setExceptionListener(e -> broken.set(true));
            Session session = c.createSession(true, Session.SESSION_TRANSACTED);
            MessageConsumer consumer = session.createConsumer(session.createQueue(app.cfg.queue));
            c.start();
            state = "consuming";
            LOG.info(name + ": consuming " + app.cfg.queue);
            while (running.get() && !broken.get()) {
                Message m = consumer.receive(250);
                if (m == null) {
                    continue;
                }
                Tx tx = txOf(m);
                if (tx == null) {
                    LOG.warning(name + ": dropping a message that is not a transaction: " + m);
                } else if (!recordDurably(tx, ((TextMessage) m).getText())) {
                    return; // stopping: the session closes uncommitted, the broker keeps the message
                } else {
                    app.waiters.committed(tx);
                }
                session.commit();
            }
        } finally {
            state = "reconnecting to the broker";
            Broker.closeQuietly(c);
        }
    }

    /** Records until the database commit succeeds; false if the application stops first. */
    private boolean recordDurably(Tx tx, String payload) {
        boolean reported = false;
        while (running.get()) {
            // A connection opened before a failover fails on its first use (the database moved, or
            // restarted): the first retry goes at once on a new one; only a failing new one waits.
            boolean reused = db != null;
            try {
                if (db == null) {
                    db = app.ledger.open();
                }
                app.ledger.record(db, tx, payload, name);
                state = "consuming";
                return true;
            } catch (SQLException e) {
                Ledger.closeQuietly(db);
                db = null;
                state = "database unreachable: " + e.getMessage();
                if (!reported) {
                    LOG.warning(name + ": cannot record " + tx + " yet: " + e.getMessage());
                    reported = true;
                }
                if (!reused) {
                    sleep(RETRY_MS);
                }
            }
        }
        return false;
    }

    private static Tx txOf(Message m) throws JMSException {
        if (!(m instanceof TextMessage) || !m.propertyExists("run") || !m.propertyExists("tx")) {
            return null;
        }
        return new Tx(m.getStringProperty("run"), m.getLongProperty("tx"));
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
