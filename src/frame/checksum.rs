//! The frame checksum: CRC-32 seeded with the log's id, started from a
//! state that also mixes each frame's position and length; and sealing a
//! frame with it.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

/// The checksum of one log: CRC-32 seeded with the log's id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checksum {
    initial: u32,
}

impl Checksum {
    pub(crate) fn new(log_id: u128) -> Self {
        Checksum {
            initial: crc32fast::hash(&log_id.to_le_bytes()),
        }
    }

    /// CRC of a frame (`frame` is exactly its unpadded bytes) at `position`.
    ///
    /// One pass over the bytes after the CRC field, started from a state that
    /// mixes the log id, the frame's position and its length. CRC is affine
    /// in its starting state, so a frame read at another position, in another
    /// log or with another length fails the check unless the 32-bit mixes
    /// collide. A single `update` keeps small frames on crc32fast's fast path
    /// (separate 4- and 8-byte updates cost more than the mixing).
    #[inline]
    pub(super) fn of_frame(&self, frame: &[u8], position: u64) -> u32 {
        let initial = self.initial ^ mix(position, frame.len() as u64);
        let mut hasher = crc32fast::Hasher::new_with_initial(initial);
        hasher.update(frame.get(8..).unwrap_or_default());
        hasher.finalize()
    }
}

/// Folds a frame's position and length into 32 bits: two rounds of a
/// 64-bit multiply-xorshift (splitmix64's finaliser), so nearby positions and
/// lengths land far apart.
#[inline]
fn mix(position: u64, len: u64) -> u32 {
    let mut x = position ^ len.rotate_right(13);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x ^ (x >> 32)) as u32
}

/// Writes the checksum of the frame in `out` (its first `len` bytes, at log
/// offset `position`) into its CRC field: the last step of every encode.
pub(crate) fn seal_crc(out: &mut [u8], len: usize, position: u64, checksum: &Checksum) {
    let crc = checksum.of_frame(out.get(..len).unwrap_or_default(), position);
    if let Some(field) = out.get_mut(4..8) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
}
