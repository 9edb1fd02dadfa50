//! The UI's pages as pure functions from gathered facts to HTML: no I/O here, so each page
//! can be rendered and checked in a unit test. Every outside string goes through [`esc`].

use std::fmt::Write as _;

use storage_market::state::StorageDealStatus;
use storage_market::store::{DealStateChange, ProviderDeal};

/// Who is looking.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// May change things (admin token).
    pub admin: bool,
    /// The form token admin forms carry (against cross-site posts).
    pub csrf: String,
}

/// HTML-escapes `s` for text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// Percent-encodes a query value.
fn q(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Bytes for people: `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Unix milliseconds as UTC `YYYY-MM-DD HH:MM:SS.mmm`.
pub fn time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// The short state name (`Active` for `StorageDealActive`).
pub fn state_name(s: StorageDealStatus) -> &'static str {
    s.name().trim_start_matches("StorageDeal")
}

fn state_class(s: StorageDealStatus) -> &'static str {
    use StorageDealStatus as S;
    match s {
        S::Active | S::Expired => "ok",
        S::Error | S::Failing | S::Slashed | S::ProposalRejected => "bad",
        _ => "busy",
    }
}

fn badge(s: StorageDealStatus) -> String {
    format!(
        "<span class=\"state {}\" data-state=\"{}\">{}</span>",
        state_class(s),
        s.name(),
        state_name(s)
    )
}

/// The page frame: navigation, who is logged in, the live-update hook.
pub fn layout(title: &str, viewer: Option<&Viewer>, live: bool, body: &str) -> String {
    let nav = match viewer {
        Some(v) => format!(
            "<nav><a class=\"brand\" href=\"/ui/\">fil-market</a>\
             <a href=\"/ui/\">Dashboard</a><a href=\"/ui/deals\">Deals</a>\
             <a href=\"/ui/pieces\">Pieces</a><a href=\"/ui/asks\">Asks</a>\
             <span class=\"grow\"></span><span class=\"role\" id=\"role\">{}</span>\
             <form method=\"post\" action=\"/ui/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Log out</button></form></nav>",
            if v.admin { "admin" } else { "read-only" },
            esc(&v.csrf)
        ),
        None => "<nav><a class=\"brand\" href=\"/ui/\">fil-market</a></nav>".into(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · fil-market</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/ui/assets/ui.css\">\
         <script src=\"/ui/assets/ui.js\" defer></script></head>\
         <body data-live=\"{}\"><header>{nav}</header><main id=\"main\">{body}</main></body></html>",
        esc(title),
        if live { "1" } else { "" },
    )
}

/// The login page.
pub fn login(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"login-error\">{}</p>", esc(e)))
        .unwrap_or_default();
    layout(
        "Log in",
        None,
        false,
        &format!(
            "<section class=\"login\"><h1>Log in</h1>{error}\
             <form method=\"post\" action=\"/ui/login\">\
             <label for=\"token\">API token (<code>&lt;repo&gt;/token</code> to manage, \
             <code>&lt;repo&gt;/token.read</code> to look)</label>\
             <textarea id=\"token\" name=\"token\" rows=\"4\" required autocomplete=\"off\"></textarea>\
             <button type=\"submit\" id=\"login\">Log in</button></form></section>"
        ),
    )
}

/// A deal being transferred, with its progress.
#[derive(Debug, Clone)]
pub struct TransferRow {
    /// The deal.
    pub deal: ProviderDeal,
    /// Bytes received.
    pub received: u64,
}

/// What the dashboard shows.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// Deals by state.
    pub counts: Vec<(StorageDealStatus, u64)>,
    /// Deals transferring.
    pub transfers: Vec<TransferRow>,
    /// Deals between publishing and Active (the sealing pipeline).
    pub sealing: Vec<ProviderDeal>,
    /// Piece stores: where, pieces, payload bytes.
    pub stores: Vec<(String, u64, u64)>,
    /// IPNI: the ad store's counts.
    pub ipni: Option<market_ipni::store::AdSummary>,
    /// Whether `[ipni]` is on.
    pub ipni_enabled: bool,
    /// Now (unix ms), for ages.
    pub now_ms: i64,
}

fn progress(received: u64, size: u64, id: &str) -> String {
    let pct = if size == 0 {
        100.0
    } else {
        received as f64 * 100.0 / size as f64
    };
    format!(
        "<progress max=\"{size}\" value=\"{received}\" data-transfer=\"{}\"></progress> \
         <span data-transfer-text=\"{}\">{pct:.1}% of {}</span>",
        esc(id),
        esc(id),
        bytes(size)
    )
}

/// The dashboard.
pub fn dashboard(viewer: &Viewer, d: &Dashboard) -> String {
    let mut b = String::from("<h1>Dashboard</h1><section class=\"cards\" id=\"counts\">");
    let total: u64 = d.counts.iter().map(|(_, n)| n).sum();
    let _ = write!(
        b,
        "<a class=\"card\" href=\"/ui/deals\"><span class=\"n\" data-count=\"total\">{total}</span>deals</a>"
    );
    for (s, n) in &d.counts {
        let _ = write!(
            b,
            "<a class=\"card {}\" href=\"/ui/deals?state={}\"><span class=\"n\" data-count=\"{}\">{n}</span>{}</a>",
            state_class(*s),
            q(state_name(*s)),
            s.name(),
            state_name(*s)
        );
    }
    b.push_str("</section><section><h2>Transfers</h2>");
    if d.transfers.is_empty() {
        b.push_str("<p class=\"muted\" id=\"no-transfers\">No transfer running.</p>");
    } else {
        b.push_str(
            "<table id=\"transfers\"><tr><th>Deal</th><th>Client</th><th>Progress</th></tr>",
        );
        for t in &d.transfers {
            let id = t.deal.deal_uuid.to_string();
            let _ = write!(
                b,
                "<tr><td><a href=\"/ui/deals/{id}\">{id}</a></td><td>{}</td><td>{}</td></tr>",
                esc(&t.deal.proposal.proposal.client.to_string()),
                progress(t.received, t.deal.transfer.size, &id)
            );
        }
        b.push_str("</table>");
    }
    b.push_str("</section><section><h2>Sealing pipeline</h2>");
    if d.sealing.is_empty() {
        b.push_str("<p class=\"muted\">No deal between publishing and Active.</p>");
    } else {
        b.push_str(
            "<table id=\"sealing\"><tr><th>Deal</th><th>State</th><th>Deal id</th><th>Sector</th><th>Note</th></tr>",
        );
        for deal in &d.sealing {
            let id = deal.deal_uuid.to_string();
            let _ = write!(
                b,
                "<tr><td><a href=\"/ui/deals/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                badge(deal.state),
                deal.deal_id.map_or("-".into(), |i| i.0.to_string()),
                deal.sector.map_or("-".into(), |s| s.0.to_string()),
                esc(&deal.message)
            );
        }
        b.push_str("</table>");
    }
    b.push_str("</section><section><h2>Piece storage</h2><table id=\"stores\"><tr><th>Store</th><th>Pieces</th><th>Payload</th></tr>");
    for (name, n, used) in &d.stores {
        let _ = write!(
            b,
            "<tr><td><code>{}</code></td><td>{n}</td><td>{}</td></tr>",
            esc(name),
            bytes(*used)
        );
    }
    b.push_str("</table></section><section><h2>IPNI</h2>");
    match (&d.ipni, d.ipni_enabled) {
        (_, false) => {
            b.push_str("<p class=\"muted\">Off (<code>[ipni] enabled = false</code>).</p>")
        }
        (None, true) => b.push_str("<p class=\"error\">The ad store could not be read.</p>"),
        (Some(s), true) => {
            let lag = s.oldest_unindexed_announced_at.map_or("none".into(), |at| {
                format!("{:.0} s", (d.now_ms - at).max(0) as f64 / 1000.0)
            });
            let _ = write!(
                b,
                "<dl id=\"ipni\"><dt>Ads</dt><dd>{}</dd><dt>Not yet announced</dt><dd>{}</dd>\
                 <dt>Announced, not yet indexed</dt><dd>{}</dd><dt>Oldest unconfirmed</dt><dd>{lag}</dd>\
                 <dt>Indexers failing</dt><dd>{}</dd></dl>",
                s.ads, s.unannounced, s.unindexed, s.failing_announces
            );
        }
    }
    b.push_str("</section>");
    layout("Dashboard", Some(viewer), true, &b)
}

/// What the deal list shows.
#[derive(Debug, Clone, Default)]
pub struct DealList {
    /// The deals of this page, newest first.
    pub deals: Vec<ProviderDeal>,
    /// Deals matching the filter, all pages.
    pub matching: usize,
    /// The state filter (short name), if any.
    pub state: Option<String>,
    /// The search text, if any.
    pub search: Option<String>,
    /// Page number, from 0.
    pub page: usize,
    /// Deals per page.
    pub per_page: usize,
}

/// The deal list with its filters.
pub fn deal_list(viewer: &Viewer, l: &DealList) -> String {
    let mut b =
        String::from("<h1>Deals</h1><form class=\"filters\" method=\"get\" action=\"/ui/deals\">");
    b.push_str(
        "<label>State <select name=\"state\" id=\"state-filter\"><option value=\"\">any</option>",
    );
    for s in (0..=64u64).filter_map(StorageDealStatus::from_code) {
        let name = state_name(s);
        let sel = if l.state.as_deref() == Some(name) {
            " selected"
        } else {
            ""
        };
        let _ = write!(b, "<option value=\"{name}\"{sel}>{name}</option>");
    }
    let _ = write!(
        b,
        "</select></label><label>Search <input type=\"search\" name=\"q\" id=\"search\" value=\"{}\" \
         placeholder=\"deal UUID, proposal, piece, client, payload\"></label><button type=\"submit\">Filter</button></form>",
        esc(l.search.as_deref().unwrap_or(""))
    );
    let _ = write!(
        b,
        "<p class=\"muted\" id=\"matching\">{} deals</p>",
        l.matching
    );
    b.push_str(
        "<table id=\"deals\"><tr><th>Deal</th><th>State</th><th>Piece</th><th>Size</th><th>Client</th>\
         <th>Kind</th><th>Deal id</th><th>Updated</th></tr>",
    );
    for d in &l.deals {
        let id = d.deal_uuid.to_string();
        let p = &d.proposal.proposal;
        let _ = write!(
            b,
            "<tr data-deal=\"{id}\"><td><a href=\"/ui/deals/{id}\">{id}</a></td><td>{}</td><td><code>{}</code></td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            badge(d.state),
            esc(&p.piece_cid.to_string()),
            bytes(p.piece_size),
            esc(&p.client.to_string()),
            if d.is_offline { "offline" } else { "online" },
            d.deal_id.map_or("-".into(), |i| i.0.to_string()),
            time_ms(d.updated_at.saturating_mul(1000)),
        );
    }
    b.push_str("</table>");
    let pages = l.matching.div_ceil(l.per_page.max(1));
    if pages > 1 {
        let link = |page: usize| {
            let mut u = format!("/ui/deals?page={page}");
            if let Some(s) = &l.state {
                let _ = write!(u, "&state={}", q(s));
            }
            if let Some(s) = &l.search {
                let _ = write!(u, "&q={}", q(s));
            }
            esc(&u)
        };
        b.push_str("<p class=\"pages\">");
        if l.page > 0 {
            let _ = write!(b, "<a href=\"{}\">newer</a> ", link(l.page - 1));
        }
        let _ = write!(b, "page {} of {pages}", l.page + 1);
        if l.page + 1 < pages {
            let _ = write!(b, " <a href=\"{}\">older</a>", link(l.page + 1));
        }
        b.push_str("</p>");
    }
    layout("Deals", Some(viewer), true, &b)
}

/// What a deal page shows.
#[derive(Debug, Clone)]
pub struct DealPage {
    /// The deal.
    pub deal: ProviderDeal,
    /// Its timeline.
    pub events: Vec<DealStateChange>,
    /// Bytes received, for online deals still transferring.
    pub received: Option<u64>,
    /// Its newest IPNI ad.
    pub ipni: Option<market_ipni::store::AdStatus>,
    /// What an action just said (after a retry or cancel).
    pub notice: Option<String>,
}

/// One deal: fields, timeline, actions.
pub fn deal_page(viewer: &Viewer, d: &DealPage) -> String {
    let deal = &d.deal;
    let p = &deal.proposal.proposal;
    let id = deal.deal_uuid.to_string();
    let mut b = format!("<h1>Deal <code>{id}</code></h1>");
    if let Some(n) = &d.notice {
        let _ = write!(b, "<p class=\"notice\" id=\"notice\">{}</p>", esc(n));
    }
    let _ = write!(b, "<p id=\"deal-state\">{}", badge(deal.state));
    if !deal.message.is_empty() {
        let class =
            if deal.state == StorageDealStatus::Error || deal.state == StorageDealStatus::Failing {
                "error"
            } else {
                "muted"
            };
        let _ = write!(
            b,
            " <span class=\"{class}\" id=\"deal-message\">{}</span>",
            esc(&deal.message)
        );
    }
    b.push_str("</p>");
    if let Some(r) = d.received {
        let _ = write!(b, "<p>{}</p>", progress(r, deal.transfer.size, &id));
    }
    if viewer.admin {
        let mut actions = String::new();
        if deal.state.is_cancellable() {
            let _ = write!(
                actions,
                "<form method=\"post\" action=\"/ui/deals/{id}/cancel\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button type=\"submit\" id=\"cancel\" class=\"danger\">Cancel deal</button></form>",
                esc(&viewer.csrf)
            );
        }
        if deal.state == StorageDealStatus::Error && deal.publish_cid.is_none() {
            let _ = write!(
                actions,
                "<form method=\"post\" action=\"/ui/deals/{id}/retry\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button type=\"submit\" id=\"retry\">Retry deal</button></form>",
                esc(&viewer.csrf)
            );
        }
        if !actions.is_empty() {
            let _ = write!(b, "<div class=\"actions\">{actions}</div>");
        }
    }
    let opt = |v: Option<String>| v.map_or("-".to_string(), |s| esc(&s));
    let rows: [(&str, String); 18] = [
        (
            "Proposal CID",
            format!("<code>{}</code>", esc(&deal.proposal_cid.to_string())),
        ),
        ("Miner", esc(&deal.miner.to_string())),
        ("Client", esc(&p.client.to_string())),
        ("Protocol", esc(deal.protocol.id())),
        (
            "Kind",
            if deal.is_offline {
                "offline".into()
            } else {
                "online".into()
            },
        ),
        (
            "Piece CID",
            format!("<code>{}</code>", esc(&p.piece_cid.to_string())),
        ),
        ("Piece size", bytes(p.piece_size)),
        (
            "Payload root",
            opt(deal.payload_root.map(|c| c.to_string())),
        ),
        ("Verified", p.verified_deal.to_string()),
        (
            "Start / end epoch",
            format!("{} / {}", p.start_epoch.get(), p.end_epoch.get()),
        ),
        (
            "Price per epoch",
            format!("{} attoFIL", p.storage_price_per_epoch.atto()),
        ),
        (
            "Add-funds message",
            opt(deal.add_funds_cid.map(|c| c.to_string())),
        ),
        (
            "Publish message",
            opt(deal.publish_cid.map(|c| c.to_string())),
        ),
        ("Deal id", opt(deal.deal_id.map(|i| i.0.to_string()))),
        ("Sector", opt(deal.sector.map(|s| s.0.to_string()))),
        (
            "Offset in sector",
            opt(deal.sector_offset.map(|o| o.to_string())),
        ),
        ("Piece stored at", opt(deal.piece_path.clone())),
        (
            "IPNI",
            match &d.ipni {
                None if deal.skip_ipni => "skipped (client asked)".into(),
                None => "-".into(),
                Some(a) => esc(&format!(
                    "{} ad {}{}",
                    match (a.is_rm, a.indexed_at.is_some(), a.announced_at.is_some()) {
                        (true, true, _) => "removed",
                        (true, false, _) => "removing",
                        (false, true, _) => "indexed",
                        (false, false, true) => "announced",
                        (false, false, false) => "published",
                    },
                    a.ad,
                    a.check_error
                        .as_deref()
                        .map(|e| format!(" (last check: {e})"))
                        .unwrap_or_default()
                )),
            },
        ),
    ];
    b.push_str("<table class=\"fields\" id=\"fields\">");
    for (k, v) in rows {
        let _ = write!(b, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    b.push_str("</table><h2>Timeline</h2><table id=\"timeline\"><tr><th>When (UTC)</th><th>State</th><th>Message</th></tr>");
    for e in &d.events {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            time_ms(e.at_ms),
            badge(e.state),
            esc(&e.message)
        );
    }
    b.push_str("</table>");
    layout(&format!("Deal {id}"), Some(viewer), true, &b)
}

/// The piece list.
pub fn pieces(viewer: &Viewer, pieces: &[(piecestore::PieceMeta, String, Vec<String>)]) -> String {
    let mut b = format!(
        "<h1>Pieces</h1><p class=\"muted\">{} pieces, {} of payload</p>\
         <table id=\"pieces\"><tr><th>Piece CID</th><th>Payload</th><th>Padded</th><th>IPNI</th><th>Deals</th></tr>",
        pieces.len(),
        bytes(pieces.iter().map(|(m, _, _)| m.payload_size).sum())
    );
    for (m, ipni, deals) in pieces {
        let links: Vec<String> = deals
            .iter()
            .map(|u| format!("<a href=\"/ui/deals/{0}\">{0}</a>", esc(u)))
            .collect();
        let _ = write!(
            b,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.piece_cid.to_string()),
            bytes(m.payload_size),
            bytes(m.padded_size.get()),
            esc(ipni),
            links.join(" ")
        );
    }
    b.push_str("</table>");
    layout("Pieces", Some(viewer), false, &b)
}

/// A miner's ask as the asks page shows it.
#[derive(Debug, Clone)]
pub struct AskRow {
    /// The miner.
    pub miner: String,
    /// attoFIL per GiB per epoch, unverified / verified.
    pub price: String,
    /// Verified price.
    pub verified_price: String,
    /// Smallest and largest padded piece.
    pub min_piece_size: u64,
    /// Largest padded piece.
    pub max_piece_size: u64,
    /// Sequence number.
    pub seq_no: u64,
    /// Expiry epoch.
    pub expiry: i64,
}

/// The asks page: one per miner, editable by admins.
pub fn asks(viewer: &Viewer, asks: &[AskRow], notice: Option<&str>) -> String {
    let mut b = String::from("<h1>Asks</h1>");
    if let Some(n) = notice {
        let _ = write!(b, "<p class=\"notice\" id=\"notice\">{}</p>", esc(n));
    }
    for a in asks {
        let m = esc(&a.miner);
        let _ = write!(
            b,
            "<section class=\"ask\" data-miner=\"{m}\"><h2>{m}</h2><dl>\
             <dt>Price</dt><dd class=\"price\">{} attoFIL/GiB/epoch</dd>\
             <dt>Verified price</dt><dd class=\"verified-price\">{} attoFIL/GiB/epoch</dd>\
             <dt>Piece sizes</dt><dd>{} to {}</dd><dt>Sequence</dt><dd>{}</dd><dt>Expires at epoch</dt><dd>{}</dd></dl>",
            esc(&a.price),
            esc(&a.verified_price),
            bytes(a.min_piece_size),
            bytes(a.max_piece_size),
            a.seq_no,
            a.expiry
        );
        if viewer.admin {
            let _ = write!(
                b,
                "<form method=\"post\" action=\"/ui/asks/{m}\" class=\"ask-form\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <label>Price <input name=\"price\" value=\"{}\" inputmode=\"numeric\" required></label>\
                 <label>Verified price <input name=\"verified_price\" value=\"{}\" inputmode=\"numeric\" required></label>\
                 <label>Min piece size <input name=\"min_piece_size\" value=\"{}\" inputmode=\"numeric\" required></label>\
                 <label>Max piece size <input name=\"max_piece_size\" value=\"{}\" inputmode=\"numeric\" required></label>\
                 <button type=\"submit\">Save ask</button></form>",
                esc(&viewer.csrf),
                esc(&a.price),
                esc(&a.verified_price),
                a.min_piece_size,
                a.max_piece_size
            );
        }
        b.push_str("</section>");
    }
    layout("Asks", Some(viewer), false, &b)
}

/// A page saying what went wrong.
pub fn problem(viewer: Option<&Viewer>, title: &str, detail: &str) -> String {
    layout(
        title,
        viewer,
        false,
        &format!(
            "<h1>{}</h1><p class=\"error\" id=\"problem\">{}</p>",
            esc(title),
            esc(detail)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_escaped() {
        assert_eq!(
            esc("<script>\"x\"&'y'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;"
        );
        let page = problem(None, "Oops", "<img src=x onerror=alert(1)>");
        assert!(!page.contains("<img"));
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        let asks_page = asks(
            &Viewer {
                admin: true,
                csrf: "\"><b>".into(),
            },
            &[],
            Some("<i>"),
        );
        assert!(!asks_page.contains("<b>") && !asks_page.contains("<i>"));
    }

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(34_359_738_368), "32.0 GiB");
        assert_eq!(time_ms(0), "1970-01-01 00:00:00.000");
        assert_eq!(time_ms(1_796_000_000_123), "2026-11-30 00:53:20.123");
        assert_eq!(time_ms(951_782_400_000), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn read_only_viewers_get_no_forms_that_change_things() {
        let row = AskRow {
            miner: "t01000".into(),
            price: "5".into(),
            verified_price: "0".into(),
            min_piece_size: 256,
            max_piece_size: 1 << 20,
            seq_no: 1,
            expiry: 100,
        };
        let read = Viewer {
            admin: false,
            csrf: "c".into(),
        };
        assert!(!asks(&read, std::slice::from_ref(&row), None).contains("ask-form"));
        let admin = Viewer {
            admin: true,
            csrf: "c".into(),
        };
        assert!(asks(&admin, &[row], None).contains("ask-form"));
    }
}
