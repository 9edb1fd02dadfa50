//! HS256 JSON Web Tokens with Lotus permissions, so every API here (the node's admin API, the
//! devnet's Lotus API) takes the same tokens as Lotus, lotus-miner and droplet.
//!
//! Two payload styles verify: Lotus's `{"Allow":["read","write","sign","admin"]}` (a list of
//! every permission held) and sophon-auth's `{"name":"…","perm":"sign","ext":""}` (one
//! permission that implies the ones below it). Lotus tokens carry no `exp` and stay valid
//! until the secret changes; a token that has one is refused once it has passed, and tokens
//! this node puts into URLs (unseal destinations) always have one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::Value;

/// Read-only methods.
pub const READ: &str = "read";
/// State-changing methods.
pub const WRITE: &str = "write";
/// Signing with node keys.
pub const SIGN: &str = "sign";
/// Everything.
pub const ADMIN: &str = "admin";
/// The permissions of an admin token.
pub const ALL: &[&str] = &[READ, WRITE, SIGN, ADMIN];

/// Seconds of clock difference tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Why a token was refused. The text is safe to send back: it never quotes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three base64url parts with JSON inside.
    #[error("malformed token")]
    Malformed,
    /// Signed with something other than HS256 (including `none`).
    #[error("token algorithm is not HS256")]
    Algorithm,
    /// Signed with another secret, or altered.
    #[error("token signature does not verify")]
    Signature,
    /// Its `exp` has passed.
    #[error("token expired")]
    Expired,
    /// Its `nbf` is still ahead.
    #[error("token not valid yet")]
    NotYetValid,
    /// Neither `Allow` nor a known `perm`.
    #[error("token grants no permission")]
    NoPermission,
    /// The API secret is empty: nothing can be signed or verified with it.
    #[error("the API secret is empty")]
    EmptySecret,
}

#[derive(Serialize)]
struct Claims<'a> {
    #[serde(rename = "Allow")]
    allow: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
}

/// The permissions `perm` implies in the sophon-auth hierarchy (admin > sign > write > read).
fn implied(perm: &str) -> Vec<String> {
    let order = [READ, WRITE, SIGN, ADMIN];
    match order.iter().position(|p| *p == perm) {
        Some(i) => order[..=i].iter().map(|p| (*p).to_string()).collect(),
        None => Vec::new(),
    }
}

/// Whether `held` grants `needed` (a token holding `admin` may call everything).
pub fn allows(held: &[String], needed: &str) -> bool {
    held.iter().any(|h| h == needed || h == ADMIN)
}

fn encode(secret: &[u8], claims: &Claims<'_>) -> Result<String, TokenError> {
    let key = EncodingKey::from_secret(secret).map_err(|_| TokenError::EmptySecret)?;
    // The claims are plain strings and numbers: what is left to fail is a build without a
    // crypto provider, which every test would show.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
        .map_err(|_| TokenError::Malformed)
}

/// Signs a token granting `perms` that never expires, as `lotus auth create-token` does.
pub fn sign(secret: &[u8], perms: &[&str]) -> Result<String, TokenError> {
    encode(
        secret,
        &Claims {
            allow: perms,
            exp: None,
        },
    )
}

/// Signs a token granting `perms` for `valid_for`: the kind to put into a URL.
pub fn sign_expiring(
    secret: &[u8],
    perms: &[&str],
    valid_for: Duration,
) -> Result<String, TokenError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    encode(
        secret,
        &Claims {
            allow: perms,
            exp: Some((now + valid_for).as_secs()),
        },
    )
}

