//! Names a configuration gives the server, checked before they reach it:
//! a bad one would otherwise fail every attempt of a run loop, retried
//! for ever with a server error that does not name the setting.

use crate::error::BridgeError;

/// Characters no stream name, consumer name or subject token may hold.
fn forbidden(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>')
}

/// A JetStream stream name: not empty, at most 255 bytes, no whitespace,
/// `.`, `*`, `>` or path separators (the server stores it as a
/// directory).
pub(crate) fn check_stream(name: &str) -> Result<(), BridgeError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name
            .chars()
            .any(|c| forbidden(c) || matches!(c, '/' | '\\'));
    if bad {
        return Err(BridgeError::Config(
            "stream must be 1 to 255 bytes without whitespace, '.', '*', '>', '/' or '\\'",
        ));
    }
    Ok(())
}

/// A subject prefix: one or more tokens separated by `.`, none empty, no
/// whitespace or wildcards.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), BridgeError> {
    let bad = prefix.len() > 255
        || prefix
            .split('.')
            .any(|token| token.is_empty() || token.chars().any(forbidden));
    if bad {
        return Err(BridgeError::Config(
            "prefix must be subject tokens separated by '.', none empty, without whitespace, '*' or '>'",
        ));
    }
    Ok(())
}

/// A consumer name (before the mirror's suffix): 1 to 128 bytes, no
/// whitespace, `.`, `*` or `>`.
pub(crate) fn check_consumer(name: &str) -> Result<(), BridgeError> {
    if name.is_empty() || name.len() > 128 || name.chars().any(forbidden) {
        return Err(BridgeError::Config(
            "consumer must be 1 to 128 bytes without whitespace, '.', '*' or '>'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass_and_bad_ones_are_refused() {
        for ok in ["ORDERS", "orders-v2_x"] {
            assert!(check_stream(ok).is_ok(), "{ok}");
            assert!(check_consumer(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a.b", "a*", "a>", "a/b", "a\\b", "a\nb"] {
            assert!(check_stream(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "a b", "a.b", "x*", "x>"] {
            assert!(check_consumer(bad).is_err(), "{bad:?}");
        }
        for ok in ["orders", "acme.orders.v1"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".orders", "orders.", "a..b", "or ders", "orders.*", "orders.>",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
