//! HS256 JSON Web Tokens with Lotus-style permissions (`{"Allow":["read","write","sign","admin"]}`),
//! so the admin API takes the same kind of token as lotus-miner and droplet.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

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

#[derive(Serialize, Deserialize)]
struct Claims {
    #[serde(rename = "Allow")]
    allow: Vec<String>,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Signs a token granting `perms`.
pub fn sign(secret: &[u8], perms: &[&str]) -> String {
    let claims = Claims {
        allow: perms.iter().map(|p| (*p).to_string()).collect(),
    };
    let payload = serde_json::to_vec(&claims).expect("claims serialize");
    let head = format!("{}.{}", B64.encode(HEADER), B64.encode(payload));
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(head.as_bytes());
    format!("{head}.{}", B64.encode(mac.finalize().into_bytes()))
}

/// The permissions of a valid token; `None` if the signature or shape is wrong.
pub fn verify(secret: &[u8], token: &str) -> Option<Vec<String>> {
    let (head, sig) = token.rsplit_once('.')?;
    let (header, payload) = head.split_once('.')?;
    let header: serde_json::Value = serde_json::from_slice(&B64.decode(header).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "HS256" {
        return None;
    }
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(head.as_bytes());
    mac.verify_slice(&B64.decode(sig).ok()?).ok()?;
    let claims: Claims = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
    Some(claims.allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_forgeries_do_not() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let t = sign(secret, &[READ]);
        assert_eq!(verify(secret, &t), Some(vec!["read".to_string()]));
        assert_eq!(verify(b"another secret", &t), None);
        let (head, _) = t.rsplit_once('.').unwrap();
        let (h, _) = head.split_once('.').unwrap();
        let forged_claims = B64.encode(r#"{"Allow":["admin"]}"#);
        let sig = t.rsplit_once('.').unwrap().1;
        assert_eq!(verify(secret, &format!("{h}.{forged_claims}.{sig}")), None);
        assert_eq!(verify(secret, "garbage"), None);
    }
}
