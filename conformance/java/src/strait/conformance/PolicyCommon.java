package strait.conformance;

import static strait.conformance.Common.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * Shared reporting for the policy drivers (PolicyProduce, PolicyAdmin): exception class,
 * message and cause chain exactly as the client surfaced them, and error lines with runs of
 * identical consecutive errors collapsed into one line with a count.
 */
final class PolicyCommon {
    private PolicyCommon() {}

    /** Strip the future wrappers (ExecutionException, CompletionException): report what the client raised. */
    static Throwable surfaced(Throwable t) {
        Throwable cur = t;
        while ((cur instanceof ExecutionException || cur instanceof CompletionException)
               && cur.getCause() != null && cur.getCause() != cur) {
            cur = cur.getCause();
        }
        return cur;
    }

    /** t and its causes, outermost first (cycle-safe, at most 20). */
    static List<Throwable> chain(Throwable t) {
        List<Throwable> out = new ArrayList<>();
        for (Throwable c = t; c != null && out.size() < 20; c = c.getCause()) {
            boolean seen = false;
            for (Throwable o : out) if (o == c) seen = true;
            if (seen) break;
            out.add(c);
        }
        return out;
    }

    /** The messages of t and of every cause, joined by " | " (null messages skipped). */
    static String fullMessage(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c : chain(t)) {
            String m = c.getMessage();
            if (m == null) continue;
            if (sb.length() > 0) sb.append(" | ");
            sb.append(m);
        }
        return sb.toString();
    }

    /** The causes of t (not t itself) as [{"exception":class,"message":msg},...], or null when none. */
    static List<Json> causes(Throwable t) {
        List<Throwable> ch = chain(t);
        if (ch.size() <= 1) return null;
        List<Json> out = new ArrayList<>();
        for (Throwable c : ch.subList(1, ch.size())) {
            out.add(Json.obj().put("exception", c.getClass().getName()).put("message", c.getMessage()));
        }
        return out;
    }

    /**
     * Run a close action on a daemon thread and wait at most waitMs for it: KafkaProducer.close
     * (Duration) joins its I/O thread without a bound after a forced close, and that thread can
     * be stuck (e.g. in InitProducerId while no broker answers), so the driver never waits on it
     * past the deadline. The process exits through System.exit afterwards anyway.
     */
    static void boundedClose(String what, Action close, long waitMs) {
        Thread t = new Thread(() -> closeQuietly(what, close), "strait-close-" + what);
        t.setDaemon(true);
        t.start();
        try {
            t.join(Math.max(1, waitMs));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (t.isAlive()) log("closing %s did not finish within %d ms; leaving it to process exit", what, waitMs);
    }

    /**
     * The client's own time budget: the time left minus a headroom of min(10 s, max(2 s, 1/5 of
     * it)), the headroom being at most half of it, and at least 1 s. Client timeouts set from it
     * fire (and are reported) before --timeout-ms.
     */
    static long clientBudgetMs(long remainingMs) {
        long rem = Math.max(2000, remainingMs);
        long headroom = Math.min(rem / 2, Math.min(10_000, Math.max(2000, rem / 5)));
        return Math.max(1000, rem - headroom);
    }

    /** Identity of an error for de-duplication: class, message and cause chain. */
    static String identity(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c : chain(t)) sb.append(c.getClass().getName()).append('\u0000').append(c.getMessage()).append('\u0001');
        return sb.toString();
    }

    /**
     * Per-index results in index order; consecutive identical errors become one
     * {"type":"error","index":first,...,"count":k,"last_index":last} line. A success or a
     * different error ends a run.
     */
    static final class ErrorRuns {
        private final Map<String, Object> extra;
        private Throwable runError;
        private String runIdentity;
        private int runFirst = -1;
        private int runLast = -1;
        private int runCount;
        int lines;

        /** extra: fields added to every error line (e.g. phase), may be null. */
        ErrorRuns(Map<String, Object> extra) { this.extra = extra; }

        void ok(int index) { flush(); }

        void error(int index, Throwable t) {
            String id = identity(t);
            if (runError != null && Objects.equals(id, runIdentity) && index == runLast + 1) {
                runLast = index;
                runCount++;
                return;
            }
            flush();
            runError = t;
            runIdentity = id;
            runFirst = index;
            runLast = index;
            runCount = 1;
        }

        void flush() {
            if (runError == null) return;
            Json j = Json.of("error").put("index", runFirst)
                .put("exception", runError.getClass().getName())
                .put("message", runError.getMessage())
                .put("cause", causes(runError))
                .put("count", runCount)
                .put("last_index", runLast);
            if (extra != null) for (Map.Entry<String, Object> e : extra.entrySet()) j.put(e.getKey(), e.getValue());
            emit(j);
            lines++;
            runError = null;
            runIdentity = null;
        }
    }
}
