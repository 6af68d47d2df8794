//! Log output of Dyad's binaries: `tracing` events to standard error, filtered by `RUST_LOG`.
//!
//! `RUST_LOG` holds comma-separated directives, each a level (`warn`: the default for every
//! target) or `target=level` (`party=debug,quinn=warn`); levels are `off`, `error`, `warn`,
//! `info`, `debug`, `trace`. These are `tracing_subscriber`'s [`Targets`] directives: target
//! prefixes and levels, without `EnvFilter`'s span and field matchers — which would pull a
//! regular-expression engine into every binary's build for a feature no Dyad tool uses.
//! An unreadable `RUST_LOG` is reported on standard error and the binary's default applies.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter `RUST_LOG` describes, or `default` (directives in the same syntax) when it is
/// unset, empty or unreadable (with a note on standard error saying why).
pub fn filter(default: &str) -> Targets {
    let fallback = || default.parse().unwrap_or_default();
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => v.parse().unwrap_or_else(|e| {
            eprintln!(
                "note: RUST_LOG={v:?} is not a list of `level` or `target=level` directives \
                 ({e}); logging at {default:?}"
            );
            fallback()
        }),
        _ => fallback(),
    }
}

/// Sends `tracing` events to standard error, filtered by [`filter`]`(default)`.
pub fn init(default: &str) {
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // A second initialisation (tests that call a binary's main twice) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter(default))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;
    use tracing_subscriber::filter::LevelFilter;

    #[test]
    fn directives_parse_to_levels_per_target() {
        let t: Targets = "warn,party=debug,quinn=off".parse().unwrap();
        assert!(t.would_enable("party::server", &Level::DEBUG));
        assert!(!t.would_enable("party::server", &Level::TRACE));
        assert!(!t.would_enable("quinn", &Level::ERROR));
        assert!(t.would_enable("mpc", &Level::WARN));
        assert!(!t.would_enable("mpc", &Level::INFO));
        assert_eq!(t.default_level(), Some(LevelFilter::WARN));
    }

    #[test]
    fn the_default_applies_without_directives() {
        let t: Targets = "info".parse().unwrap();
        assert!(t.would_enable("anything", &Level::INFO));
        assert!(!t.would_enable("anything", &Level::DEBUG));
        assert!("party=loud".parse::<Targets>().is_err());
    }
}
