//! What every API handler works with and answers: the types the routing
//! table and the handlers share, so that neither imports the other.

use serde_json::Value;

use super::api_error::ApiError;
use super::catalog::Catalog;
use super::clock::Clock;
use super::console::Consoles;
use super::options::Upstream;
use super::rng::Rng;
use super::state::State;

/// What a handler works with: the state under the lock, and the moment
/// the request arrived.
pub struct Ctx<'a> {
    pub state: &'a mut State,
    pub rng: &'a mut Rng,
    pub clock: &'a Clock,
    pub catalog: &'a Catalog,
    pub now_ms: u64,
    /// `ws://HOST:PORT`, where console websockets will be served.
    pub console_base: &'a str,
    /// A real console to hand out instead (`--console-upstream`).
    pub console_upstream: Option<&'a Upstream>,
    /// The live consoles, whose viewers a power action disconnects.
    pub consoles: &'a Consoles,
}

/// A handler's answer: status and JSON body, or an API error.
pub type Answer = Result<(u16, Value), ApiError>;

/// A request body as JSON; a body that does not parse is `json_error`.
pub fn body_json(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::json_error(&e.to_string()))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(ApiError::json_error("the body must be a JSON object"))
    }
}
