package hastack.lab;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Requests of this JVM waiting for their transaction to be committed. A consumer in this JVM
 * completes the wait at once; a transaction another JVM's consumer commits is seen by the
 * waiting request's own ledger check instead.
 */
final class Waiters {
    private final ConcurrentHashMap<String, CompletableFuture<Void>> waiting = new ConcurrentHashMap<>();

    /** Registered before the message is sent, so a commit can never come before the wait. */
    CompletableFuture<Void> register(Tx tx) {
        return waiting.computeIfAbsent(tx.key(), k -> new CompletableFuture<>());
    }

    void committed(Tx tx) {
        CompletableFuture<Void> f = waiting.remove(tx.key());
        if (f != null) {
            f.complete(null);
        }
    }

    void forget(Tx tx, CompletableFuture<Void> f) {
        waiting.remove(tx.key(), f);
    }
}
