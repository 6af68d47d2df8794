//! [`ClientAided`]: the dealer run by the data owner (SecureML §V), the same material and protocol
//! as [`super::dealer`] under its own trust statement.

use super::dealer::{self, DealerClient};
use super::{Preprocessing, TripleRequest, TripleSource};
use crate::error::Result;
use crate::net::{Channel, MemChannel};
use crate::share::Role;

/// Client-aided triples (SecureML §V): the data owner runs the dealer
/// ([`crate::triples::dealer::run_dealer`]) and each server connects to it with this wrapper. Same
/// material and protocol as the dealer; only the trust statement differs.
#[derive(Debug)]
pub struct ClientAided<C>(DealerClient<C>);

impl<C: Channel> ClientAided<C> {
    /// Connects to the data owner's dealer as `role`.
    pub async fn connect(ch: C, role: Role) -> Result<Self> {
        Ok(Self(DealerClient::connect(ch, role).await?))
    }

    /// Tells the data owner the session is over.
    pub async fn finish(self) -> Result<()> {
        self.0.finish().await
    }
}

impl<C: Channel> TripleSource for ClientAided<C> {
    fn generate(
        &mut self,
        requests: &[TripleRequest],
    ) -> impl std::future::Future<Output = Result<Preprocessing>> + Send {
        self.0.generate(requests)
    }

    fn trust_note(&self) -> &'static str {
        "client-aided (SecureML §V): the data owner generates triples and must not collude with either server"
    }
}

/// A data-owner dealer task on the current runtime and the two servers' client-aided sources.
pub async fn client_aided_in_process() -> Result<(
    ClientAided<MemChannel>,
    ClientAided<MemChannel>,
    tokio::task::JoinHandle<Result<()>>,
)> {
    let (c0, c1, h) = dealer::spawn_in_process().await?;
    Ok((ClientAided(c0), ClientAided(c1), h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring;
    use crate::share::reconstruct;

    fn reqs() -> Vec<TripleRequest> {
        crate::triples::sample_requests()
    }

    #[tokio::test]
    async fn client_aided_is_the_dealer_with_its_own_trust_note() {
        let (mut c0, mut c1, h) = client_aided_in_process().await.unwrap();
        assert!(c0.trust_note().starts_with("client-aided (SecureML §V)"));
        let r = reqs();
        let (p0, p1) = tokio::join!(c0.generate(&r), c1.generate(&r));
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        let (e0, e1) = (
            p0.next_elementwise((4, 4)).unwrap(),
            p1.next_elementwise((4, 4)).unwrap(),
        );
        let a = reconstruct(&e0.a, &e1.a);
        let b = reconstruct(&e0.b, &e1.b);
        assert_eq!(
            reconstruct(&e0.c, &e1.c),
            ring::hadamard(&a.view(), &b.view())
        );
        c0.finish().await.unwrap();
        c1.finish().await.unwrap();
        h.await.unwrap().unwrap();
    }
}
