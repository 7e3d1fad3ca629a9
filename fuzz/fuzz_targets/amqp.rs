//! What an AMQP 0-9-1 broker (RabbitMQ, or whatever listens on its port) sends to the agent's
//! client (src/net/amqp.rs): the input is the broker's byte stream, then it closes. Runs the
//! monitor's whole exchange: handshake and login, a confirm-mode channel, a confirmed publish,
//! a basic.get; and the close-reason reader on the raw bytes.
//!
//! Properties: nothing panics, nothing hangs, no allocation follows a size the broker claims.

#![no_main]

use hastack::net::amqp::{close_reason, Amqp};
use hastack_fuzz::{deadline, Script};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = close_reason(data);
    let deadline = deadline();
    if let Ok(mut c) = Amqp::handshake(Script::new(data), "guest", "guest", "/", deadline) {
        if c.open_confirm_channel("hastack-health", deadline).is_ok()
            && c.publish_confirmed("hastack-health", b"ping", deadline).is_ok()
        {
            let _ = c.get("hastack-health", deadline);
        }
        c.close(deadline);
    }
});
