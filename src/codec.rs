//! Codecs turn typed values into stored bytes and back.
//!
//! Decoding never panics: bytes that are not a valid encoding of the
//! expected type are an [`crate::ErrorKind::CorruptData`] error.

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

use crate::{Error, Result};

/// The deepest nesting a decoded value may have (serde_json's limit).
const MAX_DEPTH: usize = 128;

/// A way to store typed values as bytes.
pub trait Codec: crate::MaybeSend + crate::MaybeSync {
    /// Encodes `value`.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes>;
    /// Decodes bytes written by [`Codec::encode`]; anything else is
    /// [`crate::ErrorKind::CorruptData`].
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T>;

    /// A byte naming the format, stored beside encoded values (the cache's
    /// entry envelope) so bytes written by one codec are never decoded by
    /// another: [`Json`] is 1, [`MsgPack`] 2; `0` (the default) means
    /// "unnamed". A custom codec should pick a value of 128 or more.
    fn format_id(&self) -> u8 {
        0
    }
}

/// JSON (serde_json): readable in `redis-cli`, shared with Node.
///
/// ```
/// use rampart::{Codec, Json, ErrorKind};
/// let bytes = Json.encode(&vec![1, 2, 3]).unwrap();
/// assert_eq!(&bytes[..], b"[1,2,3]");
/// let back: Vec<u8> = Json.decode(&bytes).unwrap();
/// assert_eq!(back, [1, 2, 3]);
/// let err = Json.decode::<Vec<u8>>(b"\xff not json").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::CorruptData);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes> {
        serde_json::to_vec(value).map(Bytes::from).map_err(|e| {
            Error::invalid_input("value cannot be encoded as JSON")
                .with_source(e)
                .with_operation("encode")
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| Error::from(e).with_operation("decode"))
    }

    fn format_id(&self) -> u8 {
        1
    }
}

/// MessagePack (rmp-serde, with field names): compact binary, about half
/// the size of JSON for numeric data, and readable from Node (`msgpackr`).
///
/// ```
/// use rampart::{Codec, ErrorKind, MsgPack};
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct User { id: u64, name: String }
/// let user = User { id: 7, name: "Ada".into() };
/// let bytes = MsgPack.encode(&user).unwrap();
/// assert!(bytes.len() < rampart::Json.encode(&user).unwrap().len());
/// assert_eq!(MsgPack.decode::<User>(&bytes).unwrap(), user);
/// let err = MsgPack.decode::<User>(b"\xc1").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::CorruptData);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPack;

impl Codec for MsgPack {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes> {
        rmp_serde::to_vec_named(value)
            .map(Bytes::from)
            .map_err(|e| {
                Error::invalid_input("value cannot be encoded as MessagePack")
                    .with_source(e)
                    .with_operation("encode")
            })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        // rmp-serde allows 1024 levels of nesting: a hostile value that deep
        // overflows a 2 MiB thread stack (found by the cache_envelope fuzz
        // target). 128 is serde_json's limit too.
        let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
        de.set_max_depth(MAX_DEPTH);
        T::deserialize(&mut de).map_err(|e| {
            Error::corrupt("value is not valid MessagePack for the expected type")
                .with_source(e)
                .with_operation("decode")
        })
    }

    fn format_id(&self) -> u8 {
        2
    }
}
