//! The client side of SCRAM (RFC 5802, with SHA-256 and SHA-512 as RFC 7677
//! and Kafka's KIP-84 name them), built on the `hmac`, `sha2` and `pbkdf2`
//! crates. The server's signature is verified, so a broker that does not
//! know the password cannot pass for one that does.
//!
//! [`ScramClient::respond`] runs PBKDF2 (thousands of HMAC rounds): callers
//! run it off the async reactor.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The fewest PBKDF2 iterations accepted from a server (Kafka's own
/// minimum): fewer would let a false server weaken the proof.
const MIN_ITERATIONS: u32 = 4096;
/// The most: more would let a server make Strait burn CPU.
const MAX_ITERATIONS: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramHash::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

/// One SCRAM exchange, after the client-first message.
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    nonce: String,
    client_first_bare: String,
}

/// What verifies the server-final message.
pub struct ServerCheck {
    hash: ScramHash,
    server_key: Vec<u8>,
    auth_message: String,
}

/// `=` and `,` escaped as RFC 5802's saslname wants.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    /// Starts an exchange with a fresh random nonce.
    pub fn new(hash: ScramHash, username: &str, password: &str) -> ScramClient {
        let bytes: [u8; 24] = rand::random();
        ScramClient::with_nonce(hash, username, password, B64.encode(bytes))
    }

    fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: String) -> ScramClient {
        let client_first_bare = format!("n={},r={nonce}", sasl_name(username));
        ScramClient {
            hash,
            password: password.to_string(),
            nonce,
            client_first_bare,
        }
    }

    /// The client-first message (no channel binding, no authzid).
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Answers the server-first message with the client-final one (the
    /// proof). CPU-heavy: PBKDF2.
    pub fn respond(&self, server_first: &str) -> Result<(String, ServerCheck), String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = Some(v),
                Some(("i=", v)) => iterations = Some(v),
                Some(("m=", _)) => return Err("server asks for a mandatory extension".into()),
                Some(("e=", v)) => return Err(format!("server error: {v}")),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!("malformed server-first message {server_first:?}"));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's nonce does not extend the client's".into());
        }
        let salt = B64
            .decode(salt)
            .map_err(|e| format!("the server's salt is not base64: {e}"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| format!("bad iteration count {iterations:?}"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "iteration count {iterations} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            ));
        }
        let h = self.hash;
        let salted = h.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let check = ServerCheck {
            hash: h,
            server_key: h.hmac(&salted, b"Server Key"),
            auth_message,
        };
        Ok((format!("{without_proof},p={}", B64.encode(proof)), check))
    }
}

impl ServerCheck {
    /// Verifies the server-final message: the server knew the password.
    pub fn verify(&self, server_final: &str) -> Result<(), String> {
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(format!("server error: {e}"));
        }
        let v = server_final
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .ok_or_else(|| format!("malformed server-final message {server_final:?}"))?;
        let got = B64
            .decode(v)
            .map_err(|e| format!("the server signature is not base64: {e}"))?;
        // Compared in constant time (`verify_slice`).
        let ok = match self.hash {
            ScramHash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(&self.server_key).expect("any key");
                m.update(self.auth_message.as_bytes());
                m.verify_slice(&got).is_ok()
            }
            ScramHash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(&self.server_key).expect("any key");
                m.update(self.auth_message.as_bytes());
                m.verify_slice(&got).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err("the server's signature is wrong".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677, section 3.
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    #[test]
    fn rfc7677_test_vector() {
        let c = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", NONCE.into());
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (client_final, check) = c.respond(SERVER_FIRST).unwrap();
        assert_eq!(client_final, CLIENT_FINAL);
        check.verify(SERVER_FINAL).unwrap();
    }

    #[test]
    fn a_wrong_server_signature_is_refused() {
        let c = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", NONCE.into());
        let (_, check) = c.respond(SERVER_FIRST).unwrap();
        let e = check
            .verify("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(e.contains("signature is wrong"), "{e}");
        assert!(check
            .verify("e=invalid-proof")
            .unwrap_err()
            .contains("invalid-proof"));
    }

    #[test]
    fn sha512_proof_differs_and_verifies_its_own_server() {
        // The same exchange with SHA-512: a server computing the keys the
        // same way (here, from the client's own ServerCheck) is accepted.
        let c = ScramClient::with_nonce(ScramHash::Sha512, "user", "pencil", NONCE.into());
        let (client_final, check) = c.respond(SERVER_FIRST).unwrap();
        assert_ne!(client_final, CLIENT_FINAL);
        let sig = check
            .hash
            .hmac(&check.server_key, check.auth_message.as_bytes());
        assert_eq!(sig.len(), 64);
        check.verify(&format!("v={}", B64.encode(sig))).unwrap();
    }

    #[test]
    fn bad_server_first_messages_are_refused() {
        let c = ScramClient::with_nonce(ScramHash::Sha512, "u=,x", "p", NONCE.into());
        assert_eq!(c.client_first(), "n,,n=u=3D=2Cx,r=rOprNGfwEbeRWgbNEkqO");
        for (server_first, want) in [
            ("r=someoneelse,s=AAAA,i=4096", "nonce"),
            ("r=rOprNGfwEbeRWgbNEkqO,s=AAAA,i=4096", "nonce"),
            ("r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=1", "iteration"),
            ("r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096", "base64"),
            ("r=rOprNGfwEbeRWgbNEkqOx,s=AAAA", "malformed"),
            ("m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=4096", "extension"),
        ] {
            let e = c.respond(server_first).err().expect(server_first);
            assert!(e.contains(want), "{server_first}: {e}");
        }
    }
}
