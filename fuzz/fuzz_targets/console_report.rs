//! A report body as `POST /api/v1/reports` receives it (src/console/ingest.rs): whatever an alert
//! agent, a proxy or an attacker sends. Runs what the console does before it stores anything:
//! `accept_report` (JSON, the report's schema and key recipe, the cluster check, the clock
//! check, the snapshot's crm_mon XML summary, the body's compression), then the incident
//! derivation step the store would run on the accepted event.
//!
//! Properties: nothing panics; a refusal is a 4xx whose code says why, and never 400 (malformed)
//! for a body that is JSON; an accepted report's key is its fields' recipe, the stored body
//! inflates back to the bytes received, the event time is never later than the tolerance
//! allows, and the report written back as JSON is accepted again with the same key (a replay
//! is recognised as the same report); derivation closes no incident before it opened and gives no negative MTTR.

#![no_main]

use hastack::console::derive::{DeriveState, EventFacts};
use hastack::console::ingest::{accept_report, FUTURE_TOLERANCE_US};
use hastack::console::report::Category;
use hastack::console::store::inflate;
use libfuzzer_sys::fuzz_target;

/// The console's clock for the run: fixed, so a run is reproducible.
const RECEIVED_US: i64 = 1_764_547_200_000_000;

fuzz_target!(|data: &[u8]| {
    // The token's cluster: the one the body claims when it names one (so the checks past the
    // cluster check run), else a name no body gives.
    let claimed = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v["cluster"]["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| "store-0001".to_string());
    let accepted = match accept_report(data, 7, &claimed, RECEIVED_US) {
        Ok(a) => a,
        Err(rejection) => {
            assert!((400..500).contains(&rejection.status), "{rejection}");
            assert!(!rejection.code.is_empty() && !rejection.message.is_empty());
            // JSON is never called malformed; text that is not JSON is malformed (400), or not
            // a report (422) when the report's reader gave up first (an array nested past
            // serde_json's depth limit is refused by its shape before its depth).
            let is_json = serde_json::from_slice::<serde_json::Value>(data).is_ok();
            if is_json {
                assert_ne!(rejection.status, 400, "{rejection}");
            } else {
                assert!(matches!(rejection.status, 400 | 422), "{rejection}");
            }
            return;
        }
    };
    let report = &accepted.report;
    assert_eq!(report.idempotency_key, report.expected_key());
    assert_eq!(report.cluster.id, claimed);
    assert_eq!(inflate(&accepted.body).expect("the stored body inflates"), data);
    assert!(accepted.time_us <= RECEIVED_US.saturating_add(FUTURE_TOLERANCE_US));
    assert_eq!(
        accepted.clock_ahead_ms.is_some(),
        accepted.time_us == RECEIVED_US && report.event_time_us() != RECEIVED_US
    );

    // What the console stores can be sent again and is the same report.
    let again = serde_json::to_vec(report).expect("a report serialises");
    let replay = accept_report(&again, 7, &claimed, RECEIVED_US).expect("the report written back is accepted");
    assert_eq!(replay.report.idempotency_key, report.idempotency_key);
    assert_eq!(replay.time_us, accepted.time_us);

    // One derivation step, as the store runs it.
    let facts = accepted.facts(1);
    // The store feeds events in time order: first a failure of the same resource a second
    // earlier (so the report's event can join or close an incident), then the report's event.
    let earlier = EventFacts {
        id: 0,
        time_us: facts.time_us.saturating_sub(1_000_000),
        category: Some(Category::OperationFailed),
        task: Some("monitor".to_string()),
        interval_ms: Some(10_000),
        summary: "monitor failed".to_string(),
        placement: None,
        ..facts.clone()
    };
    let mut state = DeriveState::default();
    for ev in [&earlier, &facts] {
        for incident in state.step(ev).changed {
            if let Some(recovered) = incident.recovered_us {
                assert!(recovered >= incident.detected_us, "{incident:?}");
            }
            assert!(incident.mttr_ms().is_none_or(|ms| ms >= 0), "{incident:?}");
        }
    }
});
