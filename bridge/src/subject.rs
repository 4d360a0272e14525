//! Stream names as NATS subject tokens, reversibly.
//!
//! A subject token may not hold `.` (the separator), `*` or `>` (the
//! wildcards), whitespace or control characters, and some tools choke on
//! non-ASCII. A seglog stream name may hold any of them. Bytes of
//! `[A-Za-z0-9_-]` stay as they are; every other byte of the name's UTF-8
//! (the escape `~` too) becomes `~` and two uppercase hex digits. So
//! `order.42 €` is `order~2E42~20~E2~82~AC`: readable for the common names,
//! one token always, and decoded exactly.

use std::fmt::Write;

/// Why a token is not one [`encode`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadToken {
    /// The token.
    pub token: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The subject token for stream `name`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if kept(b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "~{b:02X}");
        }
    }
    out
}

/// The stream name `token` stands for.
pub fn decode(token: &str) -> Result<String, BadToken> {
    let bad = |reason| BadToken {
        token: token.to_string(),
        reason,
    };
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'~' {
            let hex = tail.get(..2).ok_or_else(|| bad("escape cut short"))?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad("escape not hex"))?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| bad("escape not hex"))?;
            if hex.bytes().any(|c| c.is_ascii_lowercase()) {
                return Err(bad("escape not uppercase hex"));
            }
            if kept(byte) {
                return Err(bad("escape of a byte kept as is"));
            }
            bytes.push(byte);
            rest = &tail[2..];
        } else if kept(b) {
            bytes.push(b);
            rest = tail;
        } else {
            return Err(bad("byte not allowed in a token"));
        }
    }
    String::from_utf8(bytes).map_err(|_| bad("not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_valid_token(t: &str) -> bool {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'.' && b != b'*' && b != b'>')
    }

    #[test]
    fn every_kind_of_name_round_trips_as_one_valid_token() {
        let names = [
            "order-42",
            "order.42",
            "two words",
            "tab\there",
            "wild*card",
            "full>wild",
            "a.*.>",
            "tilde~already~7E",
            "Ärger-ångest",
            "注文-7",
            "emoji 🦀",
            "~",
            "%2E",
            "new\nline",
        ];
        for name in names {
            let token = encode(name);
            assert!(is_valid_token(&token), "{name:?} -> {token:?}");
            assert_eq!(decode(&token).as_deref(), Ok(name), "{token:?}");
        }
        assert_eq!(encode("order.42 €"), "order~2E42~20~E2~82~AC");
        assert_eq!(encode("order-42"), "order-42");
    }

    #[test]
    fn tokens_not_made_by_encode_are_refused() {
        for (token, reason) in [
            ("a~2", "escape cut short"),
            ("a~zz", "escape not hex"),
            ("a~2e", "escape not uppercase hex"),
            ("a~41", "escape of a byte kept as is"),
            ("a.b", "byte not allowed in a token"),
            ("a b", "byte not allowed in a token"),
            ("~FF", "not UTF-8 once decoded"),
        ] {
            assert_eq!(decode(token).map_err(|e| e.reason), Err(reason), "{token}");
        }
    }
}
