//! A digest: what the hash chain commits to at one position, in a line of
//! text that can be published and read back.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::position::Position;

use super::Head;

/// What a log's hash chain commits to at a position: every event before
/// `position`, byte for byte (payloads through their own hashes, so an
/// erased payload still verifies). Kept somewhere the log's owner cannot
/// rewrite (published, signed), it later proves that the log still holds
/// exactly those events.
///
/// Its text form is one line, `seglog-digest 1 <log id> <position>
/// <links> <hash>` (hex, decimal, decimal, hex), which [`str::parse`]
/// reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    /// The log's id.
    pub log_id: u128,
    /// Everything before this position is covered.
    pub position: Position,
    /// Appends (frames) covered, from the log's first.
    pub links: u64,
    /// The chain's hash (BLAKE3) after the last of them.
    pub hash: [u8; 32],
}

impl Digest {
    pub(crate) fn of(log_id: u128, head: &Head) -> Digest {
        Digest {
            log_id,
            position: head.position(),
            links: head.links,
            hash: head.hash,
        }
    }
}

/// The first word of a digest's text form, and its version.
const TAG: &str = "seglog-digest";
const VERSION: &str = "1";

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TAG} {VERSION} {:032x} {} {} {}",
            self.log_id,
            self.position.as_u64(),
            self.links,
            super::hex(&self.hash)
        )
    }
}

impl FromStr for Digest {
    type Err = Error;

    /// Reads the text form back; anything else is
    /// [`Error::InvalidDigest`] naming what is wrong.
    fn from_str(s: &str) -> Result<Digest, Error> {
        let bad = |what: &str| Error::InvalidDigest {
            reason: what.to_string(),
        };
        let words: Vec<&str> = s.split_ascii_whitespace().collect();
        let [tag, version, log_id, position, links, hash] = words[..] else {
            return Err(bad("expected 6 words"));
        };
        if tag != TAG {
            return Err(bad("it does not start with seglog-digest"));
        }
        if version != VERSION {
            return Err(bad("a version this build does not read"));
        }
        Ok(Digest {
            log_id: u128::from_str_radix(log_id, 16).map_err(|_| bad("the log id"))?,
            position: Position::from_u64(position.parse().map_err(|_| bad("the position"))?),
            links: links.parse().map_err(|_| bad("the link count"))?,
            hash: super::signed::unhex(hash).ok_or_else(|| bad("the hash"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_round_trips_through_its_text_and_bad_text_is_named() {
        let d = Digest {
            log_id: 0xfeed,
            position: Position::new(4096, 0),
            links: 3,
            hash: [0xab; 32],
        };
        let text = d.to_string();
        assert!(text.starts_with("seglog-digest 1 0000"), "{text}");
        assert_eq!(text.parse::<Digest>().expect("parse"), d);
        for (bad, why) in [
            ("", "expected 6 words"),
            (&text.replace("seglog-digest", "other"), "seglog-digest"),
            (&text.replacen(" 1 ", " 2 ", 1), "version"),
            (&text.replace("abab", "zzab"), "the hash"),
            (&text[..text.len() - 2], "the hash"),
        ] {
            let err = bad.parse::<Digest>().expect_err(bad);
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }
}
