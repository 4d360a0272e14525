//! Upcasting: a service whose `OrderPlaced` events changed shape twice.
//!
//! - v1 payload: `amount` (cents, as text);
//! - v2 payload: `amount;currency`: v1 events are read as euros;
//! - v3: the type is renamed `OrderCreated`, payload unchanged.
//!
//! And `AddressChanged` v1 (`street|city`) became two events at v2,
//! `StreetChanged` and `CityChanged`. The log below holds events of every
//! age; every read hands them out as the current code expects them, the
//! stored bytes untouched.
//!
//! Run: `cargo run --release --example upcasting`.

use seglog::{
    Durability, EventData, ExpectedVersion, Log, Options, Position, UpcastInput, UpcastResult,
    Upcasted, Upcasters,
};

/// v1 -> v2: a currency where there was none.
fn add_currency(e: &UpcastInput<'_>) -> UpcastResult {
    let mut payload = e.payload().to_vec();
    payload.extend_from_slice(b";EUR");
    Ok(vec![Upcasted::new("OrderPlaced", payload)])
}

/// v2 -> v3: the same event under its new name.
fn rename(e: &UpcastInput<'_>) -> UpcastResult {
    Ok(vec![Upcasted::new("OrderCreated", e.payload().to_vec())])
}

/// v1 -> v2: one address change becomes two finer events.
fn split_address(e: &UpcastInput<'_>) -> UpcastResult {
    let text = std::str::from_utf8(e.payload()).map_err(|e| e.to_string())?;
    let (street, city) = text.split_once('|').ok_or("expected street|city")?;
    Ok(vec![
        Upcasted::new("StreetChanged", street.as_bytes().to_vec()),
        Upcasted::new("CityChanged", city.as_bytes().to_vec()),
    ])
}

fn upcasters() -> seglog::Result<Upcasters> {
    Upcasters::builder()
        .step("OrderPlaced", 1, &["OrderPlaced"], add_currency)
        .step("OrderPlaced", 2, &["OrderCreated"], rename)
        .step(
            "AddressChanged",
            1,
            &["StreetChanged", "CityChanged"],
            split_address,
        )
        // Checked here: a gap in a chain would be refused now, not at a read.
        .build()
}

/// Events written over the years, each by the code of its time.
fn write_history(log: &Log) -> seglog::Result<()> {
    let old = [
        ("order-1", "OrderPlaced", 1, "1250"),
        ("customer-7", "AddressChanged", 1, "Main St 1|Springfield"),
        ("order-2", "OrderPlaced", 2, "990;USD"),
        ("order-3", "OrderCreated", 3, "4200;EUR"),
    ];
    for (stream, event_type, version, payload) in old {
        let event =
            EventData::new(event_type, payload.as_bytes().to_vec()).with_schema_version(version);
        log.append(stream, ExpectedVersion::Any, &[event])?;
    }
    Ok(())
}

fn main() -> seglog::Result<()> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = Options::new()
        .durability(Durability::None)
        .upcasters(upcasters()?)
        .open(dir.path())?;
    write_history(&log)?;
    println!("stored -> handed out:");
    let mut created = 0;
    for e in log.read_all(Position::START)? {
        let e = e?;
        println!(
            "  v{} -> {} v{} {:?} (output {} of {})",
            e.stored_schema_version(),
            e.event_type(),
            e.schema_version(),
            String::from_utf8_lossy(e.payload()),
            e.output().0 + 1,
            e.output().1,
        );
        created += usize::from(e.event_type() == "OrderCreated");
    }
    // Every order, whatever its age, is an `OrderCreated` v3 with a currency.
    assert_eq!(created, 3);
    // The borrowed replay hands out the same.
    let mut replayed = Vec::new();
    log.replay(Position::START, |e| {
        replayed.push(format!("{} v{}", e.event_type(), e.schema_version()));
    })?;
    println!("replay: {}", replayed.join(", "));
    assert_eq!(replayed.len(), 5);
    log.close()
}
