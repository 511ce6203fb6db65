//! Kubernetes resource quantities (`100m`, `1Gi`, `1e3`) as exact milli-units.
//!
//! The scheduler's fit check and `resourceFieldRef` both need exact arithmetic: `0.1`
//! CPU must be 100 milli-CPU, not 100.000000001. Values are kept as `i128` milli-units,
//! rounded up like `resource.Quantity.MilliValue()`.

use std::fmt;

/// A quantity string that does not follow the Kubernetes quantity grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0:?}")]
pub struct InvalidQuantity(pub String);

/// An exact quantity in thousandths of its unit (milli-CPU, milli-bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Milli(pub i128);

impl Milli {
    /// The value in whole units, rounded up like `Quantity.Value()`.
    pub fn ceil_units(self) -> i128 {
        ceil_div(self.0, 1000)
    }
}

impl std::ops::Add for Milli {
    type Output = Milli;
    fn add(self, o: Milli) -> Milli {
        Milli(self.0 + o.0)
    }
}

impl fmt::Display for Milli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1000 == 0 {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

/// Integer division rounding towards positive infinity.
pub fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if (a % b != 0) && ((a < 0) == (b < 0)) {
        q + 1
    } else {
        q
    }
}

/// Parses a quantity such as `250m`, `1.5`, `64Mi` or `1e3` into milli-units, rounding up.
pub fn parse(s: &str) -> Result<Milli, InvalidQuantity> {
    let bad = || InvalidQuantity(s.to_string());
    let t = s.trim();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(num_end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return Err(bad());
    }
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    let digits = format!("{int_part}{frac_part}");
    let mantissa: i128 = digits.parse().map_err(|_| bad())?;
    // value = mantissa * 10^(-frac) * multiplier; milli = value * 1000.
    let mut exp10: i32 = 3 - frac_part.len() as i32;
    let mut pow2: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => pow2 = 10,
        "Mi" => pow2 = 20,
        "Gi" => pow2 = 30,
        "Ti" => pow2 = 40,
        "Pi" => pow2 = 50,
        "Ei" => pow2 = 60,
        other => {
            let rest = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))
                .ok_or_else(bad)?;
            let e: i32 = rest.parse().map_err(|_| bad())?;
            exp10 += e;
        }
    }
    let scaled = mantissa.checked_mul(1i128 << pow2).ok_or_else(bad)?;
    let value = if exp10 >= 0 {
        scaled
            .checked_mul(10i128.checked_pow(exp10 as u32).ok_or_else(bad)?)
            .ok_or_else(bad)?
    } else {
        let div = 10i128.checked_pow((-exp10) as u32).ok_or_else(bad)?;
        ceil_div(scaled, div)
    };
    Ok(Milli(if neg { -value } else { value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_quantity_grammar() {
        assert_eq!(parse("100m"), Ok(Milli(100)));
        assert_eq!(parse("0.1"), Ok(Milli(100)));
        assert_eq!(parse("2"), Ok(Milli(2000)));
        assert_eq!(parse("1Ki"), Ok(Milli(1_024_000)));
        assert_eq!(parse("1Gi").map(Milli::ceil_units), Ok(1 << 30));
        assert_eq!(parse("1e3").map(Milli::ceil_units), Ok(1000));
        assert_eq!(parse("1.5G").map(Milli::ceil_units), Ok(1_500_000_000));
        assert_eq!(parse("1n"), Ok(Milli(1)));
        assert!(parse("abc").is_err());
        assert!(parse("1Qi").is_err());
        assert!(parse("").is_err());
    }
}
