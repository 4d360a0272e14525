//! A digest signed with an Ed25519 key: what a service publishes so that
//! anyone holding its public key can later hold the log to it.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::error::Error;

use super::{Digest, hex};

/// A [`Digest`] with an Ed25519 signature over its text form, and the
/// public key that made it.
///
/// Its text form is the digest's line followed by `ed25519 <public key>
/// <signature>` (hex), so a tool that reads only digests reads its first
/// six words; [`str::parse`] reads the whole line back. The signature is
/// over the digest's line exactly as [`Digest`]'s `Display` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedDigest {
    /// What is signed.
    pub digest: Digest,
    /// The signer's public key.
    pub public_key: [u8; 32],
    /// The signature over `digest`'s text form.
    pub signature: [u8; 64],
}

impl Digest {
    /// This digest signed with `key` (for example a service's key, whose
    /// public half its auditors hold).
    pub fn sign(&self, key: &SigningKey) -> SignedDigest {
        SignedDigest {
            digest: *self,
            public_key: key.verifying_key().to_bytes(),
            signature: key.sign(self.to_string().as_bytes()).to_bytes(),
        }
    }
}

impl SignedDigest {
    /// Checks the signature, and that `trusted` (the key the reader
    /// expects, not the one the line names) made it; anything else is
    /// [`Error::BadSignature`].
    pub fn verify_signature(&self, trusted: &VerifyingKey) -> Result<(), Error> {
        let bad = |reason: &str| Error::BadSignature {
            reason: reason.to_string(),
        };
        if self.public_key != trusted.to_bytes() {
            return Err(bad("signed with another key than the trusted one"));
        }
        let signature = Signature::from_bytes(&self.signature);
        trusted
            .verify_strict(self.digest.to_string().as_bytes(), &signature)
            .map_err(|_| bad("the signature does not match the digest"))
    }
}

/// The word between the digest and the key.
const SCHEME: &str = "ed25519";

impl fmt::Display for SignedDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {SCHEME} {} {}",
            self.digest,
            hex(&self.public_key),
            hex(&self.signature)
        )
    }
}

impl FromStr for SignedDigest {
    type Err = Error;

    /// Reads the text form back (not the signature's validity: see
    /// [`SignedDigest::verify_signature`]); anything else is
    /// [`Error::InvalidDigest`] naming what is wrong.
    fn from_str(s: &str) -> Result<SignedDigest, Error> {
        let bad = |what: &str| Error::InvalidDigest {
            reason: what.to_string(),
        };
        let words: Vec<&str> = s.split_ascii_whitespace().collect();
        let Some((digest, signed)) = words
            .split_last_chunk::<3>()
            .filter(|(digest, _)| digest.len() == 6)
        else {
            return Err(bad("expected 9 words"));
        };
        let [scheme, key, signature] = *signed;
        if scheme != SCHEME {
            return Err(bad("no ed25519 signature after the digest"));
        }
        Ok(SignedDigest {
            digest: digest.join(" ").parse()?,
            public_key: unhex(key).ok_or_else(|| bad("the public key"))?,
            signature: unhex(signature).ok_or_else(|| bad("the signature"))?,
        })
    }
}

/// `2 * N` hex digits as `N` bytes.
pub(super) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::Position;

    fn digest() -> Digest {
        Digest {
            log_id: 0xfeed,
            position: Position::new(8192, 0),
            links: 7,
            hash: [0x5a; 32],
        }
    }

    #[test]
    fn a_signed_digest_round_trips_and_verifies_only_under_its_key_and_content() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = digest().sign(&key);
        let text = signed.to_string();
        assert!(text.starts_with(&digest().to_string()), "{text}");
        let back: SignedDigest = text.parse().expect("parse");
        assert_eq!(back, signed);
        back.verify_signature(&key.verifying_key()).expect("valid");

        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        let err = back.verify_signature(&other).expect_err("another key");
        assert!(err.to_string().contains("another key"), "{err}");

        // A digest edited under a kept signature (the hash, the position).
        for edit in [
            |d: &mut Digest| d.hash[0] ^= 1,
            |d: &mut Digest| d.position = Position::new(4096, 0),
            |d: &mut Digest| d.links += 1,
        ] {
            let mut forged = back;
            edit(&mut forged.digest);
            let err = forged
                .verify_signature(&key.verifying_key())
                .expect_err("forged");
            assert!(matches!(err, Error::BadSignature { .. }), "{err}");
        }
    }

    #[test]
    fn bad_signed_text_is_named() {
        let text = digest().sign(&SigningKey::from_bytes(&[7; 32])).to_string();
        for (bad, why) in [
            (digest().to_string(), "expected 9 words"),
            (text.replace(" ed25519 ", " rsa "), "no ed25519"),
            (text[..text.len() - 2].to_string(), "the signature"),
            (text.replacen("seglog-digest", "other", 1), "seglog-digest"),
        ] {
            let err = bad.parse::<SignedDigest>().expect_err(&bad);
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }
}
