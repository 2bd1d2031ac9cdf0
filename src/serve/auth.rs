//! Who may call `hcc serve`: the scope an API key grants, what each route
//! needs, and the key in an `Authorization: Bearer` header. The secrets
//! themselves (generation, hashing) are `crate::secret`'s.

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

/// What an API key may do: stored as [`Scope::as_str`] in `api_keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Read servers, commands, status.
    Read,
    /// Read, and queue actions but `create` and `kill`.
    Act,
    /// Read, console credentials and one-time console links.
    Console,
    /// Everything.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Act => "act",
            Scope::Console => "console",
            Scope::Admin => "admin",
        }
    }

    pub fn from_stored(text: &str) -> Option<Scope> {
        Some(match text {
            "read" => Scope::Read,
            "act" => Scope::Act,
            "console" => Scope::Console,
            "admin" => Scope::Admin,
            _ => return None,
        })
    }

    pub fn allows(self, need: Need) -> bool {
        match need {
            Need::Read => true,
            Need::Act => matches!(self, Scope::Act | Scope::Admin),
            Need::Console => matches!(self, Scope::Console | Scope::Admin),
            Need::Admin => self == Scope::Admin,
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
        use Scope::*;
        for scope in [Read, Act, Console, Admin] {
            assert!(scope.allows(Need::Read));
            assert_eq!(Scope::from_stored(scope.as_str()), Some(scope));
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
