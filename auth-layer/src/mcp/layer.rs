//! The configuration: which tools need which scopes, and how bodies are read.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::message::{Batch, Message};
use crate::error::{AuthError, ErrorCode};

/// The most of a body [`ToolScopesLayer`](super::ToolScopesLayer) reads by default: 4 MiB, what rmcp's Streamable HTTP
/// server accepts.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Requires scopes per MCP tool: the configuration, which wraps a service in a
/// [`ToolScopes`](super::ToolScopes); see the [module docs](super).
#[derive(Clone)]
#[must_use]
pub struct ToolScopesLayer {
    pub(super) tools: Arc<HashMap<String, Arc<[String]>>>,
    pub(super) max_body: usize,
    pub(super) pass_unparseable: bool,
}

impl fmt::Debug for ToolScopesLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolScopesLayer")
            .field("tools", &self.tools)
            .field("max_body", &self.max_body)
            .field("pass_unparseable", &self.pass_unparseable)
            .finish()
    }
}

impl Default for ToolScopesLayer {
    fn default() -> Self {
        ToolScopesLayer::new()
    }
}

impl ToolScopesLayer {
    /// No tool needs a scope yet; the body limit is [`DEFAULT_MAX_BODY`].
    pub fn new() -> Self {
        ToolScopesLayer {
            tools: Arc::default(),
            max_body: DEFAULT_MAX_BODY,
            pass_unparseable: false,
        }
    }

    /// Calls of tool `name` need every one of `scopes` (the 403 names them all). Tools not
    /// named need nothing beyond authentication.
    pub fn tool<I, S>(mut self, name: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Arc::make_mut(&mut self.tools).insert(
            name.into(),
            scopes
                .into_iter()
                .map(Into::into)
                .collect::<Vec<_>>()
                .into(),
        );
        self
    }

    /// The most of a body read (default [`DEFAULT_MAX_BODY`]); a longer one is
    /// answered `413`, since a call that cannot be read cannot be checked.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// **Risky opt-in**: pass every body this layer cannot read (not exactly one JSON value in
    /// UTF-8, or not sent as `application/json` in UTF-8) to the server unchecked, as this
    /// layer did before. Safe only when the server behind reads JSON no more leniently than
    /// serde_json and refuses other content types itself (rmcp does); in front of Python's
    /// `mcp`, the TypeScript SDK or any server that takes a BOM, UTF-16 or `NaN`, it lets a
    /// call of a gated tool through unchecked. Ambiguous JSON (a repeated `method`) is refused
    /// all the same, and a call found in a body is checked whatever its `Content-Type`.
    pub fn pass_unparseable_bodies_unchecked(mut self) -> Self {
        self.pass_unparseable = true;
        self
    }

    /// The scopes the calls in one JSON-RPC body need, or why the body is refused. `Ok(None)`:
    /// nothing in it needs a scope (or, with the opt-in, this reading cannot parse it).
    pub(super) fn needed(&self, body: &[u8]) -> Result<Option<Vec<String>>, AuthError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        let parsed = if first == Some(&b'[') {
            serde_json::from_slice::<Batch>(body).map(|b| b.0)
        } else {
            serde_json::from_slice::<Message>(body).map(|m| vec![m])
        };
        let messages = match parsed {
            // serde_json does not check the UTF-8 of strings it skips; a reader that replaces
            // bad bytes reads the same call, but one that guesses another encoding may not.
            Ok(_) if !self.pass_unparseable && std::str::from_utf8(body).is_err() => {
                return Err(not_one_json_value());
            }
            Ok(messages) => messages,
            // Not JSON by this reading (the syntax pass runs only here, off the path of every
            // well-formed call). Another reader may find a call in it all the same.
            Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() => {
                return if self.pass_unparseable {
                    Ok(None)
                } else {
                    Err(not_one_json_value())
                };
            }
            // Well-formed JSON this reading cannot place (a repeated `method` or `name`, a name
            // that is not a string, a member named like one in another case or with a control
            // or non-ASCII character, a batch of non-objects or of more than MAX_BATCH): the
            // server might read it otherwise, so it is refused rather than let through.
            Err(_) => {
                return Err(AuthError::with_detail(
                    ErrorCode::InvalidRequest,
                    "the JSON-RPC message is ambiguous or too large: a member is repeated, has the wrong type or an odd name, or the batch is too long",
                ));
            }
        };
        let mut needed: Vec<String> = Vec::new();
        for m in &messages {
            if m.method.as_deref() != Some("tools/call") {
                continue;
            }
            let Some(name) = m.params.as_ref().and_then(|p| p.name.as_deref()) else {
                continue;
            };
            if let Some(scopes) = self.tools.get(name) {
                for s in scopes.iter() {
                    if !needed.contains(s) {
                        needed.push(s.clone());
                    }
                }
            }
        }
        Ok((!needed.is_empty()).then_some(needed))
    }
}

