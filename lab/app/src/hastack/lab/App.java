package hastack.lab;

import jakarta.servlet.ServletContext;
import jakarta.servlet.ServletContextEvent;
import jakarta.servlet.ServletContextListener;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Logger;

/**
 * The application's parts, made when the webapp starts and shared by its servlets. Nothing here
 * needs the broker or the database to be up: the webapp deploys (and Tomcat's health URL answers)
 * while the data layer is still starting or failing over, and every part reconnects by itself.
 */
public final class App implements ServletContextListener {
    private static final Logger LOG = Logger.getLogger("hastack.lab");
    private static final String ATTRIBUTE = "hastack.lab.App";

    Config cfg;
    Ledger ledger;
    Broker broker;
    Producer producer;
    final Waiters waiters = new Waiters();
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final List<Thread> threads = new ArrayList<>();
    final List<Consumer> consumers = new ArrayList<>();

    static App of(ServletContext ctx) {
        return (App) ctx.getAttribute(ATTRIBUTE);
    }

    @Override
    public void contextInitialized(ServletContextEvent event) {
        ServletContext ctx = event.getServletContext();
        cfg = Config.from(ctx);
        ledger = new Ledger(cfg);
        broker = new Broker(cfg);
        producer = new Producer(cfg, broker);
        for (int i = 1; i <= cfg.consumers; i++) {
            Consumer c = new Consumer(this, i, running);
            Thread t = new Thread(c, "hastack-lab-consumer-" + i);
            t.setDaemon(true);
            consumers.add(c);
            threads.add(t);
            t.start();
        }
        // The first request should not pay for class loading and the first logins.
        Thread warm = new Thread(() -> {
            try {
                producer.warm();
            } catch (Exception e) {
                LOG.info("warm-up: broker: " + e.getMessage() + " (not reachable yet)");
            }
            try {
                ledger.warm();
            } catch (Exception e) {
                LOG.info("warm-up: database: " + e.getMessage() + " (not reachable yet)");
            }
        }, "hastack-lab-warm-up");
        warm.setDaemon(true);
        warm.start();
        ctx.setAttribute(ATTRIBUTE, this);
        LOG.info("hastack lab application on " + cfg.node + ": broker " + cfg.brokerUrl + ", database "
                + cfg.jdbcUrl + ", queue " + cfg.queue + ", table " + cfg.table + ", " + cfg.consumers + " consumers");
    }

    @Override
    public void contextDestroyed(ServletContextEvent event) {
        running.set(false);
        for (Thread t : threads) {
            try {
                t.join(2L * cfg.ioTimeoutMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        producer.close();
        ledger.drain();
    }
}
