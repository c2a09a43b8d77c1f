//! A small per-user cookie jar, as a browser keeps one: cookies set by responses are
//! sent back to the hosts and paths they belong to until they expire. It honours
//! `Domain`, `Path`, `Max-Age`, `Expires` and `Secure`, which is what real apps rely
//! on (sessions, logins, logouts that expire a cookie).

use std::time::{Duration, SystemTime};

/// Cookies kept per user; more are refused, so a misbehaving target cannot grow a
/// user's memory without bound.
const MAX_COOKIES: usize = 64;
/// Longest `name=value` kept.
const MAX_COOKIE_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    name: Box<str>,
    value: Box<str>,
    /// Lowercase host (host-only) or domain (also matches its subdomains).
    domain: Box<str>,
    host_only: bool,
    path: Box<str>,
    /// `None`: a session cookie, kept for the whole run.
    expires: Option<SystemTime>,
    secure: bool,
}

impl Cookie {
    /// Whether `other` is the same cookie (a later one replaces it), whatever its value.
    fn same(&self, other: &Cookie) -> bool {
        self.name == other.name && self.domain == other.domain && self.path == other.path
    }

    fn matches(&self, host: &str, path: &str, tls: bool) -> bool {
        (!self.secure || tls)
            && domain_matches(host, &self.domain, self.host_only)
            && path_matches(path, &self.path)
    }
}

