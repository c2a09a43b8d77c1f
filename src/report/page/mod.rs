//! The results page, shared by the HTML report and the live dashboard: its template,
//! styles and scripts ([`assets`](self) in `assets/`), and the data it shows
//! ([`view`]). Neither of its users owns it: the HTML report inlines the assets into
//! one file, the dashboard serves them and streams the data, so the two always look
//! alike. It depends on nothing above `report`.

pub mod view;

/// The page template, with slots for its styles and scripts.
pub const INDEX_HTML: &str = include_str!("assets/index.html");
pub const STYLE_CSS: &str = include_str!("assets/style.css");
pub const CHARTS_JS: &str = include_str!("assets/charts.js");
pub const APP_JS: &str = include_str!("assets/app.js");

/// Where the page template takes its styles and scripts.
const STYLE_SLOT: &str = "<!--swarm:style-->";
const SCRIPT_SLOT: &str = "<!--swarm:script-->";

/// The page with its styles and scripts inlined and `data` (the page's JSON) embedded:
/// one document that opens offline.
pub fn inline(data: &str) -> String {
    let style = format!("<style>\n{STYLE_CSS}\n</style>");
    let script = format!(
        "<script type=\"application/json\" id=\"swarm-data\">{}</script>\n<script>\n{}\n{}\n</script>",
        data.replace('<', "\\u003c"),
        escape_script(CHARTS_JS),
        escape_script(APP_JS),
    );
    INDEX_HTML
        .replace(STYLE_SLOT, &style)
        .replace(SCRIPT_SLOT, &script)
}

/// The live page: the same template, with styles and scripts as separate files so the
/// dashboard can forbid inline script in its Content-Security-Policy.
pub fn live() -> String {
    INDEX_HTML
        .replace(
            STYLE_SLOT,
            r#"<link rel="stylesheet" href="/assets/style.css">"#,
        )
        .replace(
            SCRIPT_SLOT,
            r#"<script src="/assets/charts.js"></script>
<script src="/assets/app.js"></script>"#,
        )
}

/// An asset of the live page by file name, with its MIME type.
pub fn asset(file: &str) -> Option<(&'static str, &'static str)> {
    match file {
        "style.css" => Some((STYLE_CSS, "text/css; charset=utf-8")),
        "charts.js" => Some((CHARTS_JS, "text/javascript; charset=utf-8")),
        "app.js" => Some((APP_JS, "text/javascript; charset=utf-8")),
        _ => None,
    }
}

/// Makes script code safe inside a `<script>` element: `</` cannot close it early.
/// (JSON data is escaped more simply: every `<` becomes `\u003c`.)
fn escape_script(code: &str) -> String {
    code.replace("</", "<\\/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_text_cannot_close_its_element() {
        let s = escape_script(r#"{"name":"</script><script>alert(1)</script>"}"#);
        assert!(!s.contains("</script"));
        assert!(s.contains(r"<\/script"));
    }
}
