//! Errors a handler answers with, rendered in Hetzner's envelope
//! `{"error": {"code", "message", "details"}}` with the API's own codes.
//!
//! hcloud-go decodes `details` by code and fails on a missing object for
//! `invalid_input` and `uniqueness_error`, so those always carry one.

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "unauthorized", "unable to authenticate")
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(404, "not_found", format!("{what} not found"))
    }

    pub fn json_error(why: &str) -> ApiError {
        ApiError::new(
            400,
            "json_error",
            format!("invalid JSON in request body: {why}"),
        )
    }

    /// A body field failed validation.
    pub fn invalid_input(field: &str, why: &str) -> ApiError {
        ApiError {
            details: Some(json!({"fields": [{"name": field, "messages": [why]}]})),
            ..ApiError::new(
                400,
                "invalid_input",
                format!("invalid input in field '{field}': {why}"),
            )
        }
    }

    /// A query parameter failed validation.
    pub fn invalid_param(name: &str, why: &str) -> ApiError {
        ApiError::invalid_input(name, why)
    }

    pub fn uniqueness(field: &str, what: &str) -> ApiError {
        ApiError {
            details: Some(json!({"fields": [{"name": field}]})),
            ..ApiError::new(409, "uniqueness_error", format!("{what} is already used"))
        }
    }

    pub fn locked() -> ApiError {
        ApiError::new(
            423,
            "locked",
            "server is locked: another action is running, retry when it has finished",
        )
    }

    /// `protected`: the resource's protection forbids the action.
    pub fn protected(what: &str) -> ApiError {
        ApiError::new(403, "protected", format!("{what} is protected"))
    }

    /// `server_not_stopped`: the action requires a stopped server.
    pub fn server_not_stopped() -> ApiError {
        ApiError::new(
            409,
            "server_not_stopped",
            "The action requires a stopped server",
        )
    }

    /// `invalid_server_type`: the type does not fit the server.
    pub fn invalid_server_type(why: &str) -> ApiError {
        ApiError::new(400, "invalid_server_type", why.to_string())
    }

    pub fn forbidden(why: &str) -> ApiError {
        ApiError::new(403, "forbidden", why.to_string())
    }

    pub fn resource_unavailable(what: &str) -> ApiError {
        ApiError::new(412, "resource_unavailable", what.to_string())
    }

    pub fn rate_limited(limit: u32) -> ApiError {
        ApiError::new(
            429,
            "rate_limit_exceeded",
            format!("limit of {limit} requests per hour reached"),
        )
    }

    pub fn server_error() -> ApiError {
        ApiError::new(500, "server_error", "internal server error")
    }

    pub fn timeout() -> ApiError {
        ApiError::new(
            504,
            "timeout",
            "The request could not be answered in time, please retry",
        )
    }

    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(details) = &self.details {
            error["details"] = details.clone();
        }
        json!({ "error": error })
    }
}