/// The cookies of one user.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// The value of a live cookie with this name, whatever its host and path.
    #[cfg(test)]
    pub fn get(&self, name: &str) -> Option<&str> {
        let now = SystemTime::now();
        self.cookies
            .iter()
            .find(|c| &*c.name == name && c.expires.is_none_or(|e| e > now))
            .map(|c| &*c.value)
    }

    /// Stores what one `Set-Cookie` header says, for a response from `host` to a
    /// request for `request_path`. Malformed or foreign cookies are ignored, as a
    /// browser ignores them.
    pub fn store(&mut self, host: &str, request_path: &str, header: &[u8], now: SystemTime) {
        let Ok(header) = std::str::from_utf8(header) else {
            return;
        };
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || name.len() + value.len() > MAX_COOKIE_LEN {
            return;
        }
        let host = host.to_ascii_lowercase();
        let mut domain: Option<String> = None;
        let mut path: Option<&str> = None;
        let mut max_age: Option<i64> = None;
        let mut expires: Option<SystemTime> = None;
        let mut secure = false;
        for attr in parts {
            let (key, val) = match attr.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (attr.trim(), ""),
            };
            if key.eq_ignore_ascii_case("domain") {
                let d = val.trim_start_matches('.').to_ascii_lowercase();
                if !d.is_empty() {
                    domain = Some(d);
                }
            } else if key.eq_ignore_ascii_case("path") {
                path = val.starts_with('/').then_some(val);
            } else if key.eq_ignore_ascii_case("max-age") {
                max_age = val.parse().ok().or(max_age);
            } else if key.eq_ignore_ascii_case("expires") {
                expires = httpdate::parse_http_date(val).ok().or(expires);
            } else if key.eq_ignore_ascii_case("secure") {
                secure = true;
            }
        }
        // Max-Age wins over Expires; zero or less deletes the cookie now.
        let expires = match max_age {
            Some(s) if s <= 0 => Some(SystemTime::UNIX_EPOCH),
            // Past the clock's range: as good as forever, kept for the session.
            Some(s) => now.checked_add(Duration::from_secs(s as u64)),
            None => expires,
        };
        let (domain, host_only) = match domain {
            Some(d) if domain_matches(&host, &d, false) => (d, false),
            Some(_) => return,
            None => (host, true),
        };
        let path = path.map_or_else(|| default_path(request_path), str::to_owned);
        self.cookies
            .retain(|c| !(*c.name == *name && *c.domain == *domain && *c.path == *path));
        if expires.is_some_and(|e| e <= now) {
            return;
        }
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.retain(|c| c.expires.is_none_or(|e| e > now));
            if self.cookies.len() >= MAX_COOKIES {
                return;
            }
        }
        self.cookies.push(Cookie {
            name: name.into(),
            value: value.into(),
            domain: domain.into(),
            host_only,
            path: path.into(),
            expires,
            secure,
        });
    }

    /// Takes in what `copy`, a clone of this jar made when it held `base`, learnt
    /// since: the cookies it set or changed, and those it dropped. The requests of a
    /// `parallel` group each send from such a copy; where two set the same cookie,
    /// the copy merged last wins.
    pub fn merge(&mut self, base: &CookieJar, copy: CookieJar) {
        for gone in &base.cookies {
            if !copy.cookies.iter().any(|c| c.same(gone)) {
                self.cookies.retain(|c| !c.same(gone));
            }
        }
        for cookie in copy.cookies {
            if base.cookies.contains(&cookie) {
                continue;
            }
            self.cookies.retain(|c| !c.same(&cookie));
            if self.cookies.len() < MAX_COOKIES {
                self.cookies.push(cookie);
            }
        }
    }

    /// Appends `a=1; b=2` for the cookies that go to this request; returns whether any did.
    pub fn write_header(&mut self, out: &mut Vec<u8>, host: &str, path: &str, tls: bool) -> bool {
        if self.cookies.is_empty() {
            return false;
        }
        let now = SystemTime::now();
        self.cookies.retain(|c| c.expires.is_none_or(|e| e > now));
        let path = path.split(['?', '#']).next().unwrap_or("/");
        let mut any = false;
        for c in self.cookies.iter().filter(|c| c.matches(host, path, tls)) {
            if any {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(c.name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(c.value.as_bytes());
            any = true;
        }
        any
    }
}

/// RFC 6265 domain matching: the host itself, or a subdomain of a non-host-only domain.
fn domain_matches(host: &str, domain: &str, host_only: bool) -> bool {
    if host.eq_ignore_ascii_case(domain) {
        return true;
    }
    if host_only || host.parse::<std::net::IpAddr>().is_ok() || host.len() <= domain.len() {
        return false;
    }
    let (head, tail) = host.split_at(host.len() - domain.len());
    head.ends_with('.') && tail.eq_ignore_ascii_case(domain)
}

/// RFC 6265 path matching.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

/// The directory of the request path, the default cookie path.
fn default_path(request: &str) -> String {
    let path = request.split(['?', '#']).next().unwrap_or("");
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(jar: &mut CookieJar, host: &str, path: &str, tls: bool) -> String {
        let mut out = Vec::new();
        jar.write_header(&mut out, host, path, tls);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cookies_go_back_to_their_host_and_path() {
        let now = SystemTime::now();
        let mut jar = CookieJar::default();
        jar.store("Shop.test", "/login", b"session=abc; Path=/; HttpOnly", now);
        jar.store("shop.test", "/api/x", b"api=1", now);
        jar.store("shop.test", "/", b"tls=1; Secure", now);
        jar.store("shop.test", "/", b"evil=1; Domain=other.test", now);
        jar.store("a.shop.test", "/", b"wide=1; Domain=.shop.test", now);
        assert_eq!(
            header(&mut jar, "shop.test", "/", false),
            "session=abc; wide=1"
        );
        assert_eq!(
            header(&mut jar, "shop.test", "/api/y?q=1", true),
            "session=abc; api=1; tls=1; wide=1"
        );
        assert_eq!(header(&mut jar, "b.shop.test", "/apix", false), "wide=1");
        assert_eq!(header(&mut jar, "other.test", "/", false), "");
    }

    #[test]
    fn cookies_are_replaced_and_expire() {
        let now = SystemTime::now();
        let mut jar = CookieJar::default();
        jar.store("h", "/", b"s=1", now);
        jar.store("h", "/", b"s=2", now);
        assert_eq!(jar.get("s"), Some("2"));
        jar.store("h", "/", b"s=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", now);
        assert!(jar.is_empty(), "an Expires in the past deletes the cookie");
        jar.store(
            "h",
            "/",
            b"t=1; Max-Age=3600; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            now,
        );
        assert_eq!(jar.get("t"), Some("1"), "Max-Age wins over Expires");
        jar.store("h", "/", b"t=1; Max-Age=0", now);
        assert!(jar.is_empty());
        jar.store("h", "/", b"u=1; Max-Age=1", now - Duration::from_secs(5));
        assert_eq!(
            header(&mut jar, "h", "/", false),
            "",
            "an expired cookie is not sent"
        );
        assert!(jar.is_empty());
        jar.store("h", "/", b"garbage", now);
        assert!(jar.is_empty());
        // A Max-Age past the clock's range must not panic: the cookie simply stays.
        jar.store("h", "/", b"v=1; Max-Age=9223372036854775807", now);
        assert_eq!(header(&mut jar, "h", "/", false), "v=1");
    }

    /// What the copies of a `parallel` group learnt comes back: new and changed
    /// cookies, and deletions, while untouched ones stay as they are.
    #[test]
    fn copies_merge_back_what_they_learnt() {
        let now = SystemTime::now();
        let mut jar = CookieJar::default();
        jar.store("shop.test", "/", b"keep=1", now);
        jar.store("shop.test", "/", b"change=1", now);
        jar.store("shop.test", "/", b"drop=1", now);
        let base = jar.clone();
        let mut a = jar.clone();
        a.store("shop.test", "/", b"change=2", now);
        a.store("shop.test", "/", b"new=a", now);
        let mut b = jar.clone();
        b.store("shop.test", "/", b"drop=; Max-Age=0", now);
        jar.merge(&base, a);
        jar.merge(&base, b);
        assert_eq!(
            header(&mut jar, "shop.test", "/", false),
            "keep=1; change=2; new=a"
        );
    }
}
