//! The query string: percent-decoding, repeated parameters, and the
//! `page`/`per_page` and `sort` conventions every list endpoint shares.

use std::cmp::Ordering;

use super::api_error::ApiError;

#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Query {
        // `+` is a space, as HTML forms and Go's url.Values encode it;
        // invalid escapes are kept as typed.
        let pairs = form_urlencoded::parse(raw.as_bytes())
            .into_owned()
            .collect();
        Query { pairs }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a parameter that may repeat (`status`, `id`, `sort`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `true`/`false` parameters; absent is `default`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(_) => Err(ApiError::invalid_param(name, "must be true or false")),
        }
    }

    /// Every `id` parameter as a number.
    pub fn ids(&self, name: &str) -> Result<Vec<u64>, ApiError> {
        self.all(name)
            .into_iter()
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| ApiError::invalid_param(name, "must be an integer"))
            })
            .collect()
    }

    pub fn page(&self) -> Result<Page, ApiError> {
        Page::from_params(self.get("page"), self.get("per_page"))
    }

    /// The `sort` parameters as (field, descending), each field checked
    /// against `allowed`.
    pub fn sort(&self, allowed: &[&str]) -> Result<Vec<(String, bool)>, ApiError> {
        self.all("sort")
            .into_iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.is_empty())
            .map(|s| {
                let (field, desc) = match s.split_once(':') {
                    Some((f, "asc")) => (f, false),
                    Some((f, "desc")) => (f, true),
                    Some(_) => return Err(ApiError::invalid_param("sort", "invalid direction")),
                    None => (s, false),
                };
                if allowed.contains(&field) {
                    Ok((field.to_string(), desc))
                } else {
                    Err(ApiError::invalid_param(
                        "sort",
                        &format!("cannot sort by `{field}`"),
                    ))
                }
            })
            .collect()
    }
}

/// Sorts `items` by the `sort` keys in order (stable: ties keep the
/// incoming order, which is by id); `cmp` compares two items on one field.
pub fn sort_by<T>(
    items: &mut [T],
    keys: &[(String, bool)],
    cmp: impl Fn(&str, &T, &T) -> Ordering,
) {
    if keys.is_empty() {
        return;
    }
    items.sort_by(|a, b| {
        for (field, desc) in keys {
            let order = cmp(field, a, b);
            let order = if *desc { order.reverse() } else { order };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    });
}

/// One page of a list: `page` counts from 1; `per_page` is 25 unless
/// given, at most 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u64,
    pub per_page: u64,
}

pub const DEFAULT_PER_PAGE: u64 = 25;
pub const MAX_PER_PAGE: u64 = 50;

impl Page {
    pub fn from_params(page: Option<&str>, per_page: Option<&str>) -> Result<Page, ApiError> {
        let number = |name: &str, v: Option<&str>, default: u64| match v {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::invalid_param(name, "must be a positive integer")),
        };
        Ok(Page {
            page: number("page", page, 1)?,
            // Larger pages are cut to the maximum rather than refused.
            per_page: number("per_page", per_page, DEFAULT_PER_PAGE)?.min(MAX_PER_PAGE),
        })
    }

    /// The index range of this page in a list of `total` entries.
    pub fn range(&self, total: usize) -> std::ops::Range<usize> {
        let start = (self.page - 1).saturating_mul(self.per_page);
        let start = usize::try_from(start).unwrap_or(usize::MAX).min(total);
        let end = start.saturating_add(self.per_page as usize).min(total);
        start..end
    }

    /// The last page: 1 for an empty list, as the API reports it.
    pub fn last_page(&self, total: usize) -> u64 {
        (total as u64).div_ceil(self.per_page).max(1)
    }

    pub fn previous_page(&self) -> Option<u64> {
        (self.page > 1).then(|| self.page - 1)
    }

    pub fn next_page(&self, total: usize) -> Option<u64> {
        (self.page < self.last_page(total)).then(|| self.page + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_repeats() {
        let q = Query::parse("name=a%20b&status=running&status=off&label_selector=k%3Dv+x&e=");
        assert_eq!(q.get("name"), Some("a b"));
        assert_eq!(q.all("status"), vec!["running", "off"]);
        assert_eq!(q.get("label_selector"), Some("k=v x"));
        assert_eq!(q.get("e"), Some(""));
        assert_eq!(q.get("missing"), None);
        assert_eq!(Query::parse("x=%zz%4").get("x"), Some("%zz%4"));
    }

    #[test]
    fn sorts() {
        let q = Query::parse("sort=id:desc&sort=name");
        assert_eq!(
            q.sort(&["id", "name"]).unwrap(),
            vec![("id".to_string(), true), ("name".to_string(), false)]
        );
        assert!(q.sort(&["id"]).is_err());
        assert!(Query::parse("sort=id:up").sort(&["id"]).is_err());
    }

    #[test]
    fn sorts_by_several_keys() {
        let mut items = vec![(1, "b"), (2, "a"), (3, "b")];
        let keys = vec![("name".to_string(), false), ("id".to_string(), true)];
        sort_by(&mut items, &keys, |field, x, y| match field {
            "name" => x.1.cmp(y.1),
            _ => x.0.cmp(&y.0),
        });
        assert_eq!(items, vec![(2, "a"), (3, "b"), (1, "b")]);
    }

    #[test]
    fn pages() {
        let p = Page::from_params(None, None).unwrap();
        assert_eq!((p.page, p.per_page), (1, 25));
        assert_eq!(Page::from_params(None, Some("500")).unwrap().per_page, 50);
        assert!(Page::from_params(Some("0"), None).is_err());
        assert!(Page::from_params(Some("x"), None).is_err());

        let p = Page::from_params(Some("3"), Some("50")).unwrap();
        assert_eq!(p.range(120), 100..120);
        assert_eq!(p.last_page(120), 3);
        assert_eq!(p.previous_page(), Some(2));
        assert_eq!(p.next_page(120), None);

        let p = Page::from_params(Some("1"), Some("50")).unwrap();
        assert_eq!(p.range(120), 0..50);
        assert_eq!(p.previous_page(), None);
        assert_eq!(p.next_page(120), Some(2));

        let empty = Page::from_params(None, None).unwrap();
        assert_eq!(empty.range(0), 0..0);
        assert_eq!(empty.last_page(0), 1);
        assert_eq!(empty.next_page(0), None);

        let beyond = Page::from_params(Some("9"), Some("50")).unwrap();
        assert_eq!(beyond.range(120), 120..120);
        let huge = Page::from_params(Some("18446744073709551615"), Some("50")).unwrap();
        assert_eq!(huge.range(120), 120..120);
    }
}
