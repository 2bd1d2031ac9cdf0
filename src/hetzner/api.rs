//! The calls hcc makes, typed: servers, their actions, the catalog
//! (server types, images, locations, datacenters). Lists follow
//! `meta.pagination` with `per_page=50`, the API's maximum.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::wire::{self, Action, ActionAnswer, Console, CreatedServer, Server};
use super::{Client, Error, Method};

const PER_PAGE: &str = "50";

/// One page of servers as a listing hands it on.
pub struct ServerPage {
    /// Each server parsed, with its raw JSON.
    pub servers: Vec<(Server, Value)>,
    /// The list's length, when the API said it.
    pub total: Option<u64>,
    /// When the page was asked for (a row written after it is newer).
    pub asked: Instant,
}

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
            let (items, pagination) = self.page(path, key, query, page)?;
            on_page(items, pagination.total_entries)?;
            match pagination.next_page {
                Some(next) if next > page => page = next,
                _ => return Ok(()),
            }
        }
    }

    /// Page `page` (of 50) of a paginated list: its items and what
    /// `meta.pagination` said.
    fn page(
        &self,
        path: &str,
        key: &str,
        query: &[(&str, String)],
        page: u32,
    ) -> Result<(Vec<Value>, wire::Pagination), Error> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("page", page.to_string()));
        q.push(("per_page", PER_PAGE.to_string()));
        let body = self.call(Method::Get, path, &q, None)?;
        let Value::Object(mut object) = body else {
            return Err(decode_error(path, "not a JSON object"));
        };
        let items = match object.remove(key) {
            Some(Value::Array(list)) => list,
            _ => return Err(decode_error(path, &format!("no `{key}` list"))),
        };
        let meta: wire::Meta = object
            .remove("meta")
            .and_then(|m| serde_json::from_value(m).ok())
            .unwrap_or_default();
        Ok((items, meta.pagination.unwrap_or_default()))
    }

    /// Page `page` of the servers (sorted by id), parsed, with their raw
    /// JSON, and what `meta.pagination` said.
    fn server_page(&self, page: u32) -> Result<(ServerPage, wire::Pagination), Error> {
        let query = [("sort", "id:asc".to_string())];
        let asked = Instant::now();
        let (items, pagination) = self.page("/servers", "servers", &query, page)?;
        let servers = items
            .into_iter()
            .map(|raw| Ok((parse::<Server>("/servers", raw.clone())?, raw)))
            .collect::<Result<Vec<_>, Error>>()?;
        let page = ServerPage {
            servers,
            total: pagination.total_entries,
            asked,
        };
        Ok((page, pagination))
    }

    /// Each page of servers (sorted by id, so that pages stay put while
    /// the listing runs), parsed, with their raw JSON, handed to `on_page`
    /// as it comes. The first page says how many there are; the rest are
    /// fetched with up to `parallel` requests in flight, each on its own
    /// thread with its own client drawing from the same budget (the same
    /// retries), in whatever order they arrive. At most about `2 *
    /// parallel` pages are held at once (a bounded channel). The first
    /// error ends the listing: no page is asked for after it, and it is
    /// returned. Pages that appeared beyond the last one while listing are
    /// followed one after another, as a sequential listing would.
    pub fn each_server_page<E: From<Error>>(
        &self,
        parallel: usize,
        mut on_page: impl FnMut(ServerPage) -> Result<(), E>,
    ) -> Result<(), E> {
        let (first, pagination) = self.server_page(1)?;
        on_page(first)?;
        let mut next = pagination.next_page.filter(|&n| n > 1);
        let last = pagination.last_page.or_else(|| {
            let per_page: u64 = PER_PAGE.parse().unwrap_or(50);
            let total = pagination.total_entries?;
            u32::try_from(total.div_ceil(per_page)).ok()
        });
        if let (Some(from), Some(last)) = (next, last)
            && parallel > 1
            && last > from
        {
            next = self.pages_in_parallel(from, last, parallel, &mut on_page)?;
        }
        while let Some(page) = next {
            let (servers, pagination) = self.server_page(page)?;
            on_page(servers)?;
            next = pagination.next_page.filter(|&n| n > page);
        }
        Ok(())
    }

    /// Pages `from..=last` with up to `parallel` requests in flight; the
    /// page after `last` if `last` named one (servers were added
    /// meanwhile). Without a budget that other threads can share, it asks
    /// for nothing and returns `from`: the caller lists sequentially.
    fn pages_in_parallel<E: From<Error>>(
        &self,
        from: u32,
        last: u32,
        parallel: usize,
        on_page: &mut impl FnMut(ServerPage) -> Result<(), E>,
    ) -> Result<Option<u32>, E> {
        let pages = (last - from + 1) as usize;
        let Some(clients) = (0..parallel.min(pages))
            .map(|_| self.sibling())
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(Some(from));
        };
        let claimed = AtomicU32::new(from);
        let stop = AtomicBool::new(false);
        let (sender, receiver) = mpsc::sync_channel(clients.len());
        std::thread::scope(|scope| {
            let fetchers: Vec<_> = clients
                .into_iter()
                .map(|client| {
                    let sender = sender.clone();
                    let (claimed, stop) = (&claimed, &stop);
                    scope.spawn(move || {
                        while !stop.load(Ordering::SeqCst) {
                            let page = claimed.fetch_add(1, Ordering::SeqCst);
                            if page > last {
                                break;
                            }
                            let answer = client.server_page(page);
                            let failed = answer.is_err();
                            if sender.send((page, answer)).is_err() || failed {
                                break;
                            }
                        }
                        client.requests_sent()
                    })
                })
                .collect();
            drop(sender);
            let mut outcome = Ok(None);
            let mut received = 0;
            for (page, answer) in receiver.iter() {
                let handed = match answer {
                    Ok((servers, pagination)) => {
                        received += 1;
                        if page == last {
                            outcome = Ok(pagination.next_page.filter(|&n| n > last));
                        }
                        on_page(servers)
                    }
                    Err(error) => Err(error.into()),
                };
                if let Err(error) = handed {
                    outcome = Err(error);
                    break;
                }
            }
            // Stop the others: no new page is asked for, and one waiting to
            // hand its page over finds no one taking it.
            stop.store(true, Ordering::SeqCst);
            drop(receiver);
            for fetcher in fetchers {
                self.count_sent(fetcher.join().unwrap_or(0));
            }
            if outcome.is_ok() && received != pages {
                // A fetcher died without a word: the listing is incomplete,
                // and rows must not be removed on its strength.
                return Err(decode_error("/servers", "a page of the listing never came").into());
            }
            outcome
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::hetzner::{Token, budget::Unlimited};

    /// An API of `pages` pages of 50 servers, each answered after 20 ms;
    /// page `broken` answers 400 (not retried).
    struct Api {
        endpoint: String,
        in_flight: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        asked: Arc<Mutex<Vec<u32>>>,
    }

    impl Api {
        fn start(pages: u32, broken: Option<u32>) -> Api {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let api = Api {
                endpoint: format!("http://{}", listener.local_addr().unwrap()),
                in_flight: Arc::default(),
                most: Arc::default(),
                asked: Arc::default(),
            };
            let (in_flight, most, asked) =
                (api.in_flight.clone(), api.most.clone(), api.asked.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (in_flight, most, asked) = (in_flight.clone(), most.clone(), asked.clone());
                    std::thread::spawn(move || {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        let page = answer(stream, pages, broken);
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        asked.lock().unwrap().push(page);
                    });
                }
            });
            api
        }

        fn client(&self) -> Client {
            Client::new(&self.endpoint, Token::new("t".into()), Box::new(Unlimited))
        }
    }

    /// Reads one request, answers it after 20 ms; returns its page.
    fn answer(stream: TcpStream, pages: u32, broken: Option<u32>) -> u32 {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
                break;
            }
        }
        let page: u32 = first
            .split(['?', '&', ' '])
            .find_map(|p| p.strip_prefix("page="))
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        std::thread::sleep(Duration::from_millis(20));
        let (status, body) = if Some(page) == broken {
            (
                "400 Bad Request",
                json!({"error": {"code": "invalid_input", "message": "no"}}),
            )
        } else {
            let servers: Vec<Value> = (1..=50)
                .map(|i| i64::from(page - 1) * 50 + i)
                .map(|id| json!({"id": id, "name": format!("s{id}"), "status": "running"}))
                .collect();
            let next = (page < pages).then_some(page + 1);
            let pagination = json!({"page": page, "next_page": next, "last_page": pages,
                                    "total_entries": pages * 50});
            (
                "200 OK",
                json!({"servers": servers, "meta": {"pagination": pagination}}),
            )
        };
        let body = body.to_string();
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        page
    }

    #[test]
    fn pages_come_with_at_most_parallel_requests_out_each_once() {
        let api = Api::start(12, None);
        let mut ids = Vec::new();
        let mut held = 0;
        api.client()
            .each_server_page(4, |page| {
                held += 1;
                ids.extend(page.servers.iter().map(|(s, _)| s.id));
                assert_eq!(page.total, Some(600));
                Ok::<(), Error>(())
            })
            .unwrap();
        ids.sort();
        assert_eq!(ids, (1..=600).collect::<Vec<i64>>());
        assert_eq!(held, 12);
        let most = api.most.load(Ordering::SeqCst);
        assert!((2..=4).contains(&most), "{most} requests at once");
        assert_eq!(api.asked.lock().unwrap().len(), 12);
    }

    #[test]
    fn one_at_a_time_asks_page_after_page() {
        let api = Api::start(5, None);
        let mut pages = Vec::new();
        api.client()
            .each_server_page(1, |page| {
                pages.push(page.servers[0].0.id / 50 + 1);
                Ok::<(), Error>(())
            })
            .unwrap();
        assert_eq!(pages, [1, 2, 3, 4, 5]);
        assert_eq!(api.most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failing_page_ends_the_listing_with_its_error() {
        let api = Api::start(40, Some(5));
        let client = api.client();
        let result = client.each_server_page(4, |_| Ok::<(), Error>(()));
        assert!(matches!(result, Err(Error::Api { status: 400, .. })));
        // No page is asked for once the failure is known: far fewer than 40.
        std::thread::sleep(Duration::from_millis(100));
        let asked = api.asked.lock().unwrap().len();
        assert!(asked < 20, "{asked} pages asked for");
        assert_eq!(client.requests_sent(), asked as u64);
    }
}
