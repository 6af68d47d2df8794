//! # procstat — this process's CPU time and resident memory
//!
//! The figures Dyad's benches and experiment configs print beside wall time: on a machine
//! shared with other jobs, CPU seconds do not grow while the process waits for a core, so
//! per-operation costs stay comparable between runs; peak resident memory is what a memory
//! goal is checked against. Everything reads Linux's `/proc/self`; elsewhere every function
//! answers `None` (or `false`), and callers print "not measured".
//!
//! Why hand-written: the maintained crates that read `/proc` (`procfs`, `sysinfo`) parse far
//! more than these four fields and bring their dependencies into every bench; five short
//! readers, once, are enough. The library crates (`mpc`, `ckks`, `hegcn`, …) never open files
//! and do not use this crate; their benches and examples do.

use std::fs;

/// Clock ticks per second of `/proc/self/stat`'s times (`USER_HZ`: 100 on every mainstream
/// Linux configuration).
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of this process so far, all threads, at the 10 ms resolution of
/// `/proc/self/stat` (fields 14 and 15).
pub fn cpu_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_cpu_ticks(&stat).map(|t| t / USER_HZ)
}

/// `utime + stime` in ticks from the text of a `stat` file. The command name (field 2) is in
/// parentheses and may contain spaces and parentheses, so fields are counted after the last
/// `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<f64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut f = rest.split_whitespace().skip(11);
    let utime: f64 = f.next()?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds the threads of this process that are still alive have run, at nanosecond
/// resolution (the sum of `/proc/self/task/*/schedstat`). Threads that already exited are not
/// counted: use it around work done by long-lived threads (a runtime's workers).
pub fn live_threads_cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for t in fs::read_dir("/proc/self/task").ok()? {
        let path = t.ok()?.path().join("schedstat");
        // A thread may exit between listing and reading: skip it.
        if let Ok(s) = fs::read_to_string(path) {
            ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(ns as f64 * 1e-9)
}

/// Resets the peak resident memory that [`peak_rss_bytes`] reports (writes `5` to
/// `/proc/self/clear_refs`); false where that is not possible.
pub fn reset_peak_rss() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident memory in bytes since the process started or the last [`reset_peak_rss`]
/// (`VmHWM`).
pub fn peak_rss_bytes() -> Option<f64> {
    status_bytes("VmHWM:")
}

/// Resident memory in bytes now (`VmRSS`).
pub fn rss_bytes() -> Option<f64> {
    status_bytes("VmRSS:")
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<f64> {
    let s = fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kb(&s, field).map(|kb| kb * 1024.0)
}

fn parse_status_kb(status: &str, field: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let stat = "4242 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 4";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(281.0));
        assert_eq!(parse_stat_cpu_ticks("4242 (x) R 1 2"), None);
    }

    #[test]
    fn status_fields_are_read_in_kilobytes() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM:"), Some(2048.0));
        assert_eq!(parse_status_kb(status, "VmRSS:"), Some(1024.0));
        assert_eq!(parse_status_kb(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_is_measured_on_linux() {
        if cfg!(target_os = "linux") {
            let work: u64 = (0..2_000_000u64).map(|i| i.wrapping_mul(i) >> 3).sum();
            assert!(work > 0);
            assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
            assert!(live_threads_cpu_seconds().is_some_and(|s| s > 0.0));
            let (peak, now) = (peak_rss_bytes().unwrap(), rss_bytes().unwrap());
            assert!(peak >= now && now > 0.0, "{peak} {now}");
        }
    }
}
