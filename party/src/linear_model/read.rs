//! Checks a parsed `dyad-model/2` (or `/1`) document field by field and builds the [`LinearModel`]:
//! every refusal names the file, the field, the value and the limit.

use super::{weight_dims, Doc, LinearModel, Preprocessing, FORMAT, FORMAT_V1};
use crate::model_file::{ModelFileError, Result};
use crate::proto::{EntryId, LinearModelMeta, TripleKind};
use crate::server::job::linear_spec::MAX_MLP_WIDTH;
use ndarray::Array2;
use std::path::Path;

/// The refusal of `field = value` in `path`, with the limit it breaks.
fn refuse<T>(
    path: &Path,
    field: &str,
    value: impl ToString,
    limit: impl Into<String>,
) -> Result<T> {
    Err(ModelFileError::Field {
        path: path.to_path_buf(),
        field: field.into(),
        value: value.to_string(),
        limit: limit.into(),
    })
}

pub(super) fn from_doc(path: &Path, doc: Doc) -> Result<LinearModel> {
    if doc.format != FORMAT && doc.format != FORMAT_V1 {
        return refuse(
            path,
            "format",
            format!("{:?}", doc.format),
            format!("must be {FORMAT:?} (or {FORMAT_V1:?})"),
        );
    }
    check_shape(path, &doc)?;
    if mpc::FracBits::new(doc.frac_bits).is_err() {
        return refuse(
            path,
            "frac_bits",
            doc.frac_bits,
            "a fixed-point precision mpc accepts",
        );
    }
    let preprocessing = preprocessing(path, &doc)?;
    let t = &doc.training;
    if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
        return refuse(
            path,
            "training.learning_rate",
            t.learning_rate,
            "a positive number",
        );
    }
    let triples = match t.triples.as_str() {
        "ot" => TripleKind::Ot,
        "dealer" => TripleKind::Dealer,
        "he" => TripleKind::He,
        s => {
            return refuse(
                path,
                "training.triples",
                format!("{s:?}"),
                "ot, dealer or he",
            )
        }
    };
    let id = |field: &str, s: &str| match EntryId::parse(s) {
        Some(id) => Ok(id),
        None => refuse(path, field, format!("{s:?}"), "32 hex digits"),
    };
    let job = id("job", &doc.job)?;
    let dataset_id = id("dataset.id", &doc.dataset.id)?;
    let weights = weights(path, &doc)?;
    let meta = LinearModelMeta {
        kind: doc.kind,
        layers: doc.layers,
        softmax: doc.softmax,
        intercept: doc.intercept,
        learning_rate: t.learning_rate,
        batch_size: t.batch_size,
        epochs: t.epochs,
        schedule_seed: t.schedule_seed.to_string(),
        init_seed: t.init_seed.map(|s| s.to_string()),
        triples,
        dataset: doc.dataset.name,
        dataset_id,
        rows: doc.dataset.rows,
    };
    Ok(LinearModel {
        job,
        meta,
        frac_bits: doc.frac_bits,
        weights,
        preprocessing,
    })
}

/// The folded standardization of a `dyad-model/2` file (null in `/1` files): a job id, raw
/// inputs (`folded`), one column per feature plus the target's for a regression's, a bias row.
fn preprocessing(path: &Path, doc: &Doc) -> Result<Option<Preprocessing>> {
    let Some(v) = doc.preprocessing.as_ref().filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if doc.format == FORMAT_V1 {
        return refuse(
            path,
            "preprocessing",
            v,
            "must be null in dyad-model/1 (reserved)",
        );
    }
    let p: Preprocessing = match serde_json::from_value(v.clone()) {
        Ok(p) => p,
        Err(e) => {
            return refuse(
                path,
                "preprocessing",
                v,
                format!("null or {{standardization, folded, columns, label}}: {e}"),
            )
        }
    };
    if EntryId::parse(&p.standardization).is_none() {
        return refuse(
            path,
            "preprocessing.standardization",
            format!("{:?}", p.standardization),
            "32 hex digits",
        );
    }
    if !p.folded || !doc.intercept {
        return refuse(
            path,
            "preprocessing.folded",
            p.folded,
            "true, with \"intercept\": true (the folded weights have bias rows)",
        );
    }
    let want = doc.features + u64::from(p.label);
    if p.columns.len() as u64 != want || (p.label && doc.kind != "linreg") {
        return refuse(
            path,
            "preprocessing.columns",
            format!("{:?} (label {})", p.columns, p.label),
            format!("{want} columns: the features, and the target only for a linreg"),
        );
    }
    Ok(Some(p))
}