pub(super) fn not_one_json_value() -> AuthError {
    AuthError::with_detail(
        ErrorCode::InvalidRequest,
        "the body is not exactly one JSON value in UTF-8, so the tool it calls cannot be checked",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes() -> ToolScopesLayer {
        ToolScopesLayer::new()
            .tool("add_note", ["notes:read", "notes:write"])
            .tool("list_notes", ["notes:read"])
    }

    #[test]
    fn calls_are_found_in_single_messages_and_batches() {
        let s = scopes();
        let call = |name: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#
            )
        };
        assert_eq!(
            s.needed(call("add_note").as_bytes()).unwrap(),
            Some(vec!["notes:read".to_owned(), "notes:write".to_owned()])
        );
        assert_eq!(s.needed(call("whoami").as_bytes()).unwrap(), None);
        let batch = format!("[{}, {}]", call("list_notes"), call("add_note"));
        assert_eq!(
            s.needed(batch.as_bytes()).unwrap().map(|v| v.len()),
            Some(2),
            "the union, each scope once"
        );
        let list =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"add_note"}}"#;
        assert_eq!(s.needed(list).unwrap(), None);
    }

    #[test]
    fn ambiguous_json_is_refused_and_so_is_non_json_unless_opted_in() {
        let s = scopes();
        for body in [
            &br#"{"method":"tools/call","params":{"name":"whoami","name":"add_note"}}"#[..],
            br#"{"method":"tools/list","method":"tools/call","params":{"name":"add_note"}}"#,
            br#"{"method":"tools/call","params":{"name":7}}"#,
            br#"[{"method":"tools/call","params":{"name":"add_note"}}, 3]"#,
        ] {
            let err = s.needed(body).unwrap_err();
            assert_eq!(
                err.code(),
                ErrorCode::InvalidRequest,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let lenient = scopes().pass_unparseable_bodies_unchecked();
        for body in [
            &b"not json"[..],
            b"{\"method\":",
            b"[1, 2",
            b"\xEF\xBB\xBF{}",
            b"{} {}",
            b"{\"x\":NaN}",
        ] {
            let err = s.needed(body).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
            assert_eq!(lenient.needed(body).unwrap(), None);
        }
        // Invalid UTF-8 in a string serde_json skips: the call is still found with the opt-in.
        let bad_utf8 =
            b"{\"method\":\"tools/call\",\"x\":\"\xFF\",\"params\":{\"name\":\"add_note\"}}";
        assert_eq!(
            s.needed(bad_utf8).unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
        assert_eq!(lenient.needed(bad_utf8).unwrap().map(|v| v.len()), Some(2));
    }

    #[test]
    fn a_member_named_like_method_params_or_name_in_another_case_is_ambiguous() {
        let s = scopes();
        for body in [
            r#"{"Method":"tools/call","params":{"name":"add_note"}}"#,
            r#"{"method":"tools/list","METHOD":"tools/call","params":{"name":"add_note"}}"#,
            r#"{"method":"tools/call","Params":{"name":"add_note"}}"#,
            "{\"method\":\"tools/call\",\"param\u{17F}\":{\"name\":\"add_note\"}}",
            r#"{"method":"tools/call","params":{"NAME":"add_note"}}"#,
            r#"{"method":"tools/call","params":{"name":"whoami","nAmE":"add_note"}}"#,
        ] {
            let err = s.needed(body.as_bytes()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest, "{body}");
        }
        // Names that only look alike are other members; escapes are read as what they say.
        let other =
            r#"{"method":"tools/call","params":{"name":"whoami","names":"add_note","nam":1}}"#;
        assert_eq!(s.needed(other.as_bytes()).unwrap(), None);
        let escaped = r#"{"m\u0065thod":"tools/call","params":{"n\u0061me":"add_note"}}"#;
        assert_eq!(
            s.needed(escaped.as_bytes()).unwrap().map(|v| v.len()),
            Some(2)
        );
    }
}
