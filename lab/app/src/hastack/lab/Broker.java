package hastack.lab;

import javax.jms.Connection;
import javax.jms.JMSException;
import org.apache.activemq.ActiveMQConnectionFactory;
import org.apache.activemq.RedeliveryPolicy;

/** Connections to the ActiveMQ broker behind the data-layer address, all with bounded waits. */
final class Broker {
    private final ActiveMQConnectionFactory factory;

    Broker(Config cfg) {
        factory = new ActiveMQConnectionFactory(cfg.brokerUrl);
        // A persistent send returns only once the broker has stored the message.
        factory.setAlwaysSyncSend(true);
        factory.setSendTimeout(cfg.ioTimeoutMs);
        factory.setCloseTimeout(cfg.ioTimeoutMs);
        // One message at a time per consumer: nothing is hoarded by a consumer that is stuck
        // waiting for the database, and the application servers of both nodes share the queue.
        factory.getPrefetchPolicy().setQueuePrefetch(1);
        // A message is never dead-lettered however often it comes back: the ledger absorbs
        // redeliveries, and a dead-lettered transaction would never be recorded.
        RedeliveryPolicy redelivery = factory.getRedeliveryPolicy();
        redelivery.setMaximumRedeliveries(RedeliveryPolicy.NO_MAXIMUM_REDELIVERIES);
        redelivery.setInitialRedeliveryDelay(0);
        redelivery.setRedeliveryDelay(100);
        factory.setWatchTopicAdvisories(false);
    }

    Connection connect() throws JMSException {
        return factory.createConnection();
    }

    static void closeQuietly(Connection c) {
        if (c != null) {
            try {
                c.close();
            } catch (JMSException | RuntimeException ignored) {
                // already broken
            }
        }
    }
}
