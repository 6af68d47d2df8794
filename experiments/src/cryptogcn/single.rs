//! One sample through the party's encrypted-inference service, as a new client meets it (the
//! `single` part of `[task.accuracy]`): the model is served the way `party serve` serves it
//! (`party::server::infer::{ServedModel, InferenceService}`: the 128-bit parameters the party
//! tailors to the model, or a named preset for the comparison run; the party's default limits,
//! flood and plaintext cache) and the client is `he-infer`'s (`party::infer`: parameters rebuilt
//! from the announcement, keys for exactly the announced rotation steps, encryption in the
//! announced layout, `InferClient`), connected by an in-memory channel instead of TLS: the
//! messages, checks and evaluation are those of the binaries. One session, `requests` requests
//! on the same pose (the first fills the plaintext cache, later ones show what it keeps).
//!
//! Security model: that of the service (a semi-honest party, the client holds the secret key;
//! every reply sanitized with the session's public key); both run in one process only to
//! measure.

use crate::config::cryptogcn::SingleSpec;
use anyhow::{ensure, Context, Result};
use mpc::net::Channel;
use ndarray::{ArrayView4, Axis};
use party::infer as client_side;
use party::infer::client::{InferClient, Local};
use party::proto::{decode, ClientRequest, MAX_CONTROL_FRAME};
use party::server::config::{InferenceConfig, ServedModelConfig};
use party::server::infer::{InferenceService, ServedModel};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stgcn::StGcn;

/// What one session measured.
#[derive(Debug, Clone)]
pub(crate) struct SingleFigures {
    /// Metric prefix: `<data>_single` (tailored) or `<data>_single_preset`.
    pub(crate) run: String,
    /// The parameter set's name as announced.
    pub(crate) params: String,
    pub(crate) log_n: u32,
    pub(crate) levels: usize,
    /// Galois keys uploaded (the announced rotation steps).
    pub(crate) galois_keys: usize,
    /// Bytes of the session's key upload (relinearization, Galois and public key).
    pub(crate) key_bytes: u64,
    /// Client seconds to generate and upload the keys.
    pub(crate) keys_s: f64,
    /// Server seconds (forward pass and sanitization) of every request, in order.
    pub(crate) server_s: Vec<f64>,
    /// Plaintext-cache hits and misses of every request, in order.
    pub(crate) cache: Vec<(u64, u64)>,
    /// Largest |decrypted − plaintext logit| over the requests.
    pub(crate) max_logit_error: f64,
    /// Requests whose encrypted top-1 is the plaintext top-1.
    pub(crate) agree: usize,
    /// Standard deviation of the party's noise flood on every logit.
    pub(crate) flood_sd: f64,
    /// Bytes per plaintext-cache entry at the end (0 when nothing was stored).
    pub(crate) cache_entry_bytes: f64,
}

impl SingleFigures {
    /// Server seconds of the last request (the plaintext cache as warm as it gets).
    pub(crate) fn warm_server_s(&self) -> f64 {
        self.server_s.last().copied().unwrap_or(f64::NAN)
    }

    /// Bytes the plaintext cache would need to keep every weight plaintext of one request: the
    /// first request's misses (each a distinct plaintext while the cache had room; an upper
    /// bound once it was full) times the bytes of an entry.
    pub(crate) fn cache_need_bytes(&self) -> f64 {
        self.cache.first().map_or(0.0, |c| c.1 as f64) * self.cache_entry_bytes
    }
}

