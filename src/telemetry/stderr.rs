//! What reaches stderr outside the log events: the closing summary and a fatal error, in the
//! run's log format, and whether plain-text lines are coloured.
//!
//! With `--log-format json` every stderr line is one JSON object shaped like the tracing
//! subscriber's own lines (`timestamp`, `level`, `fields.message`), so a log shipper parses a
//! whole run, a failing one included:
//! - the run summary: `{"level":"INFO","fields":{"message":"run summary","summary":{..}}}`,
//!   where `summary` holds exactly what `--summary-json` writes;
//! - a fatal error: `{"level":"ERROR","fields":{"message":"..."}}` (the whole error chain).
//!
//! Every line is cleared of anything that looks like a credential (`redact_secrets`); in JSON
//! the string values are cleared one by one, so the line stays valid JSON.

use super::{LogFormat, redact_secrets};
use serde::Serialize;
use std::io::Write;

/// Whether plain-text lines on stderr are coloured: never when `NO_COLOR` is set (to anything
/// but the empty string, <https://no-color.org>) or `TERM=dumb`; always when `CLICOLOR_FORCE`
/// is set to anything but `0`; otherwise never when `CLICOLOR=0`, and only when stderr is a
/// terminal. `env` looks a variable up (the process environment in `main`).
pub fn colour(stderr_is_terminal: bool, env: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if set("NO_COLOR").is_some() {
        return false;
    }
    if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        return true;
    }
    if set("CLICOLOR").is_some_and(|v| v == "0") || env("TERM").as_deref() == Some("dumb") {
        return false;
    }
    stderr_is_terminal
}

/// Whether stderr gets colour, from the process environment.
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    colour(std::io::stderr().is_terminal(), |name| {
        std::env::var(name).ok()
    })
}

/// A line as it may reach stderr: `redact_secrets` over plain text; over a JSON object, over
/// each of its strings (keys and values), so the line stays one valid JSON object.
pub fn redact_line(line: &str) -> String {
    let redacted = redact_secrets(line);
    if redacted == line || !line.trim_start().starts_with('{') {
        return redacted;
    }
    match serde_json::from_str::<serde_json::Value>(line.trim_end()) {
        Ok(mut value) => {
            redact_strings(&mut value);
            let mut out = value.to_string();
            if line.ends_with('\n') {
                out.push('\n');
            }
            out
        }
        Err(_) => redacted,
    }
}

fn redact_strings(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => *s = redact_secrets(s),
        Value::Array(items) => items.iter_mut().for_each(redact_strings),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut v) in entries {
                redact_strings(&mut v);
                map.insert(redact_secrets(&key), v);
            }
        }
        _ => {}
    }
}

/// One JSON log line, shaped like the tracing subscriber's (`timestamp` in RFC 3339 with
/// microseconds, UTC): `{"timestamp":..,"level":..,"fields":{"message":..,extra..}}`.
pub fn json_line(level: &str, message: &str, extra: Option<(&str, serde_json::Value)>) -> String {
    let mut fields = serde_json::Map::new();
    fields.insert("message".into(), message.into());
    if let Some((key, value)) = extra {
        fields.insert(key.into(), value);
    }
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let line = serde_json::json!({
        "timestamp": timestamp,
        "level": level,
        "fields": fields,
    });
    format!("{line}\n")
}

fn write_stderr(text: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(redact_line(text).as_bytes());
}

/// A fatal error (`{e:#}`, the whole chain): `trailsight: error: ...` in text, an ERROR line in
/// JSON.
pub fn print_error(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => write_stderr(&format!("trailsight: error: {message}\n")),
        LogFormat::Json => write_stderr(&json_line("ERROR", message, None)),
    }
}

/// The closing summary of a command: the table in text, one INFO line holding the summary
/// object (`summary`, as `--summary-json` writes it) in JSON.
pub fn print_summary<T: Serialize>(
    format: LogFormat,
    message: &str,
    table: &str,
    summary: &T,
) -> anyhow::Result<()> {
    match format {
        LogFormat::Text => write_stderr(table),
        LogFormat::Json => {
            let value = serde_json::to_value(summary)?;
            write_stderr(&json_line("INFO", message, Some(("summary", value))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_follows_the_terminal_no_color_and_clicolor_force() {
        type Env = &'static [(&'static str, &'static str)];
        // (stderr is a terminal, environment, coloured)
        let cases: [(bool, Env, bool); 9] = [
            (true, &[], true),
            (false, &[], false),
            (true, &[("NO_COLOR", "1")], false),
            (true, &[("NO_COLOR", "")], true),
            (false, &[("CLICOLOR_FORCE", "1")], true),
            (false, &[("CLICOLOR_FORCE", "0")], false),
            (false, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], false),
            (true, &[("CLICOLOR", "0")], false),
            (true, &[("TERM", "dumb")], false),
        ];
        for (terminal, env, want) in cases {
            let lookup = |name: &str| {
                env.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            };
            assert_eq!(colour(terminal, lookup), want, "{terminal} {env:?}");
        }
    }

    #[test]
    fn a_redacted_json_line_stays_one_json_object() {
        let lines = [
            json_line(
                "WARN",
                "credential_process failed. Stderr: secret\nmore",
                None,
            ),
            json_line("ERROR", "key AKIAIOSFODNN7EXAMPLE refused", None),
            json_line(
                "INFO",
                "run summary",
                Some((
                    "summary",
                    serde_json::json!({"source": "http://u:hunter2@host/x"}),
                )),
            ),
        ];
        for line in lines {
            let redacted = redact_line(&line);
            assert!(
                redacted.ends_with('\n') && redacted.lines().count() == 1,
                "{redacted}"
            );
            let value: serde_json::Value =
                serde_json::from_str(&redacted).unwrap_or_else(|e| panic!("{e}: {redacted}"));
            assert!(value["fields"]["message"].is_string(), "{redacted}");
            for secret in ["secret", "AKIAIOSFODNN7EXAMPLE", "hunter2"] {
                assert!(!redacted.contains(secret), "{secret} in {redacted}");
            }
        }
        let plain = json_line("INFO", "nothing to hide", None);
        assert_eq!(redact_line(&plain), plain);
    }
}
