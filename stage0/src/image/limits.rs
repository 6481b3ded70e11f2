//! Naming the flag behind an image-limit error: the store and `aci` report which limit an image
//! went past (they know no flags); the user needs to know which flag raises it.
use std::error::Error;

use aci::archive::{LimitExceeded, Limits};
use aci::AciError;
use store::StoreError;

use crate::cli::flags::format_size;

/// The limit an error (or any of its causes) reports, wherever it was raised.
fn limit_in(err: &anyhow::Error) -> Option<LimitExceeded> {
    err.chain().find_map(|cause: &(dyn Error + 'static)| {
        if let Some(l) = cause.downcast_ref::<LimitExceeded>() {
            return Some(*l);
        }
        match cause.downcast_ref::<StoreError>() {
            Some(StoreError::Limit(l)) => return Some(*l),
            Some(StoreError::Aci(AciError::Limit(l))) => return Some(*l),
            _ => {}
        }
        if let Some(AciError::Limit(l)) = cause.downcast_ref::<AciError>() {
            return Some(*l);
        }
        cause
            .downcast_ref::<std::io::Error>()
            .and_then(LimitExceeded::from_io)
    })
}

/// Puts the flag and its value in front of an image-limit error; other errors pass unchanged.
pub fn name_the_flag(err: anyhow::Error, limits: &Limits) -> anyhow::Error {
    match limit_in(&err) {
        Some(LimitExceeded::RenderedSize { .. }) => err.context(format!(
            "refused by --image-size-limit={}",
            format_size(limits.max_rendered_size)
        )),
        Some(LimitExceeded::Expansion { .. }) => err.context(format!(
            "refused by --image-expansion-limit={}",
            limits.max_expansion_ratio
        )),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;
    use crate::output::render_error;

    #[test]
    fn limit_errors_name_their_flag() {
        let limits = Limits::default();
        let size = LimitExceeded::RenderedSize {
            limit: 16 << 30,
            seen: (16 << 30) + 1,
        };
        let err = Err::<(), _>(StoreError::Limit(size))
            .context("cannot import /x.aci")
            .unwrap_err();
        assert_eq!(
            render_error(&name_the_flag(err, &limits), false),
            format!("refused by --image-size-limit=16G: cannot import /x.aci: {size}")
        );
        let ratio = LimitExceeded::Expansion {
            limit: 256,
            compressed: 1,
            uncompressed: 1 << 30,
        };
        let io = std::io::Error::other(ratio);
        let err = anyhow::Error::new(io).context("error reading image");
        assert!(render_error(&name_the_flag(err, &limits), false)
            .starts_with("refused by --image-expansion-limit=256: error reading image: "));
        let other = anyhow::anyhow!("something else");
        assert_eq!(name_the_flag(other, &limits).to_string(), "something else");
    }
}
