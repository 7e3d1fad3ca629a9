//! The page shell every console page shares: stylesheet, top bar, live-update hook. Without
//! JavaScript a page refreshes itself (`<noscript>` meta refresh); with it, `data-stream` names
//! the server-sent event feed that console.js listens to.

use maud::{html, Markup, DOCTYPE};

pub struct Shell<'a> {
    pub title: &'a str,
    /// The SSE feed for this page, if it is live.
    pub stream: Option<String>,
    /// Fleet filter (`red`, `amber`...), for console.js to keep the grid filtered.
    pub only: Option<&'a str>,
    /// The page has forms: no `<noscript>` refresh, which would throw away what is being typed.
    pub forms: bool,
}

pub fn page(shell: Shell, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (shell.title) " · hastack console" }
                link rel="stylesheet" href="/static/console.css";
                @if shell.stream.is_some() && !shell.forms {
                    noscript { meta http-equiv="refresh" content="30"; }
                }
                script src="/static/console.js" defer {}
            }
            body data-stream=[shell.stream.as_deref()] data-only=[shell.only] {
                header.top {
                    a.brand href="/" { "hastack console" }
                    a href="/" { "Fleet" }
                    a href="/fleet/compare" { "Compare" }
                    a href="/api" { "API" }
                    @if shell.stream.is_some() { span.live { (if shell.forms { "reload for updates" } else { "refreshes every 30 s" }) } }
                }
                main { (body) }
            }
        }
    }
}
