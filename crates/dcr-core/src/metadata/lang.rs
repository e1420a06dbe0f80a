//! Well-formedness of BCP 47 language tags (RFC 5646 §2.1 syntax; no registry look-up).

/// The grandfathered tags of RFC 5646 §2.1 (irregular and regular), lower case.
const GRANDFATHERED: &[&str] = &[
    "en-gb-oed",
    "i-ami",
    "i-bnn",
    "i-default",
    "i-enochian",
    "i-hak",
    "i-klingon",
    "i-lux",
    "i-mingo",
    "i-navajo",
    "i-pwn",
    "i-tao",
    "i-tay",
    "i-tsu",
    "sgn-be-fr",
    "sgn-be-nl",
    "sgn-ch-de",
    "art-lojban",
    "cel-gaulish",
    "no-bok",
    "no-nyn",
    "zh-guoyu",
    "zh-hakka",
    "zh-min",
    "zh-min-nan",
    "zh-xiang",
];

fn alpha(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic())
}

fn alnum(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_variant(s: &str) -> bool {
    alnum(s, 5, 8)
        || (s.len() == 4 && s.as_bytes().first().is_some_and(u8::is_ascii_digit) && alnum(s, 4, 4))
}

/// Whether the sub-tags from `i` on form a private-use sequence `x-...`.
fn private_use(parts: &[&str]) -> bool {
    parts.len() >= 2
        && parts.first().is_some_and(|p| p.eq_ignore_ascii_case("x"))
        && parts.iter().skip(1).all(|p| alnum(p, 1, 8))
}

/// Whether `tag` is a well-formed BCP 47 language tag (RFC 5646 §2.1), case-insensitively.
pub fn is_well_formed(tag: &str) -> bool {
    if tag.is_empty() || tag.len() > 255 {
        return false;
    }
    if GRANDFATHERED.iter().any(|g| g.eq_ignore_ascii_case(tag)) {
        return true;
    }
    let parts: Vec<&str> = tag.split('-').collect();
    if private_use(&parts) {
        return true;
    }
    let mut i = 0;
    let Some(language) = parts.first() else {
        return false;
    };
    // language = 2*3ALPHA ["-" extlang] / 4ALPHA / 5*8ALPHA
    if alpha(language, 2, 3) {
        i += 1;
        // extlang = 3ALPHA *2("-" 3ALPHA)
        let mut ext = 0;
        while ext < 3 && parts.get(i).is_some_and(|p| alpha(p, 3, 3)) {
            i += 1;
            ext += 1;
        }
    } else if alpha(language, 4, 8) {
        i += 1;
    } else {
        return false;
    }
    // script = 4ALPHA
    if parts.get(i).is_some_and(|p| alpha(p, 4, 4)) {
        i += 1;
    }
    // region = 2ALPHA / 3DIGIT
    if parts.get(i).is_some_and(|p| alpha(p, 2, 2) || digits(p, 3)) {
        i += 1;
    }
    // *("-" variant), no repeats
    let mut variants: Vec<String> = Vec::new();
    while let Some(p) = parts.get(i).filter(|p| is_variant(p)) {
        let lower = p.to_ascii_lowercase();
        if variants.contains(&lower) {
            return false;
        }
        variants.push(lower);
        i += 1;
    }
    // *("-" extension): singleton 1*("-" (2*8alphanum)), no repeated singleton
    let mut singletons: Vec<u8> = Vec::new();
    while let Some(p) = parts.get(i) {
        if p.len() != 1 || p.eq_ignore_ascii_case("x") {
            break;
        }
        let Some(s) = p.bytes().next().filter(u8::is_ascii_alphanumeric) else {
            return false;
        };
        let s = s.to_ascii_lowercase();
        if singletons.contains(&s) {
            return false;
        }
        singletons.push(s);
        i += 1;
        let start = i;
        while parts.get(i).is_some_and(|p| alnum(p, 2, 8)) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    // ["-" privateuse]
    let rest = parts.get(i..).unwrap_or_default();
    rest.is_empty() || private_use(rest)
}

#[cfg(test)]
mod tests {
    use super::is_well_formed;

    #[test]
    fn well_formed_tags() {
        for tag in [
            "de",
            "fr",
            "ja-Jpan-JP",
            "en-US",
            "zh-Hant",
            "sr-Latn-RS",
            "es-419",
            "de-CH-1901",
            "sl-rozaj-biske",
            "en-a-bbb-x-a-ccc",
            "x-whatever",
            "i-klingon",
            "zh-yue-HK",
            "hy-Latn-IT-arevela",
            "EN-us",
        ] {
            assert!(is_well_formed(tag), "{tag}");
        }
    }

    #[test]
    fn malformed_tags() {
        for tag in [
            "",
            "e",
            "english-language-x",
            "en_US",
            "en--US",
            "en-",
            "-en",
            "de-419-DE",
            "a-DE",
            "ar-a-aaa-b-bbb-a-ccc",
            "en-x",
            "1234",
            "de-DE-1901-1901",
            "ja-Jpan-JP-",
            "toolongtag",
            "en-US-x-toolongsub",
        ] {
            assert!(!is_well_formed(tag), "{tag}");
        }
    }
}
