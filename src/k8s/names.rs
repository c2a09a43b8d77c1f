//! The values Kubernetes checks on its side, checked here first so that a typo is
//! refused by `swarm k8s` (exit 2) rather than by `kubectl apply` halfway through:
//! object names, the namespace, CPU and memory quantities, the token.

use super::{K8sError, MAX_NAME, Options};

/// An object name prefix from a plan's name: `shop smoke test` → `swarm-shop-smoke-test`,
/// cut to [`MAX_NAME`].
pub fn derive_name(plan_name: &str) -> String {
    let mut slug = String::new();
    for c in plan_name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let mut name = if slug.is_empty() {
        "swarm".to_owned()
    } else if slug.starts_with("swarm") {
        slug.to_owned()
    } else {
        format!("swarm-{slug}")
    };
    name.truncate(MAX_NAME);
    name.trim_end_matches('-').to_owned()
}

/// `--name`: a DNS label starting with a letter (Services need one), short enough
/// for the pods' host names.
pub fn check_name(name: &str) -> Result<(), K8sError> {
    let bad = |why: &str| {
        Err(K8sError::Invalid {
            flag: "--name",
            value: name.to_owned(),
            why: why.to_owned(),
        })
    };
    if name.len() > MAX_NAME {
        return bad(&format!("at most {MAX_NAME} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) || !dns_label(name) {
        return bad("use lowercase letters, digits and `-`, starting with a letter");
    }
    Ok(())
}

/// Lowercase letters, digits and `-`, ending with a letter or digit.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The other options, all at the first one Kubernetes would refuse.
pub(super) fn check_options(opts: &Options) -> Result<(), K8sError> {
    let invalid = |flag: &'static str, value: &str, why: &str| K8sError::Invalid {
        flag,
        value: value.to_owned(),
        why: why.to_owned(),
    };
    if let Some(ns) = &opts.namespace
        && !dns_label(ns)
    {
        return Err(invalid(
            "--namespace",
            ns,
            "use lowercase letters, digits and `-` (at most 63)",
        ));
    }
    if let Some(claim) = &opts.reports_claim
        && !(claim.len() <= 253 && claim.split('.').all(dns_label))
    {
        return Err(invalid(
            "--reports-claim",
            claim,
            "not a PersistentVolumeClaim name (lowercase letters, digits, `-` and `.`)",
        ));
    }
    if opts.image.is_empty()
        || opts
            .image
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            "--image",
            &opts.image,
            "an image reference has no spaces",
        ));
    }
    if opts.workers == 0 {
        return Err(invalid("--workers", "0", "a run needs at least one worker"));
    }
    if let Some(token) = &opts.token
        && (token.is_empty() || token.chars().any(char::is_control))
    {
        // The value itself is a secret: never echoed.
        return Err(invalid("--token", "…", "must be non-empty text"));
    }
    for (flag, value, memory) in [
        ("--coordinator-cpu", &opts.coordinator.cpu, false),
        ("--coordinator-memory", &opts.coordinator.memory, true),
        ("--worker-cpu", &opts.worker.cpu, false),
        ("--worker-memory", &opts.worker.memory, true),
    ] {
        check_quantity(value, memory).map_err(|why| invalid(flag, value, &why))?;
    }
    Ok(())
}

/// A positive Kubernetes quantity: a decimal number and an optional suffix (`m`,
/// `k`, `M`, `G`..., `Ki`, `Mi`, `Gi`...). For memory, `m` means thousandths of a
/// byte, which is never what was meant.
pub fn check_quantity(value: &str, memory: bool) -> Result<(), String> {
    const SUFFIXES: [&str; 14] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let suffix = SUFFIXES
        .iter()
        .find(|s| value.ends_with(*s))
        .copied()
        .unwrap_or_default();
    let number = &value[..value.len() - suffix.len()];
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (number.contains('.') && frac.is_empty())
    {
        return Err("not a quantity: use e.g. 1, 500m, 512Mi or 2Gi".into());
    }
    if !number.chars().any(|c| c.is_ascii_digit() && c != '0') {
        return Err("must be more than zero".into());
    }
    if memory && suffix == "m" {
        return Err(format!(
            "`m` means thousandths of a byte; did you mean {number}Mi?"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_name_becomes_a_dns_label() {
        assert_eq!(derive_name("shop smoke test"), "swarm-shop-smoke-test");
        assert_eq!(derive_name("Swarm: Checkout!"), "swarm-checkout");
        assert_eq!(derive_name("  ***  "), "swarm");
        assert_eq!(derive_name("7 days"), "swarm-7-days");
        let long = derive_name(&"a very long plan name ".repeat(10));
        assert!(long.len() <= MAX_NAME && !long.ends_with('-'));
        assert!(check_name(&long).is_ok());
    }

    #[test]
    fn names_kubernetes_refuses_are_refused() {
        for bad in [
            "",
            "Shop",
            "-shop",
            "shop-",
            "9shop",
            "shop_run",
            &"x".repeat(41),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("shop-run-42").is_ok());
    }

    #[test]
    fn quantities() {
        for good in ["1", "500m", "0.5", "2", "512Mi", "1Gi", "1.5Gi", "1000k"] {
            assert!(check_quantity(good, false).is_ok(), "{good}");
        }
        for bad in [
            "", "0", "0m", "one", "1.", ".5", "1 Gi", "-1", "1Qi", "1.2.3",
        ] {
            assert!(check_quantity(bad, false).is_err(), "{bad}");
        }
        let m = check_quantity("512m", true).unwrap_err();
        assert!(m.contains("512Mi"), "{m}");
        assert!(check_quantity("500m", false).is_ok());
    }
}
