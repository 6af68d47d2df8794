//! The `--key value` options of the model-training examples (`train_cnn`, `prune_cnn`): a few
//! numeric overrides each, parsed by hand so the examples stay one file each; unknown keys and
//! missing or unparsable values are refused naming the option.

use anyhow::{bail, Context, Result};

/// `--key value` pairs, in order.
pub type Options = Vec<(String, String)>;

/// Positional arguments and `--key value` options; a key outside `allowed` is refused.
pub fn split_options(all: &[String], allowed: &[&str]) -> Result<(Vec<String>, Options)> {
    let (mut args, mut opts) = (Vec::new(), Vec::new());
    let mut it = all.iter();
    while let Some(a) = it.next() {
        if let Some(key) = a.strip_prefix("--") {
            if !allowed.contains(&key) {
                bail!("unknown option --{key} (known: --{})", allowed.join(", --"));
            }
            let value = it
                .next()
                .with_context(|| format!("--{key} needs a value"))?;
            opts.push((key.to_string(), value.clone()));
        } else {
            args.push(a.clone());
        }
    }
    Ok((args, opts))
}

/// The value of option `key`, parsed.
pub fn opt<T: std::str::FromStr>(opts: &[(String, String)], key: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    opts.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.parse().map_err(|e| anyhow::anyhow!("--{key} {v}: {e}")))
        .transpose()
}
