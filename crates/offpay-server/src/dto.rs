//! The JSON bodies of the API: defined once in `offpay-api` (shared with the
//! client, the CLI and the tests), with their OpenAPI schemas.

pub use offpay_api::*;
