//! Files served by `hcc serve`, embedded at build time (placeholder until
//! the build step lands).

pub struct Asset {
    pub path: &'static str,
    pub body: &'static [u8],
    pub content_type: &'static str,
}

pub const NOVNC_MISSING: &str =
    "noVNC is not built into this binary: run `npm ci --prefix noVNC`, then rebuild hcc";

pub fn get(_path: &str) -> Option<&'static Asset> {
    None
}

pub fn novnc_embedded() -> bool {
    false
}
