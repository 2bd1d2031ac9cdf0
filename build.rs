//! Embeds the browser side into the binary: every regular file in `www/`
//! and, when `npm ci --prefix noVNC` has fetched and bundled it, the one
//! module of noVNC the pages import (`/novnc/novnc.js`, see
//! `noVNC/bundle.js`) with noVNC's licence, and uPlot for the dashboard's
//! graphs (`/uplot/uplot.js`, `/uplot/uplot.css`, its licence). Writes a sorted table to `$OUT_DIR/assets.rs`, read by
//! `src/assets.rs`; the bodies are `include_bytes!` of absolute paths, so
//! the binary alone serves everything.
//!
//! Each file gets a strong ETag (a hash of its bytes), and the build a hash
//! of all scripts and styles: the pages reference them below
//! `v/<build hash>/`, a path that never changes its content, so browsers
//! may keep it for good. The pages are rewritten into `$OUT_DIR/www/` for
//! that, which is what gets embedded of them.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where npm puts the pinned package (see `noVNC/package.json`).
const NOVNC_PACKAGE: &str = "noVNC/node_modules/@novnc/novnc";
/// Where `npm ci`'s postinstall puts the bundle of what the pages use.
const NOVNC_BUNDLE: &str = "noVNC/node_modules/.hcc/novnc.js";
/// uPlot, the dashboard's graphs: pinned beside noVNC, bundled by the same
/// postinstall (`noVNC/uplot.js`); its stylesheet and licence as npm has them.
const UPLOT_PACKAGE: &str = "noVNC/node_modules/uplot";
const UPLOT_BUNDLE: &str = "noVNC/node_modules/.hcc/uplot.js";

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    // A directory is scanned as a whole. `noVNC` exists in every checkout,
    // so `npm ci` creating node_modules below it reruns this script, and a
    // checkout without node_modules does not rebuild on every build.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=www");
    println!("cargo:rerun-if-changed=noVNC");
    for path in [
        "noVNC/package-lock.json",
        NOVNC_PACKAGE,
        NOVNC_BUNDLE,
        UPLOT_PACKAGE,
        UPLOT_BUNDLE,
    ] {
        if root.join(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }

    let mut assets = Vec::new();
    let www = root.join("www");
    for entry in read_dir(&www) {
        if let Some(name) = file_name(&entry)
            && is_regular(&entry)
            && !name.starts_with('.')
            // `_name.html`: a part of pages, not a page (see `includes`).
            && !name.starts_with('_')
            && is_web_file(&name)
        {
            assets.push((format!("/{name}"), entry));
        }
    }

    let bundle = root.join(NOVNC_BUNDLE);
    let embedded = is_regular(&bundle);
    if embedded {
        assets.push(("/novnc/novnc.js".to_string(), bundle));
        let license = root.join(NOVNC_PACKAGE).join("LICENSE.txt");
        if is_regular(&license) {
            assets.push(("/novnc/LICENSE.txt".to_string(), license));
        }
    }

    // Without it the dashboard shows its graphs' numbers as a table.
    let uplot = root.join(UPLOT_BUNDLE);
    if is_regular(&uplot) {
        assets.push(("/uplot/uplot.js".to_string(), uplot));
        for (name, file) in [
            ("uplot.css", "dist/uPlot.min.css"),
            ("LICENSE.txt", "LICENSE"),
        ] {
            let path = root.join(UPLOT_PACKAGE).join(file);
            if is_regular(&path) {
                assets.push((format!("/uplot/{name}"), path));
            }
        }
    }

    assets.sort();
    // The build hash covers every file a page loads (not the pages: they
    // are never cached), so any change to a script gives new URLs.
    let mut build = Sha256::new();
    let mut bodies = Vec::new();
    for (path, file) in &assets {
        let body = fs::read(file).expect("read embedded file");
        if !path.ends_with(".html") {
            build.update(path.as_bytes());
            build.update([0]);
            build.update(Sha256::digest(&body));
        }
        bodies.push(body);
    }
    let build_hash = hex(&build.finalize())[..16].to_string();
    let versioned: Vec<String> = assets
        .iter()
        .map(|(path, _)| path.clone())
        .filter(|path| !path.ends_with(".html"))
        .collect();

    let pages = out.join("www");
    fs::create_dir_all(&pages).expect("create $OUT_DIR/www");
    let mut table = String::from("static ASSETS: &[Asset] = &[\n");
    for ((path, file), body) in assets.iter_mut().zip(bodies) {
        let body = if path.ends_with(".html") {
            let page = String::from_utf8(body).expect("pages are UTF-8");
            let page = includes(&page, &www);
            let page = versioned_refs(&page, &build_hash, &versioned).into_bytes();
            *file = pages.join(&path[1..]);
            fs::write(&*file, &page).expect("write a rewritten page");
            page
        } else {
            body
        };
        let etag = &hex(&Sha256::digest(&body))[..32];
        let file = file.to_str().expect("checked by file_name");
        writeln!(
            table,
            "    Asset {{ path: {path:?}, body: include_bytes!({file:?}), content_type: {:?}, etag: \"\\\"{etag}\\\"\" }},",
            content_type(path)
        )
        .unwrap();
    }
    table.push_str("];\n");
    writeln!(table, "const NOVNC_EMBEDDED: bool = {embedded};").unwrap();
    writeln!(table, "const BUILD_HASH: &str = {build_hash:?};").unwrap();
    fs::write(out.join("assets.rs"), table).expect("write $OUT_DIR/assets.rs");
}