/// The permissions of a valid token.
pub fn verify(secret: &[u8], token: &str) -> Result<Vec<String>, TokenError> {
    use jsonwebtoken::errors::ErrorKind;
    let key = DecodingKey::from_secret(secret).map_err(|_| TokenError::EmptySecret)?;
    let mut validation = Validation::new(Algorithm::HS256);
    // Lotus tokens have no exp; one that is there is still checked.
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    let data =
        jsonwebtoken::decode::<Value>(token.trim(), &key, &validation).map_err(|e| {
            match e.kind() {
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TokenError::Algorithm
                }
                ErrorKind::InvalidSignature => TokenError::Signature,
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                _ => TokenError::Malformed,
            }
        })?;
    let claims = data.claims;
    if let Some(allow) = claims.get("Allow") {
        let perms: Vec<String> =
            serde_json::from_value(allow.clone()).map_err(|_| TokenError::Malformed)?;
        return Ok(perms);
    }
    match claims.get("perm").and_then(Value::as_str).map(implied) {
        Some(perms) if !perms.is_empty() => Ok(perms),
        _ => Err(TokenError::NoPermission),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use hmac::{KeyInit, Mac};

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// A token built by hand, so that the tests do not depend on the code under test.
    fn hand_made(secret: &[u8], header: &str, payload: &str) -> String {
        let head = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(head.as_bytes());
        format!("{head}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    #[test]
    fn tokens_verify_and_forgeries_do_not() {
        let t = sign(SECRET, &[READ]).unwrap();
        assert_eq!(verify(SECRET, &t), Ok(vec!["read".to_string()]));
        assert_eq!(verify(b"another secret", &t), Err(TokenError::Signature));
        let (head, sig) = t.rsplit_once('.').unwrap();
        let (h, _) = head.split_once('.').unwrap();
        let forged_claims = B64.encode(r#"{"Allow":["admin"]}"#);
        assert_eq!(
            verify(SECRET, &format!("{h}.{forged_claims}.{sig}")),
            Err(TokenError::Signature)
        );
        assert_eq!(verify(SECRET, "garbage"), Err(TokenError::Malformed));
        assert_eq!(verify(SECRET, ""), Err(TokenError::Malformed));
        assert_eq!(verify(b"", &t), Err(TokenError::EmptySecret));
        assert_eq!(sign(b"", &[READ]), Err(TokenError::EmptySecret));
    }

    #[test]
    fn a_lotus_token_verifies() {
        // What `lotus auth create-token --perm admin` prints, signed by hand here.
        let t = hand_made(
            SECRET,
            HS256,
            r#"{"Allow":["read","write","sign","admin"]}"#,
        );
        assert_eq!(verify(SECRET, &t).unwrap(), ALL);
    }

    #[test]
    fn other_algorithms_are_refused() {
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            B64.encode(r#"{"Allow":["admin"]}"#)
        );
        // `none` is not an algorithm the decoder knows: the header itself does not parse.
        assert_eq!(verify(SECRET, &none), Err(TokenError::Malformed));
        // HS512 and RS256 headers over an HS256 MAC: the header decides nothing.
        for alg in ["HS512", "RS256", "ES256"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            let t = hand_made(SECRET, &header, r#"{"Allow":["admin"]}"#);
            assert_eq!(verify(SECRET, &t), Err(TokenError::Algorithm), "{alg}");
        }
    }

    #[test]
    fn expiry_is_enforced_when_present() {
        let t = hand_made(SECRET, HS256, r#"{"Allow":["admin"],"exp":1}"#);
        assert_eq!(verify(SECRET, &t), Err(TokenError::Expired));
        let t = hand_made(SECRET, HS256, r#"{"Allow":["read"],"exp":"soon"}"#);
        assert_eq!(verify(SECRET, &t), Err(TokenError::Malformed));
        let t = hand_made(SECRET, HS256, r#"{"Allow":["read"],"nbf":99999999999}"#);
        assert_eq!(verify(SECRET, &t), Err(TokenError::NotYetValid));
        let t = sign_expiring(SECRET, &[READ], Duration::from_secs(600)).unwrap();
        assert_eq!(verify(SECRET, &t), Ok(vec!["read".to_string()]));
        assert!(t.split('.').nth(1).is_some_and(|p| {
            let claims: Value = serde_json::from_slice(&B64.decode(p).unwrap()).unwrap();
            claims["exp"].as_u64().is_some()
        }));
    }

    #[test]
    fn sophon_auth_tokens_imply_lower_permissions() {
        let t = hand_made(
            SECRET,
            HS256,
            r#"{"name":"shared-token","perm":"sign","ext":""}"#,
        );
        let perms = verify(SECRET, &t).unwrap();
        assert!(allows(&perms, SIGN) && allows(&perms, READ));
        assert!(!allows(&perms, ADMIN));
        let t = hand_made(SECRET, HS256, r#"{"name":"x","perm":"root"}"#);
        assert_eq!(verify(SECRET, &t), Err(TokenError::NoPermission));
    }
}
