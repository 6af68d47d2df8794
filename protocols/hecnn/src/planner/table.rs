//! The planner's explanation: the chosen plan stage by stage, and the best plan of each layout
//! and thread count beside it (markdown tables).

use super::Plan;
use ckks::OpCounts;

/// The non-zero operations of a stage, short: rotations with their key-switch parts, products
/// (`over Q·P` for `over_qp` of them), additions, rescales.
fn ops_summary(o: &OpCounts, over_qp: u64) -> String {
    let mut parts = Vec::new();
    if o.rotate > 0 {
        parts.push(format!(
            "{} rot ({} key switches, {} ModUp, {} ModDown)",
            o.rotate, o.key_switch, o.decompose, o.mod_down
        ));
    } else if o.mod_down > 0 {
        parts.push(format!("{} ModDown", o.mod_down));
    }
    if o.mul > 0 {
        parts.push(format!("{} ct×ct + {} relin", o.mul, o.relinearize));
    }
    if o.mul_plain > 0 {
        let qp = if over_qp > 0 { " over Q·P" } else { "" };
        parts.push(format!("{} pt×ct{qp}", o.mul_plain));
    }
    if o.mul_const > 0 {
        parts.push(format!("{} const×ct", o.mul_const));
    }
    for (n, what) in [
        (o.add, "add"),
        (o.rescale, "rescale"),
        (o.drop_level, "drop"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.join(", ")
}

/// Seconds with three significant digits.
fn secs(s: f64) -> String {
    format!("{s:.3e}")
}

impl Plan {
    /// The chosen plan, stage by stage: layer, layout, level, operations, estimated seconds.
    pub fn table(&self) -> String {
        let e = self.chosen();
        let c = &e.candidate;
        let mut t = format!(
            "Chosen for {}: **{}** at {}, {} thread(s): {} s per forward pass, {} image(s) \
             per pass.\n\n| layer | layout | level | operations | estimated s |\n|---|---|---|---|---|\n",
            self.objective.name(),
            c.label(),
            c.preset.name,
            e.threads,
            secs(e.total_s),
            c.images
        );
        for (s, sec) in c.stages.iter().zip(&e.stage_s) {
            t.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                s.layer,
                c.layout.name(),
                s.level,
                ops_summary(&s.ops, s.over_qp),
                secs(*sec)
            ));
        }
        t.push_str(&format!(
            "| sanitize | {} | 0 | {} result ciphertext(s) | {} |\n| **total** | | | {} | **{}** |\n",
            c.layout.name(),
            c.outputs,
            secs(e.sanitize_s),
            ops_summary(&c.op_counts(), c.stages.iter().map(|s| s.over_qp).sum()),
            secs(e.total_s)
        ));
        t
    }

    /// The best estimate of each layout on each thread count, in ranking order, with how many
    /// variants (splits) of the layout were priced.
    pub fn ranking(&self) -> String {
        let mut t = String::from(
            "| rank | plan | preset | threads | variants priced | s per pass | images per pass | images/h |\n|---|---|---|---|---|---|---|---|\n",
        );
        let mut shown: Vec<(&str, usize)> = Vec::new();
        for (rank, e) in self.ranked.iter().enumerate() {
            let key = (e.candidate.layout.name(), e.threads);
            if shown.contains(&key) {
                continue;
            }
            shown.push(key);
            let variants = self
                .ranked
                .iter()
                .filter(|o| o.candidate.layout == e.candidate.layout && o.threads == e.threads)
                .count();
            t.push_str(&format!(
                "| {} | {} | {} | {} | {variants} | {} | {} | {:.0} |\n",
                rank + 1,
                e.candidate.label(),
                e.candidate.preset.name,
                e.threads,
                secs(e.total_s),
                e.candidate.images,
                e.images_per_hour()
            ));
        }
        t
    }
}

impl Plan {
    /// The best `k` variants of `layout` on `threads` threads (its splits or tilings), in
    /// ranking order: the choice among one layout's knobs, e.g. the tile shapes.
    pub fn variants(&self, layout: crate::LayoutKind, threads: usize, k: usize) -> String {
        let mut t = String::from(
            "| rank | plan | images per pass | ciphertexts returned | pt×ct | rotations | levels | s per pass | s per image |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        let rows = self
            .ranked
            .iter()
            .enumerate()
            .filter(|(_, e)| e.candidate.layout == layout && e.threads == threads)
            .take(k);
        for (rank, e) in rows {
            let c = &e.candidate;
            let o = c.op_counts();
            t.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                rank + 1,
                c.label(),
                c.images,
                c.outputs,
                o.mul_plain,
                o.rotate,
                c.stages.first().map_or(0, |s| s.level),
                secs(e.total_s),
                secs(e.total_s / c.images as f64)
            ));
        }
        t
    }
}
