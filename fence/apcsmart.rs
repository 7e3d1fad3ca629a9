//! APC Smart (UPS-Link) protocol, pure: the commands fence_ups sends, the splitting of the byte
//! stream into reply lines and unsolicited alert characters, and the decoding of the status
//! byte and register 1 (fence-contract.md §2.1). The simulator (sim.rs) shares these.
//! No EEPROM-writing command (`-`, and anything that changes `p`/`r`) is defined here on purpose.

use std::time::Duration;

pub const SMART_MODE: u8 = b'Y';
pub const SMART_MODE_REPLY: &str = "SM";
pub const STATUS: u8 = b'Q';
pub const REGISTER1: u8 = b'~';
pub const SERIAL_NUMBER: u8 = b'n';
pub const MODEL: u8 = 0x01; // ^A
/// Load off immediately, stays off; must be sent twice, more than 1.5 s apart.
pub const LOAD_OFF: u8 = b'Z';
/// Load on (^N); twice, more than 1.5 s apart.
pub const LOAD_ON: u8 = 0x0e;
pub const ESC: u8 = 0x1b;
/// The EEPROM cycling command: fence_ups never sends it (the simulator counts it).
pub const NEXT_VALUE: u8 = b'-';
pub const NOT_AVAILABLE: &str = "NA";

/// The wait between the two bytes of a double command: the protocol asks for more than 1.5 s.
pub const DOUBLE_COMMAND_GAP: Duration = Duration::from_millis(1600);

/// Status byte (`Q`) bits.
pub const STATUS_ONLINE: u8 = 0x08;
pub const STATUS_ON_BATTERY: u8 = 0x10;
pub const STATUS_LOW_BATTERY: u8 = 0x40;
/// Register 1 (`~`) bit 6: "ready to power load on user command" = the load is off.
pub const REG1_LOAD_OFF: u8 = 0x40;

/// An unsolicited alert character (sent without CR/LF, at any time).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Alert {
    OnBattery,
    OnLine,
    LowBattery,
    BatteryOk,
    Abnormal,
    AbnormalCleared,
    /// `*`: about to turn off; the UPS processes no command after it.
    TurningOff,
    ReplaceBattery,
    Alarm,
    EepromChanged,
}

impl Alert {
    pub fn from_byte(b: u8) -> Option<Alert> {
        Some(match b {
            b'!' => Alert::OnBattery,
            b'$' => Alert::OnLine,
            b'%' => Alert::LowBattery,
            b'+' => Alert::BatteryOk,
            b'?' => Alert::Abnormal,
            b'=' => Alert::AbnormalCleared,
            b'*' => Alert::TurningOff,
            b'#' => Alert::ReplaceBattery,
            b'&' => Alert::Alarm,
            b'|' => Alert::EepromChanged,
            _ => return None,
        })
    }
    pub fn describe(self) -> &'static str {
        match self {
            Alert::OnBattery => "on battery",
            Alert::OnLine => "back on line power",
            Alert::LowBattery => "low battery",
            Alert::BatteryOk => "battery ok",
            Alert::Abnormal => "abnormal condition",
            Alert::AbnormalCleared => "abnormal condition cleared",
            Alert::TurningOff => "about to turn the load off",
            Alert::ReplaceBattery => "replace battery",
            Alert::Alarm => "alarm",
            Alert::EepromChanged => "EEPROM changed",
        }
    }
}

/// What arrives from the UPS, once split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    Alert(Alert),
    /// A reply line without its CR/LF.
    Line(String),
}

/// Splits the byte stream into reply lines and alerts. Alerts can arrive between replies or in
/// the middle of one; they are taken out wherever they appear. Feed bytes as they come.
#[derive(Default, Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Incoming> {
        let mut out = Vec::new();
        for &b in bytes {
            if let Some(alert) = Alert::from_byte(b) {
                out.push(Incoming::Alert(alert));
            } else if b == b'\n' {
                out.push(Incoming::Line(String::from_utf8_lossy(&self.partial).into_owned()));
                self.partial.clear();
            } else if b != b'\r' {
                self.partial.push(b);
            }
        }
        out
    }

    /// Bytes received that are not (yet) part of a complete line.
    pub fn pending(&self) -> &[u8] {
        &self.partial
    }

    pub fn clear(&mut self) {
        self.partial.clear();
    }
}

