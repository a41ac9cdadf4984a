//! Text for the exports: wait reasons, JSON and XML escapes, durations.

use std::fmt::Write as _;
use std::string::String;
use std::time::Duration;

use crate::fiber::WaitReason;

/// [`reason_text`] plus the primitive's name, quoted, if it has one.
pub(super) fn reason_with_name(r: WaitReason, object: &str) -> String {
    if object.is_empty() { reason_text(r) } else { std::format!("{} \"{object}\"", reason_text(r)) }
}

/// A short human-readable wait reason (addresses in hex).
pub fn reason_text(r: WaitReason) -> String {
    match r {
        WaitReason::Join(id) => std::format!("join {id}"),
        WaitReason::Mutex(a) => std::format!("mutex {a:#x}"),
        WaitReason::Semaphore(a) => std::format!("semaphore {a:#x}"),
        WaitReason::Send(a) => std::format!("send {a:#x}"),
        WaitReason::Recv(a) => std::format!("recv {a:#x}"),
        WaitReason::Event(a) => std::format!("event {a:#x}"),
        WaitReason::Barrier(a) => std::format!("barrier {a:#x}"),
        WaitReason::Irq(a) => std::format!("irq {a:#x}"),
        WaitReason::EventGroup(a) => std::format!("event group {a:#x}"),
        WaitReason::Sleep(t) => std::format!("sleep until tick {t}"),
        WaitReason::Notify => std::string::String::from("notification"),
        WaitReason::Suspended => std::string::String::from("resume (suspended)"),
        WaitReason::Select(s) => std::format!("{s}"),
    }
}

/// Microseconds with nanosecond precision, as a JSON number.
pub(super) struct Micros(pub(super) Duration);
impl core::fmt::Display for Micros {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ns = self.0.as_nanos();
        write!(f, "{}.{:03}", ns / 1000, ns % 1000)
    }
}

/// A duration for people: ns, µs or ms.
pub(super) struct Span(pub(super) Duration);
impl core::fmt::Display for Span {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ns = self.0.as_nanos() as f64;
        if ns < 1e3 {
            write!(f, "{ns:.0} ns")
        } else if ns < 1e6 {
            write!(f, "{:.1} µs", ns / 1e3)
        } else {
            write!(f, "{:.2} ms", ns / 1e6)
        }
    }
}

/// An axis label: no trailing zeros.
pub(super) struct Num(pub(super) f64);
impl core::fmt::Display for Num {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = std::format!("{:.3}", self.0);
        f.write_str(s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// Escapes a string for a JSON string literal.
pub(super) struct Json<'a>(pub(super) &'a str);
impl core::fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Escapes a string for XML text and attribute values: the five markup
/// characters become entities, tab, newline and carriage return character
/// references (an attribute value would turn them into spaces), and what XML
/// 1.0 does not allow at all (other C0 controls, U+FFFE, U+FFFF) U+FFFD.
pub(super) struct Xml<'a>(pub(super) &'a str);
impl core::fmt::Display for Xml<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&apos;")?,
                '\t' | '\n' | '\r' => write!(f, "&#{};", c as u32)?,
                c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => f.write_char('\u{FFFD}')?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(std::format!("{}", Json("a\"b\\c\n\u{1}")), "a\\\"b\\\\c\\n\\u0001");
        assert_eq!(std::format!("{}", Xml("<a & 'b'>\"")), "&lt;a &amp; &apos;b&apos;&gt;&quot;");
        assert_eq!(
            std::format!("{}", Xml("\t\n\r\u{0}\u{1f}\u{7f}\u{fffe}\u{ffff}\u{fffd}")),
            "&#9;&#10;&#13;\u{fffd}\u{fffd}\u{7f}\u{fffd}\u{fffd}\u{fffd}"
        );
        assert_eq!(std::format!("{}", Micros(Duration::from_nanos(1_234_567))), "1234.567");
    }
}