/// Kind, layer widths, features, classes and softmax agree with each other.
fn check_shape(path: &Path, doc: &Doc) -> Result<()> {
    let l = &doc.layers;
    if l.len() < 2 {
        return refuse(
            path,
            "layers",
            format!("{l:?}"),
            "at least [inputs, outputs]",
        );
    }
    if let Some((i, w)) = l
        .iter()
        .enumerate()
        .find(|(_, w)| !(1..=u64::from(MAX_MLP_WIDTH)).contains(*w))
    {
        return refuse(
            path,
            &format!("layers[{i}]"),
            w,
            format!("1..={MAX_MLP_WIDTH}"),
        );
    }
    if doc.features != l[0] {
        return refuse(
            path,
            "features",
            doc.features,
            format!("must equal layers[0] = {}", l[0]),
        );
    }
    let (classes, softmax) = match doc.kind.as_str() {
        "linreg" | "logreg" if l.len() != 2 || l[1] != 1 => {
            return refuse(
                path,
                "layers",
                format!("{l:?}"),
                "a regression has [features, 1]",
            )
        }
        "linreg" => (None, false),
        "logreg" => (Some(2), false),
        "mlp" => (l.last().copied(), true),
        k => return refuse(path, "kind", format!("{k:?}"), "linreg, logreg or mlp"),
    };
    if doc.classes != classes {
        return refuse(
            path,
            "classes",
            format!("{:?}", doc.classes),
            format!("{classes:?} for {}", doc.kind),
        );
    }
    if doc.softmax.is_some() != softmax {
        return refuse(
            path,
            "softmax",
            format!("{:?}", doc.softmax),
            "set exactly for mlp",
        );
    }
    Ok(())
}

/// The weight matrices, inline or from the safetensors side file, of the shapes the layers
/// and intercept make, every value finite.
fn weights(path: &Path, doc: &Doc) -> Result<Vec<Array2<f64>>> {
    let dims = weight_dims(&doc.layers, doc.intercept);
    let ws = match (&doc.weights, &doc.weights_file) {
        (Some(inline), None) => inline_weights(path, inline, &dims)?,
        (None, Some(file)) => side_weights(path, file, &dims)?,
        (w, f) => {
            let value = format!("weights {}, weights_file {}", w.is_some(), f.is_some());
            return refuse(
                path,
                "weights / weights_file",
                value,
                "exactly one of the two",
            );
        }
    };
    for (i, w) in ws.iter().enumerate() {
        if let Some((at, v)) = w.indexed_iter().find(|(_, v)| !v.is_finite()) {
            let field = format!("weights[{i}][{}][{}]", at.0, at.1);
            return refuse(path, &field, v, "a finite number");
        }
    }
    Ok(ws)
}

fn inline_weights(
    path: &Path,
    inline: &[Vec<Vec<f64>>],
    dims: &[(usize, usize)],
) -> Result<Vec<Array2<f64>>> {
    if inline.len() != dims.len() {
        return refuse(
            path,
            "weights",
            format!("{} matrices", inline.len()),
            format!("{} (one per layer)", dims.len()),
        );
    }
    let mut out = Vec::with_capacity(dims.len());
    for (i, (m, &(r, c))) in inline.iter().zip(dims).enumerate() {
        let shape = (m.len(), m.first().map_or(0, Vec::len));
        if shape.0 != r || m.iter().any(|row| row.len() != c) {
            let value = format!("{} × {} (or ragged rows)", shape.0, shape.1);
            return refuse(
                path,
                &format!("weights[{i}]"),
                value,
                format!("{r} × {c} from layers and intercept"),
            );
        }
        let flat: Vec<f64> = m.iter().flatten().copied().collect();
        out.push(Array2::from_shape_vec((r, c), flat).expect("shape checked"));
    }
    Ok(out)
}

fn side_weights(path: &Path, file: &str, dims: &[(usize, usize)]) -> Result<Vec<Array2<f64>>> {
    let plain = Path::new(file).file_name().is_some_and(|n| n == file);
    if !plain || !file.ends_with(".safetensors") {
        return refuse(
            path,
            "weights_file",
            format!("{file:?}"),
            "a NAME.safetensors file name beside the JSON",
        );
    }
    let side = path.with_file_name(file);
    let bytes = std::fs::read(&side).map_err(|source| ModelFileError::Io {
        op: "read",
        path: side.clone(),
        source,
    })?;
    let st = match safetensors::SafeTensors::deserialize(&bytes) {
        Ok(st) => st,
        Err(e) => return refuse(&side, "safetensors", e, "a safetensors file"),
    };
    if st.len() != dims.len() {
        return refuse(
            &side,
            "tensors",
            st.len(),
            format!("{} (layer0 …)", dims.len()),
        );
    }
    let mut out = Vec::with_capacity(dims.len());
    for (i, &(r, c)) in dims.iter().enumerate() {
        let name = format!("layer{i}");
        let Ok(view) = st.tensor(&name) else {
            return refuse(&side, &name, "missing", "one F64 tensor per layer");
        };
        if view.dtype() != safetensors::Dtype::F64 || view.shape() != [r, c] {
            let value = format!("{:?} {:?}", view.dtype(), view.shape());
            return refuse(&side, &name, value, format!("F64 [{r}, {c}]"));
        }
        let v: Vec<f64> = view
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        out.push(Array2::from_shape_vec((r, c), v).expect("shape checked"));
    }
    Ok(out)
}