/// Serves `model` (under the named `preset`, or the tailored parameters) in process and runs
/// one session of `spec.requests` requests on the sample `x` `(C, T, V, M)`; `run` names it.
pub(crate) fn measure(
    run: &str,
    model: &StGcn,
    x: ArrayView4<'_, f64>,
    spec: &SingleSpec,
    preset: Option<&str>,
    cache_mib: usize,
) -> Result<SingleFigures> {
    ensure!(spec.requests >= 1, "single.requests must be at least 1");
    let mut settings = format!("plaintext_cache_mib = {cache_mib}\n");
    if let Some(b) = spec.eval_error_bound {
        settings.push_str(&format!("eval_error_bound = {b:e}\n"));
    }
    let limits: InferenceConfig =
        toml::from_str(&settings).context("the party's default [inference] settings")?;
    let sc = ServedModelConfig {
        name: "model".into(),
        path: "in-memory.json".into(),
        packing: "ama".into(),
        layout: None,
        preset: preset.map(str::to_string),
    };
    let served = ServedModel::new(&sc, model, &limits)?;
    let svc = Arc::new(InferenceService::with_models(
        &limits,
        vec![served],
        Duration::from_secs(600),
    )?);
    let plain = model
        .fold()
        .forward(x.insert_axis(Axis(0)))?
        .row(0)
        .to_vec();
    // Its own runtime on its own thread: the task runner may already be inside one.
    std::thread::scope(|sc| {
        sc.spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(session(run, svc, x, &plain, spec.requests))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the {run} session panicked"))?
    })
}

/// The party's side: answers every inference request on `ch` until the client hangs up.
async fn serve<C: Channel>(svc: Arc<InferenceService>, mut ch: C) -> Result<()> {
    while let Ok(f) = ch.recv_frame(MAX_CONTROL_FRAME).await {
        match decode::<ClientRequest>(&f, MAX_CONTROL_FRAME)? {
            ClientRequest::Inference(r) => svc.handle(&mut ch, "experiment", r).await?,
            other => anyhow::bail!("not an inference request: {other:?}"),
        }
    }
    Ok(())
}

/// The client's side: model info, keys, `requests` inferences of `x`, close.
async fn session(
    run: &str,
    svc: Arc<InferenceService>,
    x: ArrayView4<'_, f64>,
    plain: &[f64],
    requests: usize,
) -> Result<SingleFigures> {
    let (client, server) = mpc::net::mem_pair();
    let model = svc
        .models()
        .into_values()
        .next()
        .context("no served model")?;
    let server = tokio::spawn(serve(svc, server));
    let mut c = InferClient::new(Local(client));
    let info = c.model_info("model").await?;
    let params = client_side::params_for(&info)?;
    let t0 = Instant::now();
    let sk = Arc::new(ckks::KeyGenerator::new(&params).secret_key());
    let keys = client_side::generate_keys(
        &params,
        sk.clone(),
        &info.rotation_keys(),
        info.output_level as usize,
    )?;
    let (galois_keys, key_bytes) = (keys.lens.len() - 1, keys.total_bytes());
    let (session, _) = c.open_session("model", keys).await?;
    let keys_s = t0.elapsed().as_secs_f64();
    let limit = client_side::max_ciphertext_bytes(&params);
    let (mut server_s, mut cache, mut max_err, mut agree) = (vec![], vec![], 0.0f64, 0);
    for _ in 0..requests {
        let before = model.plaintext_cache_stats();
        let cts = client_side::encrypt_input(&info, &params, &sk, x)?;
        let r = c.infer(session, &cts, limit).await?;
        let after = model.plaintext_cache_stats();
        cache.push((after.hits - before.hits, after.misses - before.misses));
        server_s.push(r.eval_seconds);
        let logits = client_side::decrypt_logits(&params, &sk, &r.cts, &r.positions)?;
        ensure!(logits.len() == plain.len(), "{} logits", logits.len());
        for (a, b) in logits.iter().zip(plain) {
            max_err = max_err.max((a - b).abs());
        }
        agree += usize::from(client_side::top_k(&logits, 1) == client_side::top_k(plain, 1));
    }
    let stats = model.plaintext_cache_stats();
    let cache_entry_bytes = stats.bytes as f64 / stats.entries.max(1) as f64;
    c.close_session(session).await?;
    drop(c);
    server.await??;
    Ok(SingleFigures {
        run: run.to_string(),
        params: info.preset.clone(),
        log_n: info.log_n,
        levels: params.max_level(),
        galois_keys,
        key_bytes,
        keys_s,
        server_s,
        cache,
        max_logit_error: max_err,
        agree,
        flood_sd: info.flood_sd,
        cache_entry_bytes,
    })
}
