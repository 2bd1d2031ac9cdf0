//! `hcc apikey add|list|revoke`: the keys billing systems and panels send
//! to `hcc serve`. A key is printed once, at `add`; only its hash is kept.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::{ApikeyCommand, KeyScope};
use crate::error::Error;
use crate::home::Home;
use crate::secret;
use crate::store::{Scope, Store, now};
use crate::table::Table;

pub fn run(home: &Home, cmd: ApikeyCommand) -> Result<ExitCode, Error> {
    let mut store = Store::open(&home.db_path())?;
    match cmd {
        ApikeyCommand::Add { name, scope } => add(&store, &name, stored_scope(scope)),
        ApikeyCommand::List { json } => list(&store, json),
        ApikeyCommand::Revoke { name } => {
            if store.revoke_api_key(&name, now())? {
                eprintln!(
                    "hcc: API key `{name}` revoked, with its unopened console links and the console sessions they opened"
                );
                Ok(ExitCode::SUCCESS)
            } else {
                Err(Error::Failed(format!(
                    "no API key named `{}` (see `hcc apikey list`)",
                    crate::verb::shown(&name)
                )))
            }
        }
    }
}

fn add(store: &Store, name: &str, scope: Scope) -> Result<ExitCode, Error> {
    check_key_name(name)?;
    let key = secret::new_api_key()?;
    if !store.add_api_key(name, scope.as_str(), &secret::hash(&key), now())? {
        return Err(Error::Failed(format!(
            "an API key named `{name}` exists already (revoke it first, or pick another name)"
        )));
    }
    crate::output::print(&format!("{key}\n"))?;
    eprintln!(
        "hcc: API key `{name}` (scope {}) created; it is shown only now, hcc keeps only its hash",
        scope.as_str()
    );
    Ok(ExitCode::SUCCESS)
}

fn list(store: &Store, json_out: bool) -> Result<ExitCode, Error> {
    let keys = store.api_keys()?;
    if json_out {
        let rows: Vec<_> = keys
            .iter()
            .map(|k| {
                json!({"name": k.name, "scope": k.scope, "created_at": k.created_at,
                       "last_used_at": k.last_used_at})
            })
            .collect();
        crate::output::print(&format!("{}\n", json!({ "api_keys": rows })))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["NAME", "SCOPE", "CREATED", "LAST USED"]);
    for k in &keys {
        table.row(vec![
            k.name.clone(),
            k.scope.clone(),
            when(k.created_at),
            k.last_used_at.map(when).unwrap_or_else(|| "never".into()),
        ]);
    }
    crate::output::print(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

/// A key name: what `apikey add` accepts.
fn check_key_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "invalid key name `{}`: up to 64 letters, digits, `-`, `_`, `.`",
            crate::verb::shown(name)
        )))
    }
}

/// `2026-11-23 11:40 UTC`.
fn when(unix_secs: i64) -> String {
    let stamp = crate::timestamp::rfc3339(unix_secs);
    format!(
        "{} UTC",
        stamp.get(..16).unwrap_or(&stamp).replace('T', " ")
    )
}

/// The flag's scope as the store keeps it.
fn stored_scope(scope: KeyScope) -> Scope {
    match scope {
        KeyScope::Read => Scope::Read,
        KeyScope::Act => Scope::Act,
        KeyScope::Console => Scope::Console,
        KeyScope::Admin => Scope::Admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        assert!(check_key_name("whmcs-1.prod").is_ok());
        assert!(check_key_name("a b").is_err());
        assert!(check_key_name("").is_err());
    }

    #[test]
    fn every_key_scope_has_its_server_scope() {
        for (flag, stored) in [
            (KeyScope::Read, "read"),
            (KeyScope::Act, "act"),
            (KeyScope::Console, "console"),
            (KeyScope::Admin, "admin"),
        ] {
            assert_eq!(stored_scope(flag).as_str(), stored);
        }
    }
}
