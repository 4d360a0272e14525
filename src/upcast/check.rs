//! What building a set of upcasters checks, before any read: every chain
//! has no gap and is at most [`MAX_UPCAST_STEPS`] long. Versions only grow
//! along a chain (a step turns version `v` into `v + 1`), so a chain cannot
//! loop; a step registered twice, or from version `u16::MAX` (which has no
//! next version), is refused.

use std::collections::{BTreeMap, HashMap};

use crate::limits::MAX_UPCAST_STEPS;

/// One registered step, as the checks see it.
pub(super) struct StepShape<'a> {
    pub(super) event_type: &'a str,
    pub(super) from: u16,
    pub(super) emits: &'a [String],
}

/// Why a set of steps was refused: the type and stored version of the
/// step at fault, and the reason.
pub(super) type Refusal = (String, u16, String);

/// Checks `steps`; see the module's comment.
pub(super) fn check(steps: &[StepShape<'_>]) -> Result<(), Refusal> {
    let mut by_type: HashMap<&str, BTreeMap<u16, &StepShape<'_>>> = HashMap::new();
    for step in steps {
        if step.from == u16::MAX {
            return Err(refuse(step, "version u16::MAX has no next version"));
        }
        let versions = by_type.entry(step.event_type).or_default();
        if versions.insert(step.from, step).is_some() {
            return Err(refuse(
                step,
                "a step for this type and version is registered twice",
            ));
        }
    }
    for versions in by_type.values() {
        check_contiguous(versions)?;
    }
    for step in steps {
        check_targets(step, &by_type)?;
    }
    let mut lengths = HashMap::new();
    for step in steps {
        let steps = chain_length(step.event_type, step.from, &by_type, &mut lengths);
        if steps > MAX_UPCAST_STEPS {
            return Err(refuse(
                step,
                &format!("its chain takes {steps} steps, more than {MAX_UPCAST_STEPS}"),
            ));
        }
    }
    Ok(())
}

fn refuse(step: &StepShape<'_>, reason: &str) -> Refusal {
    (step.event_type.to_string(), step.from, reason.to_string())
}

/// A type's steps cover every version from its oldest to its newest: an
/// event stored at a version in a hole would stop there, short of the
/// type's current version.
fn check_contiguous(versions: &BTreeMap<u16, &StepShape<'_>>) -> Result<(), Refusal> {
    let mut expected = None;
    for (&from, step) in versions {
        if let Some(want) = expected
            && from != want
        {
            return Err(refuse(
                step,
                &format!("a gap: no step from version {want} to {}", want + 1),
            ));
        }
        expected = Some(from + 1);
    }
    Ok(())
}

/// Each type a step emits, at the step's next version, either is the
/// current version of that type or has a step of its own from there.
fn check_targets(
    step: &StepShape<'_>,
    by_type: &HashMap<&str, BTreeMap<u16, &StepShape<'_>>>,
) -> Result<(), Refusal> {
    let next = step.from + 1;
    for emitted in step.emits {
        let Some(versions) = by_type.get(emitted.as_str()) else {
            continue;
        };
        let (Some(&oldest), Some(&newest)) = (versions.keys().next(), versions.keys().last())
        else {
            continue;
        };
        if next < oldest {
            return Err(refuse(
                step,
                &format!(
                    "a gap: it emits {emitted:?} at version {next}, but {emitted:?} has no \
                     step from {next} (its steps start at {oldest})"
                ),
            ));
        }
        if next > newest + 1 {
            return Err(refuse(
                step,
                &format!(
                    "it emits {emitted:?} at version {next}, past that type's current \
                     version {}",
                    newest + 1
                ),
            ));
        }
    }
    Ok(())
}

/// Steps from `(event_type, version)` to the end of its longest chain.
/// Versions grow along every chain, so the recursion ends; `memo` keeps
/// it linear in the number of steps.
fn chain_length<'a>(
    event_type: &'a str,
    version: u16,
    by_type: &HashMap<&'a str, BTreeMap<u16, &'a StepShape<'a>>>,
    memo: &mut HashMap<(&'a str, u16), usize>,
) -> usize {
    if let Some(&known) = memo.get(&(event_type, version)) {
        return known;
    }
    let Some(step) = by_type.get(event_type).and_then(|v| v.get(&version)) else {
        return 0;
    };
    let mut longest = 0;
    for emitted in step.emits {
        // A type with no steps ends its chain there.
        longest = longest.max(chain_length(emitted.as_str(), version + 1, by_type, memo));
    }
    let length = 1 + longest;
    memo.insert((event_type, version), length);
    length
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape<'a>(t: &'a str, from: u16, emits: &'a [String]) -> StepShape<'a> {
        StepShape {
            event_type: t,
            from,
            emits,
        }
    }

    #[test]
    fn a_whole_chain_with_a_rename_passes() {
        let a = vec!["A".to_string()];
        let b = vec!["B".to_string()];
        let steps = [shape("A", 1, &a), shape("A", 2, &b), shape("B", 3, &b)];
        assert!(check(&steps).is_ok());
    }

    #[test]
    fn gaps_duplicates_and_long_chains_are_refused() {
        let a = vec!["A".to_string()];
        let b = vec!["B".to_string()];
        let gap = check(&[shape("A", 1, &a), shape("A", 3, &a)]).unwrap_err();
        assert_eq!((gap.0.as_str(), gap.1), ("A", 3));
        assert!(gap.2.contains("gap"), "{gap:?}");
        let twice = check(&[shape("A", 1, &a), shape("A", 1, &a)]).unwrap_err();
        assert!(twice.2.contains("twice"), "{twice:?}");
        // A emits B at 2, but B's steps start at 4.
        let into_gap = check(&[shape("A", 1, &b), shape("B", 4, &b)]).unwrap_err();
        assert!(into_gap.2.contains("gap"), "{into_gap:?}");
        let past = check(&[shape("A", 5, &b), shape("B", 1, &b)]).unwrap_err();
        assert!(past.2.contains("past"), "{past:?}");
        let top = check(&[shape("A", u16::MAX, &a)]).unwrap_err();
        assert!(top.2.contains("no next version"), "{top:?}");
        let long: Vec<StepShape<'_>> = (1..=MAX_UPCAST_STEPS as u16 + 1)
            .map(|v| shape("A", v, &a))
            .collect();
        let too_long = check(&long).unwrap_err();
        assert!(too_long.2.contains("more than"), "{too_long:?}");
        assert!(check(&long[1..]).is_ok(), "exactly the limit passes");
    }
}
