//! HS256 JSON Web Tokens with Lotus permissions, so every API here (the node's admin API, the
//! devnet's Lotus API) takes the same tokens as Lotus, lotus-miner and droplet.
//!
//! Two payload styles verify: Lotus's `{"Allow":["read","write","sign","admin"]}` (a list of
//! every permission held) and sophon-auth's `{"name":"…","perm":"sign","ext":""}` (one
//! permission that implies the ones below it).

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

/// sophon-auth's payload: one hierarchical permission and the account name.
#[derive(Deserialize)]
struct VenusClaims {
    perm: String,
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
    let payload = B64.decode(payload).ok()?;
    if let Ok(claims) = serde_json::from_slice::<Claims>(&payload) {
        return Some(claims.allow);
    }
    let venus: VenusClaims = serde_json::from_slice(&payload).ok()?;
    Some(implied(&venus.perm))
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

    #[test]
    fn sophon_auth_tokens_imply_lower_permissions() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let payload = B64.encode(r#"{"name":"shared-token","perm":"sign","ext":""}"#);
        let head = format!("{}.{payload}", B64.encode(HEADER));
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(head.as_bytes());
        let token = format!("{head}.{}", B64.encode(mac.finalize().into_bytes()));
        let perms = verify(secret, &token).unwrap();
        assert!(allows(&perms, SIGN) && allows(&perms, READ));
        assert!(!allows(&perms, ADMIN));
    }
}
