//! `POST /api/v1/servers/{name}/adopt` and `.../release`: what `hcc
//! settag` and `hcc deltag` do, for admin keys. They run at once, on this
//! thread's Hetzner client (two requests: the server by name, then its new
//! labels), not through the queue: the queue takes work from whoever may
//! write the spool or the `commands` table, and `queue_verbs` leaves
//! `settag` and `deltag` out so that such a writer cannot make hcc act on
//! a server that is not its own. An admin key may create and delete
//! servers already; adopting one is no more than that.

use serde_json::json;

use super::reply::{self, ApiError, Reply};
use super::request::{Call, json_body, known_server, server_json};
use super::shared::Ctx;

pub fn adopt(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    label(ctx, call, true)
}

pub fn release(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    label(ctx, call, false)
}

/// Adds or removes the managed label; answers the server as it is now,
/// `managed`, and whether anything `changed`.
fn label(ctx: &mut Ctx, call: &Call, add: bool) -> Result<Reply, ApiError> {
    json_body(call.body)?;
    let name = known_server(ctx, call.params[0])?.name;
    let changed = crate::cloud::server::set_managed(ctx.hetzner()?, &name, add)?;
    if changed {
        let key = call.key.as_ref().map_or("api", |k| k.name.as_str());
        let did = if add { "adopted" } else { "released" };
        super::shared::log(&format!("{did} `{name}` (key `{key}`)"));
    }
    let server = known_server(ctx, &name)?;
    Ok(reply::json(
        200,
        &json!({
            "server": server_json(&server),
            "managed": add,
            "changed": changed,
        }),
    ))
}
