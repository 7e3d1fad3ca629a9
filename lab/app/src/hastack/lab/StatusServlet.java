package hastack.lab;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;

/**
 * {@code GET /health}: 200 as long as the application is deployed. It deliberately does not
 * look at the broker or the database: the application servers must not be restarted when the
 * data layer fails over (they reconnect). {@code GET /status}: each consumer's state, 200 if all
 * are consuming, else 503 (for people and the lab's readiness wait, not for a monitor).
 */
public final class StatusServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        App app = App.of(getServletContext());
        if ("/health".equals(req.getServletPath())) {
            TxServlet.reply(resp, 200, "ok " + app.cfg.node);
            return;
        }
        StringBuilder text = new StringBuilder("node " + app.cfg.node);
        boolean all = true;
        for (Consumer c : app.consumers) {
            String state = c.state;
            all &= "consuming".equals(state);
            text.append("\nconsumer: ").append(state);
        }
        TxServlet.reply(resp, all ? 200 : 503, text.toString());
    }
}
