//! Snapshots: a bank account aggregate loaded from its newest snapshot plus
//! the events after it, instead of from its first event.
//!
//! The command handler appends each command's events with a snapshot of
//! the state they produce every `SNAPSHOT_EVERY` events
//! (`append_with_snapshot`, what a framework's `persist(events, snapshot)`
//! does); loading an account is `Log::rebuild` with the aggregate's own
//! decode and apply. The example checks that every account so loaded
//! equals a full replay of its stream, now and as of an older version
//! (`rebuild_at`), and that deleting the snapshots changes nothing but the
//! work done.
//!
//! Run: `cargo run --release --example snapshots`.

use seglog::{Durability, EventData, ExpectedVersion, Log, Options, RecordedEvent, Snapshot};

/// Save a snapshot when a command brings the stream past a multiple of this.
const SNAPSHOT_EVERY: u64 = 50;
/// The schema of the account's snapshot bytes: bump it when `encode`
/// changes, and old snapshots are skipped (the events are replayed instead).
const SNAPSHOT_SCHEMA: u16 = 1;

/// The aggregate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Account {
    balance_cents: i64,
    deposits: u64,
    withdrawals: u64,
    frozen: bool,
}

impl Account {
    /// The one place an event changes the account: from the log
    /// (`apply`) and from a command's new events before they are stored.
    fn change(&mut self, event_type: &str, payload: &[u8]) {
        let amount = || i64::from_le_bytes(payload[..8].try_into().expect("8-byte amount"));
        match event_type {
            "Deposited" => {
                self.balance_cents += amount();
                self.deposits += 1;
            }
            "Withdrawn" => {
                self.balance_cents -= amount();
                self.withdrawals += 1;
            }
            "Frozen" => self.frozen = true,
            "Unfrozen" => self.frozen = false,
            other => panic!("unknown event {other}"),
        }
    }

    fn apply(&mut self, e: &RecordedEvent) {
        self.change(e.event_type(), e.payload());
    }

    /// Snapshot bytes: balance, deposits, withdrawals, frozen.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(25);
        out.extend_from_slice(&self.balance_cents.to_le_bytes());
        out.extend_from_slice(&self.deposits.to_le_bytes());
        out.extend_from_slice(&self.withdrawals.to_le_bytes());
        out.push(u8::from(self.frozen));
        out
    }

    fn decode(s: &Snapshot) -> Result<Account, String> {
        let b = s.bytes();
        let word = |at: usize| -> Result<[u8; 8], String> {
            b.get(at..at + 8)
                .and_then(|w| w.try_into().ok())
                .ok_or_else(|| format!("snapshot of {} bytes, not 25", b.len()))
        };
        Ok(Account {
            balance_cents: i64::from_le_bytes(word(0)?),
            deposits: u64::from_le_bytes(word(8)?),
            withdrawals: u64::from_le_bytes(word(16)?),
            frozen: *b.get(24).ok_or("no frozen flag")? == 1,
        })
    }
}

/// One command's events: a few movements, now and then a freeze.
fn command(seed: u64) -> Vec<EventData> {
    let amount = |k: u64| ((seed * 7919 + k * 104_729) % 10_000) as i64;
    let mut events = vec![EventData::new(
        "Deposited",
        amount(1).to_le_bytes().to_vec(),
    )];
    if seed.is_multiple_of(3) {
        events.push(EventData::new(
            "Withdrawn",
            amount(2).to_le_bytes().to_vec(),
        ));
    }
    if seed.is_multiple_of(17) {
        events.push(EventData::new("Frozen", Vec::new()));
        events.push(EventData::new("Unfrozen", Vec::new()));
    }
    events
}

fn load(log: &Log, stream: &str) -> seglog::Result<seglog::Rebuilt<Account>> {
    log.rebuild(
        stream,
        SNAPSHOT_SCHEMA,
        Account::decode,
        Account::default,
        Account::apply,
    )
}

/// The command handler: load, decide, append; with a snapshot of the
/// state the events produce when the stream passes a multiple of
/// `SNAPSHOT_EVERY` (written after the events are durable, so a crash
/// never leaves the snapshot without them).
fn handle(log: &Log, stream: &str, seed: u64) -> seglog::Result<()> {
    let loaded = load(log, stream)?;
    let mut account = loaded.state;
    let expected = loaded
        .version
        .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
    let events = command(seed);
    let before = loaded.version.map_or(0, |v| v + 1);
    let after = before + events.len() as u64;
    if after / SNAPSHOT_EVERY > before / SNAPSHOT_EVERY {
        for e in &events {
            account.change(e.event_type(), e.payload());
        }
        log.append_with_snapshot(stream, expected, &events, SNAPSHOT_SCHEMA, account.encode())?;
    } else {
        log.append(stream, expected, &events)?;
    }
    Ok(())
}

fn replay(log: &Log, stream: &str, to: u64) -> seglog::Result<Account> {
    let mut account = Account::default();
    for e in log.read_stream(stream, 0)? {
        let e = e?;
        if e.version() > to {
            break;
        }
        account.apply(&e);
    }
    Ok(account)
}

fn main() -> seglog::Result<()> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = Options::new()
        .segment_size(8 << 20)
        .durability(Durability::None)
        .open(dir.path())?;
    let accounts: Vec<String> = (0..5).map(|i| format!("account-{i}")).collect();
    for seed in 0..1_000u64 {
        handle(&log, &accounts[(seed % 5) as usize], seed)?;
    }
    for stream in &accounts {
        let loaded = load(&log, stream)?;
        let last = loaded.version.expect("the account has events");
        assert_eq!(loaded.state, replay(&log, stream, last)?, "{stream}");
        let from = loaded.from_snapshot.expect("a snapshot was saved");
        println!(
            "{stream}: version {last}, from the snapshot at {from} plus {} events: {:?}",
            last - from,
            loaded.state
        );
        // Time travel: the account as of an older version starts from the
        // newest snapshot at or before it.
        let at = last / 2;
        let then = log.rebuild_at(
            stream,
            at,
            SNAPSHOT_SCHEMA,
            Account::decode,
            Account::default,
            Account::apply,
        )?;
        assert_eq!(then.state, replay(&log, stream, at)?, "{stream} at {at}");
        assert!(then.from_snapshot.is_none_or(|v| v <= at));
    }
    // Snapshots are derived data: without them, the same states.
    let before: Vec<Account> = accounts
        .iter()
        .map(|s| load(&log, s).map(|r| r.state))
        .collect::<seglog::Result<_>>()?;
    std::fs::remove_dir_all(dir.path().join("snapshots")).expect("remove the snapshots");
    for (stream, state) in accounts.iter().zip(&before) {
        let loaded = load(&log, stream)?;
        assert_eq!(loaded.from_snapshot, None);
        assert_eq!(&loaded.state, state, "{stream} without snapshots");
    }
    println!("every account equals its full replay, with or without snapshots");
    log.close()
}