/// Whether a reply is plausible text from a UPS (printable ASCII): line noise, a wrong baud
/// rate or another device on the port give other bytes.
pub fn is_clean(line: &str) -> bool {
    line.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Parses a two-digit hexadecimal register reply (`Q`, `~`).
pub fn parse_hex_byte(reply: &str) -> Result<u8, String> {
    let r = reply.trim();
    if r.len() != 2 {
        return Err(format!("expected two hexadecimal digits, got {r:?}"));
    }
    u8::from_str_radix(r, 16).map_err(|_| format!("expected two hexadecimal digits, got {r:?}"))
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
}

/// The load's state from the status byte and, when the UPS has it, register 1. Off needs both
/// signals to agree where both exist: no on-line/on-battery bit, and either the status byte
/// 0x00 (NUT's OFF) or register 1's bit 6.
pub fn decode_power(status: u8, register1: Option<u8>) -> Power {
    let supplying = status & (STATUS_ONLINE | STATUS_ON_BATTERY) != 0;
    if supplying {
        return Power::On;
    }
    match register1 {
        Some(r) if r & REG1_LOAD_OFF != 0 => Power::Off,
        Some(_) if status != 0 => Power::On,
        _ if status == 0 => Power::Off,
        _ => Power::On,
    }
}

/// A byte as it appears in a transcript: printable as itself, others as ^X or hex.
pub fn show_byte(b: u8) -> String {
    match b {
        0x20..=0x7e => (b as char).to_string(),
        0x01..=0x1a => format!("^{}", (b + 0x40) as char),
        0x1b => "ESC".into(),
        _ => format!("\\x{b:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_takes_alerts_out_of_and_between_lines() {
        let mut s = LineSplitter::default();
        assert_eq!(s.feed(b"$S"), vec![Incoming::Alert(Alert::OnLine)]);
        assert_eq!(s.feed(b"M\r"), vec![]);
        assert_eq!(s.pending(), b"SM");
        assert_eq!(
            s.feed(b"\n!0!8\r\n"),
            vec![
                Incoming::Line("SM".into()),
                Incoming::Alert(Alert::OnBattery),
                Incoming::Alert(Alert::OnBattery),
                Incoming::Line("08".into()),
            ]
        );
        assert_eq!(s.feed(b"*"), vec![Incoming::Alert(Alert::TurningOff)]);
    }

    #[test]
    fn hex_and_cleanliness() {
        assert_eq!(parse_hex_byte("08"), Ok(8));
        assert_eq!(parse_hex_byte("4F"), Ok(0x4f));
        assert!(parse_hex_byte("NA").is_err());
        assert!(parse_hex_byte("008").is_err());
        assert!(is_clean("QS0123456789"));
        assert!(!is_clean("S\u{7f}M"));
        assert!(!is_clean("\u{1}\u{2}"));
    }

    #[test]
    fn power_decoding_needs_agreement() {
        assert_eq!(decode_power(0x08, Some(0x00)), Power::On);
        assert_eq!(decode_power(0x10, Some(0x40)), Power::On, "on battery is supplying the load");
        assert_eq!(decode_power(0x00, Some(0x40)), Power::Off);
        assert_eq!(decode_power(0x00, None), Power::Off, "no register 1: NUT's rule, 00 = OFF");
        assert_eq!(decode_power(0x02, Some(0x40)), Power::Off, "waiting for AC with the load off");
        assert_eq!(decode_power(0x02, Some(0x00)), Power::On, "neither signal says off");
        assert_eq!(decode_power(0x02, None), Power::On);
    }

    #[test]
    fn transcript_bytes() {
        assert_eq!(show_byte(b'Z'), "Z");
        assert_eq!(show_byte(LOAD_ON), "^N");
        assert_eq!(show_byte(MODEL), "^A");
        assert_eq!(show_byte(0xff), "\\xff");
    }
}
