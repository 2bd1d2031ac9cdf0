//! The calls hcc makes, typed: servers, their actions, the catalog
//! (server types, images, locations, datacenters). Lists follow
//! `meta.pagination` with `per_page=50`, the API's maximum.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::wire::{self, Action, ActionAnswer, Console, CreatedServer, Server};
use super::{Client, Error, Method};

const PER_PAGE: &str = "50";

/// What `create` sends.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: String,
    pub server_type: String,
    pub image: String,
    pub location: String,
    pub labels: BTreeMap<String, String>,
}

impl Client {
    /// Every item of a paginated list, page after page.
    pub fn list_all(
        &self,
        path: &str,
        key: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, Error> {
        let mut items = Vec::new();
        self.each_page(path, key, query, |page, _| {
            items.extend(page);
            Ok::<(), Error>(())
        })?;
        Ok(items)
    }

    /// Hands each page of a paginated list to `on_page` with the total, if
    /// known, so a caller can store it and let it go: memory stays at one
    /// page whatever the list's length.
    pub fn each_page<E: From<Error>>(
        &self,
        path: &str,
        key: &str,
        query: &[(&str, String)],
        mut on_page: impl FnMut(Vec<Value>, Option<u64>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut page = 1u32;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("page", page.to_string()));
            q.push(("per_page", PER_PAGE.to_string()));
            let body = self.call(Method::Get, path, &q, None)?;
            let Value::Object(mut object) = body else {
                return Err(decode_error(path, "not a JSON object").into());
            };
            let items = match object.remove(key) {
                Some(Value::Array(list)) => list,
                _ => return Err(decode_error(path, &format!("no `{key}` list")).into()),
            };
            let meta: wire::Meta = object
                .remove("meta")
                .and_then(|m| serde_json::from_value(m).ok())
                .unwrap_or_default();
            let pagination = meta.pagination.unwrap_or_default();
            on_page(items, pagination.total_entries)?;
            match pagination.next_page {
                Some(next) if next > page => page = next,
                _ => return Ok(()),
            }
        }
    }

    /// Each page of servers (sorted by id), parsed, with their raw JSON.
    pub fn each_server_page<E: From<Error>>(
        &self,
        mut on_page: impl FnMut(Vec<(Server, Value)>, Option<u64>) -> Result<(), E>,
    ) -> Result<(), E> {
        let query = [("sort", "id:asc".to_string())];
        self.each_page("/servers", "servers", &query, |items, total| {
            let servers = items
                .into_iter()
                .map(|raw| Ok((parse::<Server>("/servers", raw.clone())?, raw)))
                .collect::<Result<Vec<_>, Error>>()?;
            on_page(servers, total)
        })
    }

    /// The server called `name`, or `Error::ServerNotFound`.
    pub fn server_by_name(&self, name: &str) -> Result<(Server, Value), Error> {
        let body = self.call(Method::Get, "/servers", &[("name", name.to_string())], None)?;
        let first = body
            .get("servers")
            .and_then(Value::as_array)
            .and_then(|list| list.first())
            .cloned();
        match first {
            Some(raw) => Ok((parse("/servers", raw.clone())?, raw)),
            None => Err(Error::ServerNotFound(name.to_string())),
        }
    }

    /// The first server matching a label selector (`key=value`), if any.
    pub fn server_by_label(&self, selector: &str) -> Result<Option<(Server, Value)>, Error> {
        let body = self.call(
            Method::Get,
            "/servers",
            &[("label_selector", selector.to_string())],
            None,
        )?;
        let first = body
            .get("servers")
            .and_then(Value::as_array)
            .and_then(|list| list.first())
            .cloned();
        first
            .map(|raw| Ok((parse("/servers", raw.clone())?, raw)))
            .transpose()
    }

