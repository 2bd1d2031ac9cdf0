//! The client-area verbs through the API: a verb's JSON body turned into
//! the queue's words (the same vocabulary as the spool and the CLI), and
//! what a key's scope lets it do.

use serde_json::{Map, Value};

use super::reply::ApiError;
use crate::store::Scope;
use crate::verb::{Clearance, KEEP_DISK, ManageVerb};

/// The body's fields a verb takes, required first: `(field, required)`.
fn fields(verb: ManageVerb) -> &'static [(&'static str, bool)] {
    match verb {
        ManageVerb::Rebuild => &[("image", true)],
        ManageVerb::EnableRescue => &[("type", false)],
        ManageVerb::ChangeType => &[("server_type", true)],
        ManageVerb::SetRdns => &[("ip", true), ("hostname", false)],
        ManageVerb::AttachIso => &[("iso", true)],
        ManageVerb::CreateImage => &[("description", false)],
        _ => &[],
    }
}

/// The words after the server name for `verb`, from the request body.
pub fn words(verb: ManageVerb, body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let mut words = Vec::new();
    for (field, required) in fields(verb) {
        match body.get(*field) {
            None | Some(Value::Null) if *required => {
                return Err(ApiError::bad_request(
                    "bad_field",
                    format!("`{field}` is required"),
                ));
            }
            None | Some(Value::Null) => {}
            Some(Value::String(text)) if *field == "description" => {
                words.extend(text.split_whitespace().map(str::to_string));
            }
            Some(Value::String(text)) => words.push(text.clone()),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "bad_field",
                    format!("`{field}` must be a string"),
                ));
            }
        }
    }
    if verb == ManageVerb::ChangeType {
        match body.get("keep_disk") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => words.push(KEEP_DISK.to_string()),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "bad_field",
                    "`keep_disk` must be a boolean",
                ));
            }
        }
    }
    Ok(words)
}

/// Whether a key of `scope` may run `verb`.
pub fn allowed(verb: ManageVerb, scope: Scope) -> bool {
    match verb.clearance() {
        Clearance::Admin => scope == Scope::Admin,
        Clearance::Act => matches!(scope, Scope::Act | Scope::Admin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn bodies_become_the_queues_words() {
        assert_eq!(
            words(ManageVerb::Rebuild, &body(json!({"image": "debian-12"}))).unwrap(),
            ["debian-12"]
        );
        assert_eq!(
            words(
                ManageVerb::ChangeType,
                &body(json!({"server_type": "cx32", "keep_disk": true}))
            )
            .unwrap(),
            ["cx32", "keep-disk"]
        );
        assert_eq!(
            words(ManageVerb::SetRdns, &body(json!({"ip": "192.0.2.1"}))).unwrap(),
            ["192.0.2.1"]
        );
        assert_eq!(
            words(
                ManageVerb::CreateImage,
                &body(json!({"description": "before  upgrade"}))
            )
            .unwrap(),
            ["before", "upgrade"]
        );
        assert!(
            words(ManageVerb::ResetPassword, &body(json!({})))
                .unwrap()
                .is_empty()
        );
        let err = words(ManageVerb::Rebuild, &body(json!({}))).unwrap_err();
        assert!(err.message.contains("`image` is required"), "{err:?}");
        let err = words(ManageVerb::AttachIso, &body(json!({"iso": 7}))).unwrap_err();
        assert!(err.message.contains("must be a string"), "{err:?}");
    }

    #[test]
    fn act_keys_press_buttons_admin_keys_also_rebuild_resize_and_pay() {
        assert!(allowed(ManageVerb::ResetPassword, Scope::Act));
        assert!(allowed(ManageVerb::SetRdns, Scope::Act));
        assert!(!allowed(ManageVerb::Rebuild, Scope::Act));
        assert!(!allowed(ManageVerb::ChangeType, Scope::Act));
        assert!(!allowed(ManageVerb::EnableBackup, Scope::Act));
        assert!(allowed(ManageVerb::Rebuild, Scope::Admin));
        assert!(!allowed(ManageVerb::ResetPassword, Scope::Read));
        assert!(!allowed(ManageVerb::ResetPassword, Scope::Console));
    }
}
