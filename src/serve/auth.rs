//! Who may call `hcc serve`: the scope an API key grants, what each route
//! needs, and the key in an `Authorization: Bearer` header. The secrets
//! themselves (generation, hashing) are `crate::secret`'s.

use crate::cli::KeyScope;

/// What a route needs of the caller's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any key.
    Read,
    /// A key that may queue actions.
    Act,
    /// A key that may open consoles.
    Console,
    /// An admin key.
    Admin,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Read => "read",
            KeyScope::Act => "act",
            KeyScope::Console => "console",
            KeyScope::Admin => "admin",
        }
    }

    pub fn from_stored(text: &str) -> Option<KeyScope> {
        Some(match text {
            "read" => KeyScope::Read,
            "act" => KeyScope::Act,
            "console" => KeyScope::Console,
            "admin" => KeyScope::Admin,
            _ => return None,
        })
    }

    pub fn allows(self, need: Need) -> bool {
        match need {
            Need::Read => true,
            Need::Act => matches!(self, KeyScope::Act | KeyScope::Admin),
            Need::Console => matches!(self, KeyScope::Console | KeyScope::Admin),
            Need::Admin => self == KeyScope::Admin,
        }
    }
}

/// The key in an `Authorization: Bearer KEY` header.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, key) = header.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty()).then(|| key.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_allow_what_they_name() {
        use KeyScope::*;
        for scope in [Read, Act, Console, Admin] {
            assert!(scope.allows(Need::Read));
            assert_eq!(KeyScope::from_stored(scope.as_str()), Some(scope));
        }
        assert!(!Read.allows(Need::Act) && !Read.allows(Need::Console));
        assert!(Act.allows(Need::Act) && !Act.allows(Need::Console));
        assert!(Console.allows(Need::Console) && !Console.allows(Need::Act));
        assert!(Admin.allows(Need::Act) && Admin.allows(Need::Console));
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer hcc_x"), Some("hcc_x"));
        assert_eq!(bearer("bearer  hcc_x "), Some("hcc_x"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
