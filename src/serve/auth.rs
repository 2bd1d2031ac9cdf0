//! Who may call `hcc serve`: what each route needs of the scope an API key
//! grants, and the key in an `Authorization: Bearer` header. The scopes
//! themselves are the store's (`crate::store::Scope`, as kept in
//! `api_keys`); the secrets (generation, hashing) are `crate::secret`'s.

use crate::store::Scope;

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

impl Need {
    /// Whether a key of `scope` may call a route that needs this.
    pub fn granted_by(self, scope: Scope) -> bool {
        match self {
            Need::Read => true,
            Need::Act => matches!(scope, Scope::Act | Scope::Admin),
            Need::Console => matches!(scope, Scope::Console | Scope::Admin),
            Need::Admin => scope == Scope::Admin,
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
            assert!(Need::Read.granted_by(scope));
            assert_eq!(Scope::from_stored(scope.as_str()), Some(scope));
        }
        assert!(!Need::Act.granted_by(Read) && !Need::Console.granted_by(Read));
        assert!(Need::Act.granted_by(Act) && !Need::Console.granted_by(Act));
        assert!(Need::Console.granted_by(Console) && !Need::Act.granted_by(Console));
        assert!(Need::Act.granted_by(Admin) && Need::Console.granted_by(Admin));
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer hcc_x"), Some("hcc_x"));
        assert_eq!(bearer("bearer  hcc_x "), Some("hcc_x"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
