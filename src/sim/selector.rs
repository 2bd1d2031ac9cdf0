//! Label selectors (`label_selector=`), as the API documents them: `k`,
//! `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, joined by
//! commas, all of which must hold.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Has(String),
    Lacks(String),
    Equals(String, String),
    /// True when the key is absent too, as in Kubernetes, whose selector
    /// language Hetzner's follows.
    Differs(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let terms = split_top_level(text)
            .into_iter()
            .map(|t| parse_term(t.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Selector { terms })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Has(k) => labels.contains_key(k),
            Term::Lacks(k) => !labels.contains_key(k),
            Term::Equals(k, v) => labels.get(k) == Some(v),
            Term::Differs(k, v) => labels.get(k) != Some(v),
            Term::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Term::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

/// Splits on the commas that are not inside `( )`.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_term(term: &str) -> Result<Term, String> {
    let bad = || format!("invalid label selector term `{term}`");
    if term.is_empty() {
        return Err(bad());
    }
    for (word, set) in [(" notin ", false), (" in ", true)] {
        if let Some((key, rest)) = term.split_once(word) {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(bad)?;
            let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
            let key = key_of(key.trim()).ok_or_else(bad)?;
            if values.iter().any(|v| !is_value(v)) {
                return Err(bad());
            }
            return Ok(if set {
                Term::In(key, values)
            } else {
                Term::NotIn(key, values)
            });
        }
    }
    if let Some(key) = term.strip_prefix('!') {
        return key_of(key.trim()).map(Term::Lacks).ok_or_else(bad);
    }
    let pair = |sep: &str| {
        term.split_once(sep)
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
    };
    let (make, (key, value)): (fn(String, String) -> Term, _) = if let Some(kv) = pair("!=") {
        (Term::Differs, kv)
    } else if let Some(kv) = pair("==") {
        (Term::Equals, kv)
    } else if let Some(kv) = pair("=") {
        (Term::Equals, kv)
    } else {
        return key_of(term).map(Term::Has).ok_or_else(bad);
    };
    match key_of(&key) {
        Some(key) if is_value(&value) => Ok(make(key, value)),
        _ => Err(bad()),
    }
}

/// A label key: an optional `prefix/` and a name of allowed characters.
fn key_of(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    ok.then(|| key.to_string())
}

fn is_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(selector: &str, pairs: &[(&str, &str)]) -> bool {
        Selector::parse(selector)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(&labels(pairs))
    }

    #[test]
    fn presence_and_absence() {
        assert!(check("managed", &[("managed", "1")]));
        assert!(!check("managed", &[("other", "1")]));
        assert!(check("!managed", &[("other", "1")]));
        assert!(!check("!managed", &[("managed", "")]));
    }

    #[test]
    fn equality_and_inequality() {
        let l = [("env", "prod"), ("managed", "1")];
        assert!(check("env=prod", &l));
        assert!(check("env==prod", &l));
        assert!(!check("env=test", &l));
        assert!(check("env!=test", &l));
        assert!(!check("env!=prod", &l));
        assert!(check("tier!=db", &l), "absent key differs");
        assert!(check("env=prod,managed", &l));
        assert!(!check("env=prod,!managed", &l));
        assert!(check(" env = prod , managed=1 ", &l));
    }

    #[test]
    fn sets() {
        let l = [("env", "staging")];
        assert!(check("env in (testing,staging)", &l));
        assert!(!check("env in (testing,prod)", &l));
        assert!(check("env notin (testing,prod)", &l));
        assert!(check("tier notin (db)", &l));
        assert!(!check("tier in (db)", &l));
        assert!(check("env in (testing, staging),!tier", &l));
    }

    #[test]
    fn prefixed_keys() {
        assert!(check(
            "example.com/my=label",
            &[("example.com/my", "label")]
        ));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "", ",", "a b", "=v", "k=v v", "k in v", "k in (a", "!", "k=(v)",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?}");
        }
    }
}
