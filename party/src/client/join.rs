//! Joining two owners' column uploads (vertical partitioning) as a client: each owner consents
//! to one [`JoinSpec`] at each party over its own connection ([`consent`]), then one of them
//! asks P0 to run it ([`start`]). `party join-propose` and `party join-confirm` are these two
//! steps.
//!
//! Security model: a consent authorizes exactly one spec (datasets, joined name, its owner,
//! the join id) once, at the party that received it: neither party acts on the other's word
//! that an owner consented (see SECURITY.md, "Joining two owners' columns").

use super::{refused, Client, ClientError, Result};
use crate::proto::{ClientRequest, DatasetRef, EntryId, JoinSpec, Reply};

/// Parses `OWNER/NAME`.
///
/// # Errors
/// A message naming the argument when it is not `OWNER/NAME`.
pub fn dataset_ref(s: &str) -> std::result::Result<DatasetRef, String> {
    match s.split_once('/') {
        Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(DatasetRef {
                owner: owner.into(),
                name: name.into(),
            })
        }
        _ => Err(format!("{s:?}: expected OWNER/NAME")),
    }
}

/// Records this client's consent to `spec` at both parties (P0 first).
///
/// # Errors
/// Connection errors, [`ClientError::Refused`] (not an owner of either dataset, a join id
/// proposed with other terms, too many pending joins).
pub async fn consent(p0: &mut Client, p1: &mut Client, spec: &JoinSpec) -> Result<()> {
    for c in [p0, p1] {
        match c.request(&ClientRequest::JoinConsent(spec.clone())).await? {
            Reply::JoinConsented { join } if join == spec.join => {}
            other => return Err(refused(other)),
        }
    }
    Ok(())
}

/// Asks P0 to run the join `join` (both owners consented at both parties); returns the joined
/// dataset's id once it is committed on both parties.
///
/// # Errors
/// Connection errors, [`ClientError::Refused`] naming what is missing or wrong (a consent, a
/// dataset, the first row at which the two key lists differ).
pub async fn start(p0: &mut Client, join: EntryId) -> Result<EntryId> {
    if p0.role() != 0 {
        return Err(ClientError::Unexpected {
            got: format!("a join starts at P0, not at P{}", p0.role()),
        });
    }
    match p0.request(&ClientRequest::JoinStart { join }).await? {
        Reply::Committed { id } if id == join => Ok(id),
        other => Err(refused(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_refs_are_owner_slash_name() {
        let r = dataset_ref("bank/accounts").unwrap();
        assert_eq!((r.owner.as_str(), r.name.as_str()), ("bank", "accounts"));
        for bad in ["bank", "/x", "x/", "a/b/c"] {
            assert!(
                dataset_ref(bad).unwrap_err().contains("OWNER/NAME"),
                "{bad}"
            );
        }
    }
}
