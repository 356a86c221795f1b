//! Extractors whose every rejection is an [`ApiError`] (JSON, stable code).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest body of every route but `/v1/sync`.
pub const BODY_BYTES_MAX: usize = 64 << 10;
/// Largest body of `/v1/sync`.
pub const SYNC_BODY_BYTES_MAX: usize = offpay_protocol::messages::SYNC_REPORT_BYTES_MAX;

/// `application/cbor`.
pub const CBOR: &str = "application/cbor";
/// `application/json`.
pub const JSON: &str = "application/json";

fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

fn check_media_type(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    match media_type(headers) {
        Some(m) if m == expected => Ok(()),
        Some(m) if expected == JSON && m.starts_with("application/") && m.ends_with("+json") => {
            Ok(())
        }
        _ => Err(ApiError::unsupported_media_type(expected)),
    }
}

/// Read the whole body, at most `max` bytes (the route's `DefaultBodyLimit` is
/// set to the same value). A declared `Content-Length` over the limit is
/// refused before anything is read.
async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
    max: usize,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::body_too_large(max));
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            ApiError::body_too_large(max)
        }
        e if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::body_too_large(max),
        e => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("cannot read the request body: {e}"),
        ),
    })?;
    if bytes.len() > max {
        return Err(ApiError::body_too_large(max));
    }
    Ok(bytes)
}

/// An `application/cbor` body of at most `MAX` bytes.
#[derive(Debug)]
pub struct CborBody<const MAX: usize>(pub Bytes);

impl<S: Send + Sync, const MAX: usize> FromRequest<S> for CborBody<MAX> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_media_type(req.headers(), CBOR)?;
        Ok(CborBody(body_bytes(req, state, MAX).await?))
    }
}

/// An `application/json` body of at most [`BODY_BYTES_MAX`] bytes, deserialized.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_media_type(req.headers(), JSON)?;
        let bytes = body_bytes(req, state, BODY_BYTES_MAX).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid_json(format!("JSON body: {e}")))
    }
}

/// An `application/json` body of at most `MAX` bytes, deserialized (routes
/// whose bodies are batches: their `DefaultBodyLimit` is set to `MAX` too).
#[derive(Debug)]
pub struct JsonBodyMax<T, const MAX: usize>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const MAX: usize> FromRequest<S> for JsonBodyMax<T, MAX> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_media_type(req.headers(), JSON)?;
        let bytes = body_bytes(req, state, MAX).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBodyMax)
            .map_err(|e| ApiError::invalid_json(format!("JSON body: {e}")))
    }
}

/// `application/pkix-crl`.
pub const PKIX_CRL: &str = "application/pkix-crl";

/// Largest CRL upload: a CRL field's limit.
pub const CRL_BODY_BYTES_MAX: usize = offpay_protocol::messages::CRL_FIELD_BYTES_MAX;

/// An `application/pkix-crl` body (a DER CRL) of at most [`CRL_BODY_BYTES_MAX`] bytes.
#[derive(Debug)]
pub struct CrlBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for CrlBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_media_type(req.headers(), PKIX_CRL)?;
        Ok(CrlBody(body_bytes(req, state, CRL_BODY_BYTES_MAX).await?))
    }
}

/// The single `{id}` path segment.
#[derive(Debug)]
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid_input(format!("path: {e}")))?;
        Ok(PathId(id))
    }
}

/// Query parameters.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(q) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid_input(format!("query: {}", e.body_text())))?;
        Ok(QueryParams(q))
    }
}
