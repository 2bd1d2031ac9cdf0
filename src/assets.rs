//! The browser side, embedded at build time (see `build.rs`): the pages in
//! `www/` at `/<name>` and, when `npm ci --prefix noVNC` fetched and
//! bundled it before the build, noVNC as one module at `/novnc/novnc.js`.
//!
//! Each file carries a strong ETag, and the build a hash of every script
//! and style: the pages load them below `/v/<build hash>/` (see
//! `build.rs`), where a URL's content never changes.
//!
//! A lookup is an exact match against that table: nothing here reads the
//! disk, so no request path can reach a file outside the embedded set.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The URL path it is served at, e.g. `/console.js`.
    pub path: &'static str,
    pub body: &'static [u8],
    pub content_type: &'static str,
    /// A strong entity tag, quoted: a hash of `body`.
    pub etag: &'static str,
}

// Defines `ASSETS` (sorted by path), `NOVNC_EMBEDDED` and `BUILD_HASH`.
include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Says what to do when the console pages cannot work.
pub const NOVNC_MISSING: &str =
    "noVNC is not built into this binary: run `npm ci --prefix noVNC`, then rebuild hcc";

/// The embedded file served at this URL path (e.g. "/console.js",
/// "/novnc/novnc.js"), if any. Never touches the disk.
pub fn get(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|asset| asset.path.cmp(path))
        .ok()
        .map(|i| &ASSETS[i])
}

/// Whether noVNC's bundle was present at build time.
pub fn novnc_embedded() -> bool {
    NOVNC_EMBEDDED
}

/// The hash of this build's scripts and styles, the second segment of
/// the versioned paths (`/v/<hash>/console.js`).
pub fn build_hash() -> &'static str {
    BUILD_HASH
}

