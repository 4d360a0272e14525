use super::*;

fn input<'a>(t: &'a str, v: u16, payload: &'a [u8]) -> UpcastInput<'a> {
    UpcastInput {
        event_type: t,
        schema_version: v,
        metadata: b"m",
        payload,
    }
}

fn chain() -> Upcasters {
    Upcasters::builder()
        .step("A", 1, &["A"], |e| {
            let mut p = e.payload().to_vec();
            p.push(b'2');
            Ok(vec![
                Upcasted::new("A", p).with_metadata(e.metadata().to_vec()),
            ])
        })
        .step("A", 2, &["B", "C"], |e| {
            Ok(vec![
                Upcasted::new("B", e.payload().to_vec()),
                Upcasted::new("C", b"c".to_vec()),
            ])
        })
        .step("B", 3, &["B"], |e| Ok(vec![Upcasted::from_input(e)]))
        .step("Gone", 1, &[], |_| Ok(Vec::new()))
        .step("Liar", 1, &["Liar"], |_| {
            Ok(vec![Upcasted::new("Other", b"".to_vec())])
        })
        .build()
        .expect("a whole chain")
}

#[test]
fn a_chain_runs_in_order_through_renames_and_splits() {
    let u = chain();
    let out = u.run(&input("A", 1, b"x")).expect("runs").expect("applies");
    let got: Vec<(u16, &str, &[u8])> = out
        .iter()
        .map(|(v, e)| (*v, e.event_type.as_str(), &e.payload[..]))
        .collect();
    // A1 -> A2 (payload changed) -> B3 + C3; B3 -> B4; C has no steps.
    assert_eq!(got, vec![(4, "B", &b"x2"[..]), (3, "C", &b"c"[..])]);
    assert_eq!(u.current_version("A"), Some(3));
    assert_eq!(u.current_version("B"), Some(4));
    assert_eq!(u.current_version("C"), None);
}

#[test]
fn events_without_a_step_pass_as_stored() {
    let u = chain();
    assert!(
        u.run(&input("A", 3, b"x")).expect("runs").is_none(),
        "current"
    );
    assert!(u.run(&input("Zed", 1, b"x")).expect("runs").is_none());
    // The filter is certain about what it refuses.
    for t in ["A", "B", "Gone", "Liar"] {
        assert!(u.may_apply(t.as_bytes()), "{t}");
    }
}

#[test]
fn a_drop_gives_nothing_and_an_undeclared_type_is_an_error() {
    let u = chain();
    assert_eq!(
        u.run(&input("Gone", 1, b""))
            .expect("runs")
            .map(|o| o.len()),
        Some(0)
    );
    let err = u.run(&input("Liar", 1, b"")).expect_err("undeclared");
    assert!(err.contains("\"Other\""), "{err}");
}

#[test]
fn outputs_are_bounded() {
    let u = Upcasters::builder()
        .step("Many", 1, &["Many"], |_| {
            Ok((0..=MAX_UPCAST_OUTPUTS)
                .map(|_| Upcasted::new("Many", b"".to_vec()))
                .collect())
        })
        .build()
        .expect("build");
    let err = u.run(&input("Many", 1, b"")).expect_err("too many");
    assert!(err.contains("more than"), "{err}");
}

#[test]
fn building_names_the_step_at_fault() {
    let err = Upcasters::builder()
        .step("A", 1, &["A"], |e| Ok(vec![Upcasted::from_input(e)]))
        .step("A", 3, &["A"], |e| Ok(vec![Upcasted::from_input(e)]))
        .build()
        .expect_err("gap");
    match err {
        Error::UpcasterChain {
            event_type,
            schema_version,
            reason,
        } => {
            assert_eq!((event_type.as_str(), schema_version), ("A", 3));
            assert!(reason.contains("gap"), "{reason}");
        }
        other => panic!("unexpected {other}"),
    }
}
