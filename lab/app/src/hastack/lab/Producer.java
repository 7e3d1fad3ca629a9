package hastack.lab;

import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.logging.Logger;
import javax.jms.Connection;
import javax.jms.DeliveryMode;
import javax.jms.JMSException;
import javax.jms.Message;
import javax.jms.MessageProducer;
import javax.jms.Session;
import javax.jms.TextMessage;

/**
 * Sends a transaction to the queue as a persistent message, synchronously: when {@link #send}
 * returns, the broker has stored it. One connection shared by the request threads, a small pool
 * of sessions on it (a JMS session is single-threaded). A failure drops the connection; the next
 * send makes a new one.
 */
final class Producer {
    private static final Logger LOG = Logger.getLogger("hastack.lab");
    /** After a failed connect, fail fast for this long instead of queueing behind a dead address. */
    private static final long RETRY_AFTER_MS = Consumer.RETRY_MS;

    private final Config cfg;
    private final Broker broker;
    private final ConcurrentLinkedDeque<Slot> idle = new ConcurrentLinkedDeque<>();
    private Connection connection; // guarded by this
    private long generation; // guarded by this
    private long failedAt; // guarded by this
    private JMSException lastFailure; // guarded by this

    private static final class Slot {
        final long generation;
        final Session session;
        final MessageProducer producer;

        Slot(long generation, Session session, MessageProducer producer) {
            this.generation = generation;
            this.session = session;
            this.producer = producer;
        }
    }

    Producer(Config cfg, Broker broker) {
        this.cfg = cfg;
        this.broker = broker;
    }

    /** Connects ahead of the first request. */
    synchronized void warm() throws JMSException {
        if (connection == null) {
            connect();
        }
    }

    void send(Tx tx, String payload) throws JMSException {
        Slot slot = borrow();
        try {
            TextMessage m = slot.session.createTextMessage(payload);
            m.setStringProperty("run", tx.run);
            m.setLongProperty("tx", tx.n);
            slot.producer.send(m, DeliveryMode.PERSISTENT, Message.DEFAULT_PRIORITY, 0);
            idle.offerFirst(slot);
        } catch (JMSException | RuntimeException e) {
            invalidate(slot.generation);
            throw e instanceof JMSException ? (JMSException) e : wrap(e);
        }
    }

    private Slot borrow() throws JMSException {
        long current;
        synchronized (this) {
            if (connection == null) {
                connect();
            }
            current = generation;
        }
        Slot slot;
        while ((slot = idle.pollFirst()) != null) {
            if (slot.generation == current) {
                return slot;
            }
        }
        Connection c;
        synchronized (this) {
            if (connection == null || generation != current) {
                throw new JMSException("the broker connection was lost");
            }
            c = connection;
        }
        Session s = c.createSession(false, Session.AUTO_ACKNOWLEDGE);
        MessageProducer p = s.createProducer(s.createQueue(cfg.queue));
        p.setDeliveryMode(DeliveryMode.PERSISTENT);
        return new Slot(current, s, p);
    }

    private void connect() throws JMSException {
        long now = System.currentTimeMillis();
        if (lastFailure != null && now - failedAt < RETRY_AFTER_MS) {
            throw lastFailure;
        }
        Connection c = null;
        try {
            c = broker.connect();
            final long gen = generation + 1;
            c.setExceptionListener(e -> invalidate(gen));
            c.start();
            connection = c;
            generation = gen;
            lastFailure = null;
            LOG.info("producer connected to " + cfg.brokerUrl);
        } catch (JMSException | RuntimeException e) {
            Broker.closeQuietly(c);
            failedAt = now;
            lastFailure = e instanceof JMSException ? (JMSException) e : wrap(e);
            throw lastFailure;
        }
    }

    /** Drops the connection of generation {@code gen} (if still current) and its sessions. */
    private void invalidate(long gen) {
        Connection dead = null;
        synchronized (this) {
            if (connection != null && generation == gen) {
                dead = connection;
                connection = null;
                generation++;
            }
        }
        if (dead != null) {
            LOG.warning("producer lost its broker connection; reconnecting on the next send");
            idle.clear();
            Broker.closeQuietly(dead);
        }
    }

    void close() {
        synchronized (this) {
            Broker.closeQuietly(connection);
            connection = null;
            generation++;
        }
        idle.clear();
    }

    private static JMSException wrap(Exception e) {
        JMSException j = new JMSException(String.valueOf(e));
        j.setLinkedException(e);
        return j;
    }
}
