//! Loopback ports for the tests and experiments that start `party serve` or `dealer`
//! processes.
//!
//! A port taken from `bind("127.0.0.1:0")` and released lies in the kernel's ephemeral range,
//! which outgoing connections draw from too: until the server binds it, any connection of a
//! test running beside it (or a second port-0 bind) can take it, and the server exits with
//! "address in use" before it listens. [`free_port`] hands out ports below the ephemeral range
//! instead, each once per process (an atomic counter, the process id picking the start so that
//! test binaries run side by side differ), and checks that TCP and UDP (QUIC) can bind it.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// Lowest port handed out.
const FIRST_PORT: u32 = 10_000;

/// The first port of the ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range` on Linux;
/// 32,768 elsewhere or when it cannot be read).
fn ephemeral_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .filter(|&p: &u32| p > FIRST_PORT + 1_000 && p <= 65_535)
        .unwrap_or(32_768)
}

/// A loopback port that no other call in this process returned, outside the ephemeral range,
/// free for TCP and UDP when checked.
///
/// # Panics
/// When no port of the range is free.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = ephemeral_start() - FIRST_PORT;
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let i = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST_PORT + (start + i) % span) as u16;
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!(
        "no free loopback port in {FIRST_PORT}..{}",
        FIRST_PORT + span
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_outside_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len());
        let eph = ephemeral_start();
        assert!(ports
            .iter()
            .all(|&p| u32::from(p) >= FIRST_PORT && u32::from(p) < eph));
    }
}