/// Every embedded file, sorted by path.
pub fn all() -> &'static [Asset] {
    ASSETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
        assert!(ASSETS.iter().all(|a| a.path.starts_with('/')));
    }

    #[test]
    fn pages_are_embedded_with_their_types() {
        let html = "text/html; charset=utf-8";
        let js = "text/javascript; charset=utf-8";
        for (path, content_type) in [
            ("/index.html", html),
            ("/console.html", html),
            ("/l.html", html),
            ("/index.js", js),
            ("/console.js", js),
            ("/l.js", js),
            ("/vnc.js", js),
            ("/open.js", js),
            ("/style.css", "text/css; charset=utf-8"),
        ] {
            let asset = get(path).unwrap_or_else(|| panic!("{path} is not embedded"));
            assert_eq!(asset.path, path);
            assert_eq!(asset.content_type, content_type, "{path}");
            assert!(!asset.body.is_empty(), "{path}");
        }
    }

    #[test]
    fn etags_are_quoted_hashes_and_differ() {
        for asset in ASSETS {
            let hash = asset.etag.trim_matches('"');
            assert_eq!(asset.etag.len(), hash.len() + 2, "{}", asset.path);
            assert_eq!(hash.len(), 32);
            assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(
            get("/console.js").unwrap().etag,
            get("/vnc.js").unwrap().etag
        );
        assert_eq!(build_hash().len(), 16);
    }

    #[test]
    fn pages_load_their_files_below_the_build_hash() {
        let v = format!("v/{}/", build_hash());
        let console = std::str::from_utf8(get("/console.html").unwrap().body).unwrap();
        assert!(
            console.contains(&format!("src=\"../{v}console.js\"")),
            "{console}"
        );
        assert!(console.contains(&format!("href=\"../{v}style.css\"")));
        assert!(console.contains("href=\"data:,\""));
        let landing = std::str::from_utf8(get("/l.html").unwrap().body).unwrap();
        assert!(landing.contains(&format!("src=\"{v}l.js\"")), "{landing}");
    }

    #[test]
    fn body_is_the_file() {
        let on_disk =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/www/console.js")).unwrap();
        assert_eq!(get("/console.js").unwrap().body, on_disk.as_slice());
    }

    #[test]
    fn both_console_pages_carry_the_one_toolbar() {
        let toolbar =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/www/_toolbar.html"))
                .unwrap();
        for page in ["/console.html", "/l.html"] {
            let page = std::str::from_utf8(get(page).unwrap().body).unwrap();
            assert!(!page.contains("hcc-include"), "{page}");
            assert!(page.contains(r#"id="key-ctrl""#), "{page}");
            assert!(page.contains(toolbar.lines().nth(5).unwrap()), "{page}");
        }
        // A part of pages is not a page.
        assert!(get("/_toolbar.html").is_none());
    }

    #[test]
    fn console_page_has_the_data_marker() {
        let page = std::str::from_utf8(get("/console.html").unwrap().body).unwrap();
        assert!(page.contains("<!--hcc-console-data-->"));
    }

    #[test]
    fn novnc_is_embedded_when_fetched() {
        let fetched = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/noVNC/node_modules/.hcc/novnc.js"
        ))
        .is_file();
        assert_eq!(novnc_embedded(), fetched);
        let bundle = get("/novnc/novnc.js");
        assert_eq!(bundle.is_some(), fetched);
        if fetched {
            let bundle = bundle.unwrap();
            assert_eq!(bundle.content_type, "text/javascript; charset=utf-8");
            // One self-contained module: what the pages import, and no
            // import of its own (noVNC's core and pako are inside).
            let text = std::str::from_utf8(bundle.body).unwrap();
            let exports = &text[text.rfind("export").expect("an ES module")..];
            for name in ["RFB", "KeyTable", "keysymdef"] {
                assert!(exports.contains(name), "the bundle exports {name}");
            }
            assert!(!text.contains("import "), "the bundle imports nothing");
            assert!(get("/novnc/LICENSE.txt").is_some());
            // Only the bundle: not the library's modules, docs or manifest.
            assert!(get("/novnc/core/rfb.js").is_none());
            assert!(get("/novnc/package.json").is_none());
            assert_eq!(
                ASSETS
                    .iter()
                    .filter(|a| a.path.starts_with("/novnc/"))
                    .count(),
                2
            );
        } else {
            assert!(ASSETS.iter().all(|a| !a.path.starts_with("/novnc/")));
        }
    }

    #[test]
    fn uplot_is_embedded_with_its_stylesheet_and_licence_when_fetched() {
        let fetched = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/noVNC/node_modules/.hcc/uplot.js"
        ))
        .is_file();
        assert_eq!(get("/uplot/uplot.js").is_some(), fetched);
        if fetched {
            let text = std::str::from_utf8(get("/uplot/uplot.js").unwrap().body).unwrap();
            assert!(text.contains("export"), "an ES module");
            assert!(!text.contains("import "), "the bundle imports nothing");
            let css = get("/uplot/uplot.css").expect("uPlot's stylesheet");
            assert_eq!(css.content_type, "text/css; charset=utf-8");
            assert!(get("/uplot/LICENSE.txt").is_some());
        }
    }

    #[test]
    fn only_exact_paths_match() {
        for path in [
            "",
            "/",
            "console.js",
            "/console.js/",
            "//console.js",
            "/./console.js",
            "/CONSOLE.JS",
            "/console.js?x=1",
            "/console.js%00",
            "/%63onsole.js",
            "/../Cargo.toml",
            "/novnc/../../Cargo.toml",
            "/novnc/core/../../../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/..%2fCargo.toml",
            "/novnc/%2e%2e/%2e%2e/Cargo.toml",
            "/Cargo.toml",
            "/build.rs",
            "/src/assets.rs",
            "/novnc",
            "/novnc/",
            "/novnc/core",
            "/novnc/core/",
            "/www/console.js",
        ] {
            assert!(get(path).is_none(), "{path:?} matched");
        }
    }
}
