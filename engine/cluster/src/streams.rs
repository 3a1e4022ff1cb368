//! The CANDLES and SIGNALS streams: created when missing, verified when
//! present, never changed behind the operator's back.

use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType, Stream};
use async_nats::jetstream::Context;

use crate::subjects::{CANDLES_SUBJECTS, SIGNALS_SUBJECTS};
use crate::{ClusterConfig, ClusterError};

/// The configuration a stream of ours is created with: file storage,
/// limits retention (consumers do not remove messages; several engines or
/// a later one may read them), the oldest dropped at the limits.
fn stream_config(name: &str, subjects: &str, cfg: &ClusterConfig) -> Config {
    Config {
        name: name.to_owned(),
        subjects: vec![subjects.to_owned()],
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        storage: StorageType::File,
        num_replicas: cfg.replicas,
        duplicate_window: cfg.duplicate_window,
        max_age: cfg.max_age,
        // Last message per subject without a round trip to the leader's
        // consumer machinery: ingest reads its resume point this way.
        allow_direct: true,
        ..Config::default()
    }
}

/// Creates or verifies the CANDLES stream (`candles.>`).
///
/// # Errors
/// [`ClusterError::StreamMismatch`] when it exists with other settings;
/// [`ClusterError::JetStream`] when the server refuses or is unreachable.
pub async fn ensure_candles(js: &Context, cfg: &ClusterConfig) -> Result<Stream, ClusterError> {
    ensure(
        js,
        stream_config(&cfg.candles_stream, CANDLES_SUBJECTS, cfg),
    )
    .await
}

/// Creates or verifies the SIGNALS stream (`signals.>`).
///
/// # Errors
/// As [`ensure_candles`].
pub async fn ensure_signals(js: &Context, cfg: &ClusterConfig) -> Result<Stream, ClusterError> {
    ensure(
        js,
        stream_config(&cfg.signals_stream, SIGNALS_SUBJECTS, cfg),
    )
    .await
}

/// Idempotent: several roles start at once and each calls this; the
/// first creates, the others (and every restart) verify.
async fn ensure(js: &Context, want: Config) -> Result<Stream, ClusterError> {
    let name = want.name.clone();
    let stream = match js.get_stream(&name).await {
        Ok(s) => s,
        Err(_) => match js.create_stream(want.clone()).await {
            Ok(s) => {
                tracing::info!(stream = %name, subjects = ?want.subjects, "stream created");
                s
            }
            // Another role created it meanwhile: verify theirs.
            Err(create) => js
                .get_stream(&name)
                .await
                .map_err(|_| ClusterError::js(format!("creating stream {name}"), create))?,
        },
    };
    verify(stream.cached_info().config.clone(), &want)?;
    Ok(stream)
}

/// The settings our guarantees rest on must be as configured.
fn verify(have: Config, want: &Config) -> Result<(), ClusterError> {
    let stream = have.name.clone();
    let err = |field, h: String, w: String| ClusterError::StreamMismatch {
        stream: stream.clone(),
        field,
        have: h,
        want: w,
    };
    if !have.subjects.iter().any(|s| want.subjects.contains(s)) {
        return Err(err(
            "subjects",
            format!("{:?}", have.subjects),
            format!("{:?}", want.subjects),
        ));
    }
    if have.num_replicas.max(1) != want.num_replicas {
        return Err(err(
            "replicas",
            have.num_replicas.to_string(),
            want.num_replicas.to_string(),
        ));
    }
    if have.duplicate_window != want.duplicate_window {
        return Err(err(
            "duplicate_window",
            format!("{:?}", have.duplicate_window),
            format!("{:?}", want.duplicate_window),
        ));
    }
    Ok(())
}
