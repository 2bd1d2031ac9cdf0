//! The JSON hcc reads from the API: only the fields it uses, each tolerant
//! of `null` and of fields it does not know. The whole server object is
//! also kept as raw JSON (the `servers.api` column), so nothing is lost.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    pub id: i64,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub public_net: Option<PublicNet>,
    #[serde(default)]
    pub server_type: Option<Named>,
    #[serde(default)]
    pub datacenter: Option<Datacenter>,
    #[serde(default)]
    pub image: Option<Image>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub protection: Option<serde_json::Value>,
    #[serde(default)]
    pub outgoing_traffic: Option<i64>,
    #[serde(default)]
    pub ingoing_traffic: Option<i64>,
    #[serde(default)]
    pub included_traffic: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PublicNet {
    #[serde(default)]
    pub ipv4: Option<Address>,
    #[serde(default)]
    pub ipv6: Option<Address>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Address {
    pub ip: String,
}

/// Anything referred to by id and name.
#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Datacenter {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub location: Location,
    #[serde(default)]
    pub server_types: Option<DatacenterServerTypes>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DatacenterServerTypes {
    #[serde(default)]
    pub available: Vec<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Location {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub network_zone: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Image {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub os_flavor: String,
    #[serde(default)]
    pub os_version: Option<String>,
    #[serde(default)]
    pub architecture: String,
    /// Snapshots and backups: when it was made, and from which server
    /// (`{"id", "name"}`).
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_from: Option<serde_json::Value>,
    #[serde(default)]
    pub image_size: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerType {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub cores: f64,
    #[serde(default)]
    pub memory: f64,
    #[serde(default)]
    pub disk: f64,
    #[serde(default)]
    pub cpu_type: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub prices: Vec<Price>,
    #[serde(default)]
    pub deprecated: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub location: String,
    pub price_monthly: Amount,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Amount {
    pub gross: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    pub id: i64,
    pub command: String,
    pub status: String,
    #[serde(default)]
    pub progress: i64,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default)]
    pub error: Option<ActionError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ActionError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pagination {
    #[serde(default)]
    pub next_page: Option<u32>,
    #[serde(default)]
    pub last_page: Option<u32>,
    #[serde(default)]
    pub total_entries: Option<u64>,
}

/// The answer to `POST /servers`. Its `Debug` hides the root password.
#[derive(Clone, Deserialize)]
pub struct CreatedServer {
    pub server: serde_json::Value,
    pub action: Action,
    #[serde(default)]
    pub next_actions: Vec<Action>,
    #[serde(default)]
    pub root_password: Option<String>,
}

/// The answer to a server action with a body: the action, and for
/// `rebuild`, `reset_password` and `enable_rescue` a root password, for
/// `create_image` the new image. Its `Debug` hides the password.
#[derive(Clone, Deserialize)]
pub struct ActionAnswer {
    pub action: Action,
    #[serde(default)]
    pub root_password: Option<String>,
    #[serde(default)]
    pub image: Option<serde_json::Value>,
}

impl std::fmt::Debug for ActionAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionAnswer")
            .field("action", &self.action.id)
            .field(
                "root_password",
                &self.root_password.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// An ISO a server may mount.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Iso {
    pub id: i64,
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
}

/// The answer to `request_console`. Its `Debug` hides the credentials.
#[derive(Clone, Deserialize)]
pub struct Console {
    pub wss_url: String,
    pub password: String,
    pub action: Action,
}

impl std::fmt::Debug for CreatedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedServer")
            .field("action", &self.action.id)
            .field(
                "root_password",
                &self.root_password.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("wss_url", &"<redacted>")
            .field("password", &"<redacted>")
            .field("action", &self.action.id)
            .finish()
    }
}
