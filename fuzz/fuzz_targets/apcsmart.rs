//! What an APC Smart UPS (or line noise, or another device) sends on the serial line, with
//! unsolicited alert characters anywhere. The input is the byte stream; a 0xFF byte ends one
//! read of the port (two in a row: a read that found nothing). Runs the splitter alone, then
//! fence_ups's whole dialogue (fence/smart_ups.rs): handshake, serial number, status and
//! register 1, load off.
//!
//! Properties: nothing panics; the splitter gives the same lines and alerts however the bytes
//! are cut into reads; alerts never reach a line; the dialogue's every answer (values and error
//! messages) is the same with the alert characters taken out of the stream.

#![no_main]

use anyhow::{bail, Result};
use hastack::fence::apcsmart::{Alert, Incoming, LineSplitter};
use hastack::fence::log::FenceLog;
use hastack::fence::smart_ups::{SmartUps, UpsLine};
use hastack::fence::ups::Ups;
use hastack::ocf::Deadline;
use libfuzzer_sys::fuzz_target;

/// The port: each read returns the next piece; after the last one the line is dead.
struct Line {
    reads: std::vec::IntoIter<Vec<u8>>,
}

impl UpsLine for Line {
    fn name(&self) -> &str {
        "/dev/ttyFUZZ"
    }
    fn write_byte(&mut self, _: u8) -> Result<()> {
        Ok(())
    }
    fn read_some(&mut self, _: Deadline) -> Result<Vec<u8>> {
        match self.reads.next() {
            Some(piece) => Ok(piece),
            None => bail!("cannot read from /dev/ttyFUZZ: the line is gone"),
        }
    }
}

/// Every answer of one dialogue, as text.
fn dialogue(reads: Vec<Vec<u8>>) -> Vec<String> {
    let log = FenceLog::quiet();
    let mut ups = SmartUps::new(Line { reads: reads.into_iter() }, &log);
    let deadline = hastack_fuzz::deadline();
    vec![
        format!("{:?}", ups.serial_number(deadline).map_err(|e| format!("{e:#}"))),
        format!("{:?}", ups.power(deadline).map_err(|e| format!("{e:#}"))),
        format!("{:?}", ups.cut_load(deadline).map_err(|e| format!("{e:#}"))),
        ups.describe(),
    ]
}

fn split(bytes: &[u8], cut: impl Fn(usize) -> bool) -> Vec<Incoming> {
    let mut s = LineSplitter::default();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..=bytes.len() {
        if i == bytes.len() || cut(i) {
            out.extend(s.feed(&bytes[start..i]));
            start = i;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // The splitter: whole, byte by byte, and in pieces give the same items.
    let whole = split(data, |_| false);
    assert_eq!(whole, split(data, |_| true));
    assert_eq!(whole, split(data, |i| i % 5 == 3));
    let alerts: Vec<Alert> = data.iter().filter_map(|b| Alert::from_byte(*b)).collect();
    let got: Vec<Alert> =
        whole.iter().filter_map(|i| if let Incoming::Alert(a) = i { Some(*a) } else { None }).collect();
    assert_eq!(alerts, got);
    for item in &whole {
        if let Incoming::Line(l) = item {
            assert!(!l.contains('\n') && !l.contains('\r'), "{l:?}");
            assert!(!l.bytes().any(|b| Alert::from_byte(b).is_some()), "an alert in the line {l:?}");
        }
    }

    // The dialogue, and the same without the alerts (a read that held only alerts disappears;
    // a read that found nothing stays).
    let reads: Vec<Vec<u8>> = data.split(|b| *b == 0xFF).map(<[u8]>::to_vec).collect();
    let quiet: Vec<Vec<u8>> = reads
        .iter()
        .filter_map(|r| {
            let kept: Vec<u8> = r.iter().copied().filter(|b| Alert::from_byte(*b).is_none()).collect();
            (kept.len() == r.len() || !kept.is_empty()).then_some(kept)
        })
        .collect();
    assert_eq!(dialogue(reads), dialogue(quiet));
});
