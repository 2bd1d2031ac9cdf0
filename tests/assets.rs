//! The embedded files' caching: strong ETags and 304s at their plain paths,
//! immutable URLs below the build hash that every page references.

use crate::support::serve::{Serve, link, raw, serving, serving_with, setup, status_of};
use crate::test::{Env, Sim, eventually};

/// A GET (or another method) with extra header lines; the raw answer.
fn get(serve: &Serve, method: &str, path: &str, headers: &str) -> String {
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    raw(&serve.addr, request.as_bytes())
}

fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next().unwrap_or("");
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The build hash a page's script reference carries: `.../v/HASH/NAME"`.
fn build_hash(page: &str, name: &str) -> String {
    let end = page
        .find(&format!("/{name}\""))
        .unwrap_or_else(|| panic!("no reference to {name} in {page}"));
    let start = page[..end].rfind("v/").expect("a versioned reference") + 2;
    page[start..end].to_string()
}

#[test]
fn embedded_files_carry_strong_etags_and_answer_if_none_match_with_304() {
    let sim = Sim::start(&["--servers", "1"]);
    let env = Env::new();
    setup(&env, &sim);
    let serve = Serve::start(&env, &sim, &[]);

    let first = get(&serve, "GET", "/console.js", "");
    assert_eq!(status_of(&first), 200, "{first}");
    let etag = header(&first, "ETag").expect("an ETag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
        "strong: {etag}"
    );
    assert_eq!(header(&first, "Cache-Control"), Some("no-cache"));
    assert!(body(&first).contains("import"));
    let again = get(&serve, "GET", "/console.js", "");
    assert_eq!(header(&again, "ETag"), Some(etag.as_str()), "stable");
    let other = get(&serve, "GET", "/vnc.js", "");
    assert_ne!(header(&other, "ETag"), Some(etag.as_str()), "per file");

    for matching in [
        etag.clone(),
        "*".to_string(),
        format!("\"nope\", {etag}"),
        format!("W/{etag}"),
    ] {
        let not_modified = get(
            &serve,
            "GET",
            "/console.js",
            &format!("If-None-Match: {matching}\r\n"),
        );
        assert_eq!(status_of(&not_modified), 304, "{matching}: {not_modified}");
        assert_eq!(body(&not_modified), "", "no body");
        assert_eq!(header(&not_modified, "Content-Length"), None);
        assert_eq!(header(&not_modified, "ETag"), Some(etag.as_str()));
        assert_eq!(header(&not_modified, "Cache-Control"), Some("no-cache"));
    }
    let stale = get(&serve, "GET", "/console.js", "If-None-Match: \"0123\"\r\n");
    assert_eq!(status_of(&stale), 200);
    assert_eq!(body(&stale), body(&first));

    let head = get(&serve, "HEAD", "/console.js", "");
    assert_eq!(status_of(&head), 200);
    assert_eq!(header(&head, "ETag"), Some(etag.as_str()));
    assert_eq!(body(&head), "");
    let head = get(
        &serve,
        "HEAD",
        "/console.js",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(status_of(&head), 304);

    // Pages are never stored, whatever the request says.
    let index = get(&serve, "GET", "/", "If-None-Match: *\r\n");
    assert_eq!(status_of(&index), 200);
    assert_eq!(header(&index, "Cache-Control"), Some("no-store"));
    assert_eq!(header(&index, "ETag"), None);
}

#[test]
fn pages_load_their_files_below_the_build_hash_where_they_are_immutable() {
    let (_sim, _env, keys, serve) =
        serving_with(&["--servers", "1"], &[("console_mode", "direct")]);

    let index = body(&get(&serve, "GET", "/", "")).to_string();
    let hash = build_hash(&index, "index.js");
    assert!(
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );
    assert!(
        index.contains(&format!("href=\"v/{hash}/style.css\"")),
        "{index}"
    );
    let l = body(&get(&serve, "GET", "/l.html", "")).to_string();
    assert_eq!(build_hash(&l, "l.js"), hash);

    // The link's landing page and the console page, both at /c/TOKEN:
    // the references climb out of /c/ and stay relative (a path prefix
    // in front of hcc keeps working).
    let path = link(&serve, &keys.console, "srv-00001");
    let landing = serve.request("GET", &path, None, None);
    assert!(
        landing
            .body
            .contains(&format!("src=\"../v/{hash}/open.js\"")),
        "{}",
        landing.body
    );
    let page = serve.request("POST", &path, None, None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(&format!("src=\"../v/{hash}/console.js\"")),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("href=\"../v/{hash}/style.css\""))
    );
    let csp = page.header("Content-Security-Policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self';"), "{csp}");

    let immutable = "public, max-age=31536000, immutable";
    for file in [
        "/console.js",
        "/vnc.js",
        "/open.js",
        "/style.css",
        "/novnc/novnc.js",
    ] {
        let versioned = get(&serve, "GET", &format!("/v/{hash}{file}"), "");
        assert_eq!(status_of(&versioned), 200, "{file}: {versioned}");
        assert_eq!(
            header(&versioned, "Cache-Control"),
            Some(immutable),
            "{file}"
        );
        let plain = get(&serve, "GET", file, "");
        assert_eq!(body(&versioned), body(&plain), "{file}");
        assert_eq!(header(&versioned, "ETag"), header(&plain, "ETag"), "{file}");
        let etag = header(&plain, "ETag").unwrap();
        let again = get(
            &serve,
            "GET",
            &format!("/v/{hash}{file}"),
            &format!("If-None-Match: {etag}\r\n"),
        );
        assert_eq!(status_of(&again), 304, "{file}");
    }

    // Another build's files, pages below the hash and paths that climb
    // out are not found.
    let wrong = format!("/v/{}/console.js", "0".repeat(16));
    for path in [
        wrong.as_str(),
        &format!("/v/{hash}/index.html"),
        &format!("/v/{hash}/l.html"),
        &format!("/v/{hash}/console.html"),
        &format!("/v/{hash}/"),
        &format!("/v/{hash}"),
        &format!("/v/{hash}/../console.js"),
        &format!("/v/{hash}/v/{hash}/console.js"),
        &format!("/v//{hash}/console.js"),
        "/v/console.js",
        "/v/",
    ] {
        let answer = get(&serve, "GET", path, "");
        assert_eq!(status_of(&answer), 404, "{path}: {answer}");
        assert_eq!(header(&answer, "Cache-Control"), Some("no-store"), "{path}");
    }

    // One access-log line per request, 304s included.
    let marker = format!("/v/{hash}/vnc.js");
    let before = serve.log().matches(&marker).count();
    for _ in 0..3 {
        get(&serve, "GET", &marker, "If-None-Match: *\r\n");
    }
    let logged = eventually(std::time::Duration::from_secs(10), || {
        serve.log().matches(&marker).count() == before + 3
    });
    assert!(logged, "{}", serve.log());
}

