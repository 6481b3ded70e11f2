//! Images from the world: HTTP(S) downloads ([`http`]), appc meta discovery ([`discovery`]),
//! the keystore of trusted keys ([`keystore`]) and OpenPGP signatures ([`openpgp`]).
//! Policy (what to fetch, what to tell the user) stays in stage0.
pub mod credentials;
pub mod discovery;
pub mod docker;
pub mod http;
pub mod keystore;
pub mod openpgp;
