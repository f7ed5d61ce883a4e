//! The dashboard, rendered on the server: plain HTML, a few lines of
//! JavaScript (copy, confirm), no build step. Every value that comes from a
//! user or a store goes through [`escape`].

use crate::SCOPES;
use keyward::KeyDetails;
use keyward::chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// `text` safe inside HTML text and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Tokens</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}}\
         .once{{background:#fffbe6;border:1px solid #e6c200;padding:1rem;margin:1rem 0}}\
         .error{{background:#fdecea;border:1px solid #e57373;padding:.6rem}}\
         code{{font-size:1.05rem}}</style></head><body>{body}</body></html>\n"
    )
}

pub(crate) fn sign_in() -> String {
    sign_in_with_error("")
}

pub(crate) fn sign_in_with_error(error: &str) -> String {
    let error = if error.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" id=\"error\">{}</p>", escape(error))
    };
    layout(&format!(
        "<h1>Sign in</h1>{error}<p>A demo sign-in: any name will do.</p>\
         <form method=\"post\" action=\"/signin\">\
         <input name=\"user\" id=\"user\" placeholder=\"alice\" required> \
         <button type=\"submit\" id=\"signin\">Sign in</button></form>"
    ))
}

fn date(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "never".to_owned(),
        |at| at.format("%Y-%m-%d").to_string(),
    )
}

pub(crate) fn dashboard(
    user: &str,
    keys: &[KeyDetails],
    shown: Option<&str>,
    error: Option<&str>,
) -> String {
    let now = Utc::now();
    let mut body = format!(
        "<h1>Personal access tokens</h1><p>Signed in as <b id=\"who\">{}</b>. \
         <form method=\"post\" action=\"/signout\" style=\"display:inline\">\
         <button type=\"submit\">Sign out</button></form></p>",
        escape(user)
    );
    if let Some(error) = error {
        let _ = write!(
            body,
            "<p class=\"error\" id=\"error\">{}</p>",
            escape(error)
        );
    }
    // A page rendered for a form's POST says it is `/`, so reloading it
    // asks for the dashboard again instead of posting the form twice (and
    // never shows the token a second time).
    body.push_str("<script>if (location.pathname !== \"/\") history.replaceState(null, \"\", \"/\");</script>");
    if let Some(token) = shown {
        let _ = write!(
            body,
            "<div class=\"once\" id=\"new-token\" role=\"dialog\"><p><b>Copy your new token now.</b> \
             It is shown once and cannot be recovered.</p>\
             <p><code id=\"token\">{}</code> \
             <button type=\"button\" id=\"copy\" \
             onclick=\"navigator.clipboard.writeText(document.getElementById('token').textContent)\">Copy</button></p></div>",
            escape(token)
        );
    }
    body.push_str(
        "<h2>Create a token</h2><form method=\"post\" action=\"/tokens\" id=\"create\">\
         <p><label>Name <input name=\"name\" id=\"name\" required maxlength=\"200\"></label></p><p>",
    );
    for scope in SCOPES {
        let _ = write!(
            body,
            "<label><input type=\"checkbox\" name=\"scope\" value=\"{s}\" id=\"scope-{s}\"> {s}</label> ",
            s = escape(scope)
        );
    }
    body.push_str("</p><p><label>Expires <select name=\"expires\" id=\"expires\">");
    for (value, label, selected) in [
        ("1 month", "in a month", false),
        ("6 months", "in 6 months", false),
        ("1 year", "in a year", true),
        ("never", "never", false),
    ] {
        let selected = if selected { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{value}\"{selected}>{label}</option>");
    }
    body.push_str(
        "</select></label></p><button type=\"submit\" id=\"create-button\">Create token</button></form>\
         <h2>Your tokens</h2><table id=\"tokens\"><thead><tr><th>Name</th><th>Token</th><th>Scopes</th>\
         <th>Created</th><th>Expires</th><th>Last used</th><th>Status</th><th></th></tr></thead><tbody>",
    );
    for key in keys {
        let scopes: Vec<&str> = key.scopes.iter().collect();
        let revoke = if key.status.is_live() {
            format!(
                "<form method=\"post\" action=\"/tokens/{id}/revoke\" \
                 onsubmit=\"return confirm('Revoke this token? Anything using it stops working.')\">\
                 <button type=\"submit\" class=\"revoke\" data-id=\"{id}\">Revoke</button></form>",
                id = escape(key.id.as_str())
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr data-id=\"{id}\"><td>{name}</td><td><code>{preview}</code></td><td>{scopes}</td>\
             <td>{created}</td><td>{expires}</td><td>{used}</td><td class=\"status\">{status}</td><td>{revoke}</td></tr>",
            id = escape(key.id.as_str()),
            name = escape(&key.name),
            preview = escape(&key.preview),
            scopes = escape(&scopes.join(", ")),
            created = date(Some(key.created_at)),
            expires = date(key.expires_at),
            used = escape(&key.last_used(now)),
            status = key.status,
        );
    }
    body.push_str("</tbody></table>");
    layout(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_name_is_text() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
