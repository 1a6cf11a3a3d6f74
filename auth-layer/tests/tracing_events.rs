//! One tracing event per decision, with the `code` and credential kind, and never the token.

use std::sync::{Arc, Mutex};

use portcullis_test_harness as harness;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Default, Clone)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == "portcullis::auth" {
            let mut f = Fields(String::new());
            event.record(&mut f);
            self.0.lock().unwrap().push(f.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn each_decision_is_one_event_with_its_code_and_without_the_credential() {
    let capture = Capture::default();
    let h = harness::Harness::new();
    tracing::subscriber::with_default(capture.clone(), || {
        let token = format!("eyJhbGciOiJIUzI1NiJ9.e30.{}", harness::MARKER);
        h.check(&[format!("Bearer {token}").as_bytes()], None, None);
        h.check(
            &[],
            None,
            Some(format!("wrong-{}", harness::MARKER).as_bytes()),
        );
        h.check(&[b"Basic abc"], None, None);
    });
    let events = capture.0.lock().unwrap();
    assert_eq!(events.len(), 3, "{events:#?}");
    assert!(
        events[0].contains("code=\"invalid_signature\"")
            || events[0].contains("code=\"unknown_key\""),
        "{}",
        events[0]
    );
    assert!(events[0].contains("credential=\"bearer\""));
    assert!(
        events[1].contains("code=\"invalid_api_key\"")
            && events[1].contains("credential=\"api_key\"")
    );
    assert!(events[2].contains("code=\"unsupported_scheme\""));
    for e in events.iter() {
        assert!(
            !e.contains(harness::MARKER),
            "an event carries the credential: {e}"
        );
    }
}
