//! Moves heavy local computation (matrix products, PRG expansion) off the async executor onto
//! rayon, so that transports driven by the executor (QUIC keeps timers and acknowledgements
//! there) never stall behind a long product.

/// Runs `f` on the rayon pool and awaits its result.
pub async fn offload<T, F>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.expect("rayon task panicked")
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn offload_returns_the_value() {
        assert_eq!(super::offload(|| 6 * 7).await, 42);
    }
}
