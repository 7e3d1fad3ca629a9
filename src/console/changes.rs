//! Configuration changes, pull-based (the console never dials into a cluster): an operator records
//! a desired change with who asked; the cluster's node agent (`hastack agent apply`, not built
//! yet) fetches the oldest pending one with its cluster's token and reports each step back
//! (plan, commit, verify, rollback, refused). The rows are the audit log: who asked for what,
//! when, and what each node did with it. Changes that need a cluster-wide restart (Corosync
//! timing) are answered with the manual steps and never recorded for pushing.
//!
//! Its tables are its own (`CREATE TABLE IF NOT EXISTS`, additive to schema version 1).

use anyhow::{bail, Result};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::now_us;
use super::server::{Failure, Shared};
use super::store::{Db, Store, Val};
use super::token;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS changes (
    id {id},
    cluster_id BIGINT NOT NULL,
    created_us BIGINT NOT NULL,
    requested_by TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_us BIGINT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS changes_cluster ON changes (cluster_id, id);
CREATE TABLE IF NOT EXISTS change_steps (
    id {id},
    change_id BIGINT NOT NULL,
    time_us BIGINT NOT NULL,
    node TEXT NOT NULL,
    step TEXT NOT NULL,
    ok BIGINT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS change_steps_change ON change_steps (change_id, id);
";

/// What an operator may ask a cluster to change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Spec {
    /// A resource operation's interval and/or timeout (found by name and current interval).
    Operation {
        resource: String,
        operation: String,
        #[serde(default)]
        interval: Option<String>,
        #[serde(default)]
        new_interval: Option<String>,
        #[serde(default)]
        new_timeout: Option<String>,
    },
    /// One instance attribute of a resource.
    Parameter { resource: String, name: String, value: String },
    /// migration-threshold of a resource, or of every resource (rsc_defaults) without one.
    MigrationThreshold {
        #[serde(default)]
        resource: Option<String>,
        value: u32,
    },
    /// The cluster's maintenance-mode property.
    Maintenance { enabled: bool },
    /// Corosync's totem timing: never pushed (it needs every node restarted); refused with the
    /// manual steps.
    CorosyncTiming { name: String, value: String },
}

/// The step a change is in, as the agent reported it.
pub const STEPS: [&str; 5] = ["plan", "commit", "verify", "rollback", "refused"];
/// A change's final states.
pub const FINAL: [&str; 4] = ["applied", "rolled_back", "refused", "failed"];

fn id_like(what: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !ok {
        bail!("{what} {v:?}: expected a CIB id (letters, digits, - _ . :)");
    }
    Ok(())
}

fn duration(what: &str, v: &Option<String>) -> Result<()> {
    if let Some(d) = v {
        if crate::config::validate::duration_ms(d).is_none() {
            bail!("{what} {d:?}: expected a Pacemaker duration such as \"10s\" or \"2min\"");
        }
    }
    Ok(())
}

impl Spec {
    /// Checks the request; a Corosync timing change is refused with the manual steps.
    pub fn validate(&self) -> Result<()> {
        match self {
            Spec::Operation { resource, operation, interval, new_interval, new_timeout } => {
                id_like("resource", resource)?;
                id_like("operation", operation)?;
                duration("interval", interval)?;
                duration("new_interval", new_interval)?;
                duration("new_timeout", new_timeout)?;
                if new_interval.is_none() && new_timeout.is_none() {
                    bail!("an operation change needs new_interval or new_timeout");
                }
            }
            Spec::Parameter { resource, name, value } => {
                id_like("resource", resource)?;
                id_like("name", name)?;
                if value.len() > 4096 || value.contains('\0') {
                    bail!("value: at most 4096 bytes, no NUL");
                }
            }
            Spec::MigrationThreshold { resource, value } => {
                if let Some(r) = resource {
                    id_like("resource", r)?;
                }
                if *value == 0 {
                    bail!("value 0: use 1 or more (0 means INFINITY to Pacemaker; set it explicitly elsewhere)");
                }
            }
            Spec::Maintenance { .. } => {}
            Spec::CorosyncTiming { name, value } => bail!(
                "corosync {name}={value} is never pushed: it needs every node's corosync restarted. Manual steps: \
                 1. edit totem.{name} in /etc/corosync/corosync.conf on one node; 2. `pcs cluster sync` (or copy the \
                 file to every node); 3. `corosync-cfgtool -R` to reload, or in a maintenance window \
                 `pcs cluster stop --all && pcs cluster start --all`; 4. check `corosync-cmapctl | grep totem.{name}` \
                 on each node"
            ),
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub id: i64,
    pub cluster_id: i64,
    pub created_us: i64,
    pub requested_by: String,
    pub spec: Spec,
    /// `requested`, `in_progress`, then one of `FINAL`.
    pub state: String,
    pub updated_us: i64,
    pub detail: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub time_us: i64,
    pub node: String,
    pub step: String,
    pub ok: bool,
    pub detail: String,
}

pub fn create_tables(store: &Store) -> Result<()> {
    store.read(|db| {
        let id = match db.dialect() {
            super::store::Dialect::Sqlite => "INTEGER PRIMARY KEY",
            super::store::Dialect::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        };
        db.batch(&TABLES.replace("{id}", id))
    })
}

fn change_from_row(db: &mut dyn Db, r: &[Val]) -> Result<Change> {
    let id = r[0].int().unwrap_or(0);
    let steps = db
        .query(
            "SELECT time_us, node, step, ok, detail FROM change_steps WHERE change_id = $1 ORDER BY id",
            &[id.into()],
        )?
        .into_iter()
        .map(|s| Step {
            time_us: s[0].int().unwrap_or(0),
            node: s[1].string().unwrap_or_default(),
            step: s[2].string().unwrap_or_default(),
            ok: s[3].int() == Some(1),
            detail: s[4].string().unwrap_or_default(),
        })
        .collect();
    Ok(Change {
        id,
        cluster_id: r[1].int().unwrap_or(0),
        created_us: r[2].int().unwrap_or(0),
        requested_by: r[3].string().unwrap_or_default(),
        spec: serde_json::from_str(r[4].text().unwrap_or("null"))?,
        state: r[5].string().unwrap_or_default(),
        updated_us: r[6].int().unwrap_or(0),
        detail: r[7].string(),
        steps,
    })
}

const COLUMNS: &str = "id, cluster_id, created_us, requested_by, spec, state, updated_us, detail";

pub fn record(store: &Store, cluster_id: i64, requested_by: &str, spec: &Spec, now: i64) -> Result<i64> {
    let text = serde_json::to_string(spec)?;
    store.read(|db| {
        let row = db.query_one(
            "INSERT INTO changes (cluster_id, created_us, requested_by, spec, state, updated_us)
             VALUES ($1, $2, $3, $4, 'requested', $2) RETURNING id",
            &[cluster_id.into(), now.into(), requested_by.into(), text.into()],
        )?;
        Ok(row.and_then(|r| r[0].int()).unwrap_or(0))
    })
}

/// A cluster's changes, newest first, with their steps.
pub fn list(store: &Store, cluster_id: i64, limit: i64) -> Result<Vec<Change>> {
    store.read(|db| {
        let rows = db.query(
            &format!("SELECT {COLUMNS} FROM changes WHERE cluster_id = $1 ORDER BY id DESC LIMIT $2"),
            &[cluster_id.into(), limit.into()],
        )?;
        rows.iter().map(|r| change_from_row(db, r)).collect()
    })
}

/// The oldest change of the cluster not finished yet.
pub fn next_pending(store: &Store, cluster_id: i64) -> Result<Option<Change>> {
    store.read(|db| {
        let row = db.query_one(
            &format!(
                "SELECT {COLUMNS} FROM changes WHERE cluster_id = $1 AND state IN ('requested', 'in_progress')
                 ORDER BY id LIMIT 1"
            ),
            &[cluster_id.into()],
        )?;
        row.map(|r| change_from_row(db, &r)).transpose()
    })
}

/// Records a step a node reported; `final_state` ends the change. Only the change's own cluster
/// may report, and never on a finished change.
pub fn add_step(
    store: &Store,
    cluster_id: i64,
    change_id: i64,
    step: &Step,
    final_state: Option<&str>,
) -> Result<Option<String>> {
    store.read(|db| {
        db.begin()?;
        let row = db.query_one(
            "SELECT state FROM changes WHERE id = $1 AND cluster_id = $2",
            &[change_id.into(), cluster_id.into()],
        )?;
        let Some(state) = row.and_then(|r| r[0].string()) else {
            db.rollback()?;
            return Ok(Some(format!("no change {change_id} for this cluster")));
        };
        if FINAL.contains(&state.as_str()) {
            db.rollback()?;
            return Ok(Some(format!("change {change_id} is already {state}")));
        }
        db.exec(
            "INSERT INTO change_steps (change_id, time_us, node, step, ok, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                change_id.into(),
                step.time_us.into(),
                step.node.as_str().into(),
                step.step.as_str().into(),
                i64::from(step.ok).into(),
                step.detail.as_str().into(),
            ],
        )?;
        let (state, detail) = match final_state {
            Some(f) => (f, Some(step.detail.as_str())),
            None => ("in_progress", None),
        };
        db.exec(
            "UPDATE changes SET state = $2, updated_us = $3, detail = COALESCE($4, detail) WHERE id = $1",
            &[change_id.into(), state.into(), step.time_us.into(), detail.into()],
        )?;
        db.commit()?;
        Ok(None)
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    /// Who asks; the reverse proxy's `X-Remote-User` header wins when present.
    #[serde(default)]
    pub requested_by: Option<String>,
    pub change: Spec,
}

fn unprocessable(message: impl Into<String>) -> Failure {
    Failure { status: StatusCode::UNPROCESSABLE_ENTITY, message: message.into(), json: true }
}

async fn cluster_id(app: &Shared, name: String) -> Result<i64, Failure> {
    let label = name.clone();
    app.blocking(move |s| Ok(s.cluster(&name)?.map(|c| c.id)))
        .await
        .map_err(Failure::json)?
        .ok_or_else(|| Failure::not_found(format!("no cluster {label:?}")).json())
}

/// `POST /api/v1/clusters/{name}/changes`: records a desired change (201 with its id).
pub async fn post_change(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Failure> {
    let req: ChangeRequest =
        serde_json::from_slice(&body).map_err(|e| unprocessable(format!("not a change request: {e}")))?;
    req.change.validate().map_err(|e| unprocessable(format!("{e:#}")))?;
    let who = headers
        .get("x-remote-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(req.requested_by)
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty() && w.len() <= 200)
        .ok_or_else(|| unprocessable("who asks: requested_by (or the proxy's X-Remote-User) is required"))?;
    let id = cluster_id(&app, name).await?;
    let spec = req.change;
    let change = app.blocking(move |s| record(s, id, &who, &spec, now_us())).await.map_err(Failure::json)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": change, "state": "requested" }))).into_response())
}

/// `GET /api/v1/clusters/{name}/changes`: the audit log, newest first.
pub async fn get_changes(State(app): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, Failure> {
    let id = cluster_id(&app, name).await?;
    let list = app.blocking(move |s| list(s, id, 200)).await.map_err(Failure::json)?;
    Ok(Json(json!({ "changes": list })))
}

async fn agent_cluster(app: &Shared, headers: &HeaderMap) -> Result<i64, Failure> {
    let t = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(token::hash)
        .ok_or_else(|| Failure { status: StatusCode::UNAUTHORIZED, message: "no bearer token".into(), json: true })?;
    app.blocking(move |s| s.cluster_by_token(&t)).await.map_err(Failure::json)?.map(|(id, _)| id).ok_or_else(|| {
        Failure { status: StatusCode::UNAUTHORIZED, message: "the token belongs to no cluster".into(), json: true }
    })
}

/// `GET /api/v1/agent/changes/next` (the cluster's token): the oldest unfinished change, or 204.
pub async fn agent_next(State(app): State<Shared>, headers: HeaderMap) -> Result<Response, Failure> {
    let id = agent_cluster(&app, &headers).await?;
    match app.blocking(move |s| next_pending(s, id)).await.map_err(Failure::json)? {
        Some(c) => Ok(Json(json!({ "change": c })).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    pub node: String,
    pub step: String,
    pub ok: bool,
    pub detail: String,
    /// Ends the change: `applied`, `rolled_back`, `refused` or `failed`.
    #[serde(default)]
    pub state: Option<String>,
}

/// `POST /api/v1/agent/changes/{id}/steps` (the cluster's token): one step's result.
pub async fn agent_step(
    State(app): State<Shared>,
    Path(change): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Failure> {
    let cluster = agent_cluster(&app, &headers).await?;
    let r: StepReport = serde_json::from_slice(&body).map_err(|e| unprocessable(format!("not a step report: {e}")))?;
    if !STEPS.contains(&r.step.as_str()) {
        return Err(unprocessable(format!("step {:?}: expected one of {STEPS:?}", r.step)));
    }
    if let Some(s) = r.state.as_deref().filter(|s| !FINAL.contains(s)) {
        return Err(unprocessable(format!("state {s:?}: expected one of {FINAL:?}")));
    }
    let step = Step { time_us: now_us(), node: r.node, step: r.step, ok: r.ok, detail: r.detail };
    let state = r.state;
    let refused =
        app.blocking(move |s| add_step(s, cluster, change, &step, state.as_deref())).await.map_err(Failure::json)?;
    match refused {
        Some(why) => Err(Failure { status: StatusCode::CONFLICT, message: why, json: true }),
        None => Ok((StatusCode::CREATED, Json(json!({ "ok": true }))).into_response()),
    }
}