    /// One server by id; `Ok(None)` when it is gone.
    pub fn server(&self, id: i64) -> Result<Option<(Server, Value)>, Error> {
        match self.call(Method::Get, &format!("/servers/{id}"), &[], None) {
            Ok(body) => {
                let raw = body.get("server").cloned().unwrap_or(Value::Null);
                Ok(Some((parse("/servers/{id}", raw.clone())?, raw)))
            }
            Err(err) if err.code() == Some("not_found") => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub fn create_server(&self, request: &CreateRequest) -> Result<CreatedServer, Error> {
        let body = json!({
            "name": request.name,
            "server_type": request.server_type,
            "image": request.image,
            "location": request.location,
            "labels": request.labels,
            "start_after_create": true,
        });
        let answer = self.call(Method::Post, "/servers", &[], Some(&body))?;
        parse("POST /servers", answer)
    }

    /// Runs a server action (`poweron`, `shutdown`, ...) and returns it.
    pub fn server_action(&self, id: i64, action: &str) -> Result<Action, Error> {
        let path = format!("/servers/{id}/actions/{action}");
        let answer = self.call(Method::Post, &path, &[], Some(&json!({})))?;
        parse_field(&path, answer, "action")
    }

    /// Runs a server action with a body (`rebuild`, `change_type`, ...):
    /// the action and what else the answer holds (a root password, a new
    /// image).
    pub fn server_action_with(
        &self,
        id: i64,
        action: &str,
        body: &Value,
    ) -> Result<ActionAnswer, Error> {
        let path = format!("/servers/{id}/actions/{action}");
        let answer = self.call(Method::Post, &path, &[], Some(body))?;
        parse(&path, answer)
    }

    /// The ISOs a server may mount (public ones and the project's own).
    pub fn isos(&self) -> Result<Vec<wire::Iso>, Error> {
        self.catalog("/isos", "isos", &[])
    }

    /// The project's snapshots, newest first; with `selector`, those whose
    /// labels match it.
    pub fn snapshots(&self, selector: Option<&str>) -> Result<Vec<wire::Image>, Error> {
        let mut query = vec![
            ("type", "snapshot".to_string()),
            ("sort", "created:desc".to_string()),
        ];
        if let Some(selector) = selector {
            query.push(("label_selector", selector.to_string()));
        }
        self.catalog("/images", "images", &query)
    }

    /// `GET /servers/{id}/metrics`: the time series of `types`
    /// (`cpu`, `disk`, `network`, comma-separated) from `start` to `end`
    /// (RFC 3339), one point per `step` seconds, as Hetzner sends them.
    pub fn server_metrics(
        &self,
        id: i64,
        types: &str,
        start: &str,
        end: &str,
        step: u64,
    ) -> Result<Value, Error> {
        let path = format!("/servers/{id}/metrics");
        let query = [
            ("type", types.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
        ];
        let answer = self.call(Method::Get, &path, &query, None)?;
        match answer.get("metrics") {
            Some(metrics) if metrics.is_object() => Ok(answer),
            _ => Err(decode_error(&path, "no `metrics` object")),
        }
    }

    pub fn request_console(&self, id: i64) -> Result<Console, Error> {
        let path = format!("/servers/{id}/actions/request_console");
        let answer = self.call(Method::Post, &path, &[], Some(&json!({})))?;
        parse(&path, answer)
    }

    /// Replaces a server's labels; returns the updated server.
    pub fn set_labels(
        &self,
        id: i64,
        labels: &BTreeMap<String, String>,
    ) -> Result<(Server, Value), Error> {
        let path = format!("/servers/{id}");
        let answer = self.call(Method::Put, &path, &[], Some(&json!({ "labels": labels })))?;
        let raw = answer.get("server").cloned().unwrap_or(Value::Null);
        Ok((parse(&path, raw.clone())?, raw))
    }

    /// Deletes a server; returns the delete action.
    pub fn delete_server(&self, id: i64) -> Result<Action, Error> {
        let path = format!("/servers/{id}");
        let answer = self.call(Method::Delete, &path, &[], None)?;
        parse_field(&path, answer, "action")
    }

    /// The newest server actions first, one page of 50 per call.
    pub fn recent_server_actions(&self, page: u32) -> Result<(Vec<Action>, bool), Error> {
        let query = [
            ("sort", "id:desc".to_string()),
            ("page", page.to_string()),
            ("per_page", PER_PAGE.to_string()),
        ];
        let answer = self.call(Method::Get, "/servers/actions", &query, None)?;
        let more = answer
            .pointer("/meta/pagination/next_page")
            .and_then(Value::as_u64)
            .is_some();
        Ok((parse_field("/servers/actions", answer, "actions")?, more))
    }

    /// The current state of up to 25 actions in one request.
    pub fn actions(&self, ids: &[i64]) -> Result<Vec<Action>, Error> {
        let query: Vec<(&str, String)> = ids.iter().map(|id| ("id", id.to_string())).collect();
        let answer = self.call(Method::Get, "/actions", &query, None)?;
        parse_field("/actions", answer, "actions")
    }

    pub fn server_types(&self) -> Result<Vec<wire::ServerType>, Error> {
        self.catalog("/server_types", "server_types", &[])
    }

    /// System images, sorted by name (as the original's setup listed them).
    pub fn images(&self) -> Result<Vec<wire::Image>, Error> {
        let query = [
            ("type", "system".to_string()),
            ("sort", "name:asc".to_string()),
        ];
        self.catalog("/images", "images", &query)
    }

    pub fn locations(&self) -> Result<Vec<wire::Location>, Error> {
        self.catalog("/locations", "locations", &[])
    }

    pub fn datacenters(&self) -> Result<Vec<wire::Datacenter>, Error> {
        self.catalog("/datacenters", "datacenters", &[])
    }

    fn catalog<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>, Error> {
        self.list_all(path, key, query)?
            .into_iter()
            .map(|raw| parse(path, raw))
            .collect()
    }
}

fn parse<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| decode_error(what, &e.to_string()))
}

fn parse_field<T: DeserializeOwned>(what: &str, mut value: Value, key: &str) -> Result<T, Error> {
    match value.get_mut(key).map(Value::take) {
        Some(field) => parse(what, field),
        None => Err(decode_error(what, &format!("no `{key}` field"))),
    }
}

fn decode_error(what: &str, detail: &str) -> Error {
    Error::Decode {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}
