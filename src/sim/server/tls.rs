//! The simulator's PKI: a CA and a serving certificate for `127.0.0.1` and `localhost`,
//! generated at start (never written to disk except the CA inside the 0600 kubeconfig),
//! and the rustls server config offering HTTP/2 and HTTP/1.1 by ALPN.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Failures while building the certificates or the TLS config.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rcgen could not generate a key or certificate.
    #[error("generating the simulator's certificates")]
    Generate(#[source] rcgen::Error),
    /// rustls refused the certificate/key pair.
    #[error("building the TLS server config")]
    Config(#[source] rustls::Error),
}

/// The generated CA and serving certificate.
pub struct Pki {
    /// PEM of the CA certificate (goes into the kubeconfig).
    pub ca_pem: String,
    /// The rustls config serving the leaf certificate.
    pub server_config: Arc<rustls::ServerConfig>,
}

/// Generate a fresh CA and a serving certificate for 127.0.0.1/localhost.
pub fn generate() -> Result<Pki, Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(Error::Generate)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "podrun-sim-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let ca_key = KeyPair::generate().map_err(Error::Generate)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(Error::Generate)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(Error::Generate)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(Error::Generate)?;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(Error::Generate)?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Config)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(Error::Config)?;
    // kubectl and kube-rs speak h2; WebSocket upgrades (exec) need HTTP/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Pki {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(config),
    })
}
