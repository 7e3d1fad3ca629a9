package hastack.lab;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.jms.JMSException;

/**
 * {@code POST /tx/RUN/N}: queue transaction N of client run RUN and answer 200 only once the
 * ledger has committed it; 503 if it could not be queued, or was queued but not committed within
 * {@code lab.commit_wait_ms} (it may still be committed later: ask before sending it again).
 *
 * <p>{@code GET /tx/RUN/N}: 200 if the ledger has committed N, 404 if it has not, 503 if the
 * database cannot say. A client whose POST failed asks this before it resends.
 */
public final class TxServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;
    /** How often a waiting request asks the ledger itself (a consumer in another JVM committed). */
    private static final long CHECK_EVERY_MS = 200;
    private static final int MAX_PAYLOAD = 1024;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        Tx tx = Tx.parse(req.getPathInfo());
        if (tx == null) {
            reply(resp, 400, "expected /tx/RUN/N with RUN of [A-Za-z0-9_-] and N a positive integer");
            return;
        }
        String payload = readPayload(req);
        App app = App.of(getServletContext());
        CompletableFuture<Void> done = app.waiters.register(tx);
        try {
            app.producer.send(tx, payload);
        } catch (JMSException e) {
            app.waiters.forget(tx, done);
            reply(resp, 503, "not queued: " + e.getMessage());
            return;
        }
        long start = System.nanoTime();
        long waitNs = TimeUnit.MILLISECONDS.toNanos(app.cfg.commitWaitMs);
        long nextCheck = start + TimeUnit.MILLISECONDS.toNanos(CHECK_EVERY_MS);
        for (;;) {
            long now = System.nanoTime();
            long left = start + waitNs - now;
            if (left <= 0) {
                break;
            }
            try {
                done.get(Math.min(left, TimeUnit.MILLISECONDS.toNanos(50)), TimeUnit.NANOSECONDS);
                reply(resp, 200, "committed " + tx.key());
                return;
            } catch (TimeoutException e) {
                // not by a consumer of this JVM (yet)
            } catch (InterruptedException | ExecutionException e) {
                break;
            }
            if (System.nanoTime() >= nextCheck) {
                nextCheck += TimeUnit.MILLISECONDS.toNanos(CHECK_EVERY_MS);
                try {
                    if (app.ledger.rows(tx) > 0) {
                        app.waiters.forget(tx, done);
                        reply(resp, 200, "committed " + tx.key());
                        return;
                    }
                } catch (SQLException e) {
                    // the database is away: keep waiting for the consumer, which retries it
                }
            }
        }
        app.waiters.forget(tx, done);
        reply(resp, 503, "queued, not committed within " + app.cfg.commitWaitMs + " ms: GET /tx/" + tx.key()
                + " before sending it again");
    }

    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        Tx tx = Tx.parse(req.getPathInfo());
        if (tx == null) {
            reply(resp, 400, "expected /tx/RUN/N with RUN of [A-Za-z0-9_-] and N a positive integer");
            return;
        }
        try {
            int rows = App.of(getServletContext()).ledger.rows(tx);
            if (rows > 0) {
                reply(resp, 200, "committed " + tx.key() + " rows=" + rows);
            } else {
                reply(resp, 404, "absent " + tx.key());
            }
        } catch (SQLException e) {
            reply(resp, 503, "the ledger cannot say: " + e.getMessage());
        }
    }

    private static String readPayload(HttpServletRequest req) throws IOException {
        try (InputStream in = req.getInputStream()) {
            byte[] body = in.readNBytes(MAX_PAYLOAD);
            return new String(body, StandardCharsets.UTF_8);
        }
    }

    static void reply(HttpServletResponse resp, int status, String text) throws IOException {
        byte[] body = (text + "\n").getBytes(StandardCharsets.UTF_8);
        resp.setStatus(status);
        resp.setContentType("text/plain;charset=UTF-8");
        resp.setContentLength(body.length);
        resp.getOutputStream().write(body);
    }
}