/// The page with each `<!--hcc-include _NAME.html-->` replaced by that
/// file of `www/`: the console toolbar is written once for the two pages
/// that show it. No build step for the browser, and no fetch at run time.
fn includes(page: &str, www: &Path) -> String {
    const OPEN: &str = "<!--hcc-include ";
    let mut out = String::with_capacity(page.len());
    let mut rest = page;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        let end = after.find("-->").expect("an hcc-include comment ends");
        let name = after[..end].trim();
        assert!(
            name.starts_with('_') && !name.contains('/'),
            "hcc-include names a part in www/: `{name}`"
        );
        let part = fs::read_to_string(www.join(name)).expect("read an included part");
        out.push_str(part.trim_end_matches('\n'));
        rest = &after[end + 3..];
    }
    out.push_str(rest);
    out
}

/// The page with each relative `src="..."` and `href="..."` that names an
/// embedded file (not a page, not a link elsewhere) pointing below
/// `v/<build hash>/`, still relative (hcc may be served below a path
/// prefix): `../console.js` becomes `../v/<hash>/console.js`.
fn versioned_refs(page: &str, build_hash: &str, files: &[String]) -> String {
    let mut out = String::with_capacity(page.len() + 64);
    let mut rest = page;
    while let Some(at) = ["src=\"", "href=\""]
        .iter()
        .filter_map(|attr| rest.find(attr).map(|i| i + attr.len()))
        .min()
    {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find('"').expect("an attribute value ends");
        let value = &rest[..end];
        let target = value.trim_start_matches("../").trim_start_matches("./");
        let relative = !value.contains(':') && !value.starts_with('/');
        if relative && files.iter().any(|f| f[1..] == *target) {
            let up = &value[..value.len() - target.len()];
            write!(out, "{up}v/{build_hash}/{target}").unwrap();
        } else {
            out.push_str(value);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds every regular file below `dir` as `prefix/relative/path`.
fn read_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("read_dir entry").path()).collect();
    paths.sort();
    paths
}

/// The entry's name when it can appear in a URL path as is; any other
/// file is left out with a build warning.
fn file_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str();
    let usable = path.to_str().is_some()
        && name.is_some_and(|n| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+@~".contains(&b))
        });
    if !usable {
        println!(
            "cargo:warning=not embedded (unusual file name): {}",
            path.display()
        );
        return None;
    }
    name.map(str::to_string)
}

/// A regular file, not a symlink.
fn is_regular(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

/// What a browser loads: pages, scripts, styles, images. Notes, backups
/// (`x.js~`) and anything else in `www/` stay out of the binary.
fn is_web_file(name: &str) -> bool {
    let ext = name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    matches!(
        ext,
        "html" | "js" | "mjs" | "css" | "svg" | "png" | "ico" | "json"
    )
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}