/// The request lines of `hcc serve`'s log: (method, path, status).
fn requests(log: &str) -> Vec<(String, String, u16)> {
    log.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.strip_prefix("hcc serve: ")?.split(' ').collect();
            let [_, method, path, status, _, "ms"] = fields.as_slice() else {
                return None;
            };
            Some((method.to_string(), path.to_string(), status.parse().ok()?))
        })
        .collect()
}

#[test]
fn a_second_console_in_the_same_browser_costs_a_handful_of_requests() {
    if !crate::support::browser::browser_ready() {
        return;
    }
    let (_sim, _env, keys, serve) = serving(&["--servers", "1"]);
    let first = format!(
        "http://{}{}",
        serve.addr,
        link(&serve, &keys.console, "srv-00001")
    );
    let second = format!(
        "http://{}{}",
        serve.addr,
        link(&serve, &keys.console, "srv-00001")
    );
    let report = crate::support::browser::node(
        "console.mjs",
        &[
            "--url",
            &first,
            "--again",
            &second,
            "--expect-colour",
            crate::browser::SIM_BANNER,
            "--size",
            "640x400",
        ],
        || first.clone(),
    );
    assert_eq!(report["again"]["state"], "connected", "{report}");

    let log = serve.log();
    let all = requests(&log);
    let marker = all
        .iter()
        .position(|(_, path, _)| path == "/hcc-test-again-marker")
        .unwrap_or_else(|| panic!("no marker in the log:\n{log}"));
    let (cold, warm) = (&all[..marker], &all[marker + 1..]);
    let files = |reqs: &[(String, String, u16)]| {
        reqs.iter()
            .filter(|(_, path, _)| !["/c/", "/ws/", "/api/"].iter().any(|p| path.starts_with(p)))
            .count()
    };
    eprintln!(
        "console open: first {} requests ({} files), second {} requests ({} files); \
         second tab connected in {} ms, drawn in {} ms\nsecond: {warm:?}",
        cold.len(),
        files(cold),
        warm.len(),
        files(warm),
        report["again"]["timings"]["connected"],
        report["again"]["timings"]["drawn"],
    );
    // The first open loads the page's modules and noVNC as one bundled
    // module, below the build hash: a handful of files, not noVNC's ~50.
    let index = body(&get(&serve, "GET", "/", "")).to_string();
    let bundle = format!("/v/{}/novnc/novnc.js", build_hash(&index, "index.js"));
    assert_eq!(
        cold.iter().filter(|(_, p, _)| *p == bundle).count(),
        1,
        "{cold:?}"
    );
    assert!(
        cold.iter().all(|(_, p, _)| !p.contains("/novnc/core/")),
        "{cold:?}"
    );
    assert!(cold.len() <= 15, "{cold:?}");
    // The second asks for none of them: only the link, its POST, the
    // console's websocket and the like.
    assert!(warm.len() <= 6, "{warm:?}");
    assert_eq!(files(warm), 0, "{warm:?}");
    assert!(warm.iter().all(|(_, _, status)| *status != 304), "{warm:?}");
}
